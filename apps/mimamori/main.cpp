// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori`: the city staff's and police's command line. Dispatches to registered commands.
#include "cli.hpp"

#include "mimamori/common/manpage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <exception>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mimamori::cli {
namespace {

std::vector<Command>& registry() {
    static std::vector<Command> commands;
    return commands;
}

std::string fullName(const Command& c) { return c.group.empty() ? c.name : c.group + " " + c.name; }

std::vector<Command> sortedCommands();

// The options a command's usage line (the help text up to its first blank line) names outside
// [brackets]: the ones it cannot run without.
std::vector<std::string> requiredOptions(const std::string& help) {
    const std::string usage = help.substr(0, help.find("\n\n"));
    std::vector<std::string> required;
    int depth = 0;
    for (std::size_t i = 0; i < usage.size(); ++i) {
        if (usage[i] == '[') ++depth;
        else if (usage[i] == ']') depth = std::max(0, depth - 1);
        else if (depth == 0 && usage.compare(i, 2, "--") == 0 && (i == 0 || usage[i - 1] == ' ')) {
            std::size_t end = i + 2;
            while (end < usage.size() && (std::islower(static_cast<unsigned char>(usage[end])) || usage[end] == '-')) ++end;
            required.push_back(usage.substr(i, end - i));
            i = end - 1;
        }
    }
    return required;
}

void printOverview(std::FILE* out) {
    fmt::print(out, "mimamori {} — watch camera tools for city staff and police\n\n"
                    "usage: mimamori COMMAND [ARGS...]   (mimamori COMMAND --help for details)\n\n",
               MIMAMORI_VERSION);
    for (const auto& c : sortedCommands()) fmt::print(out, "  {:<22} {}\n", fullName(c), c.summary);
    fmt::print(out, "\n  {:<22} {}\n  {:<22} {}\n", "--man", "print the manual page mimamori(1), as roff",
               "--bash-completion", "print the bash completion script");
}

bool contains(const std::vector<std::string>& list, const std::string& word) {
    return std::find(list.begin(), list.end(), word) != list.end();
}

std::vector<Command> sortedCommands() {
    auto commands = registry();
    std::sort(commands.begin(), commands.end(),
              [](const Command& a, const Command& b) { return fullName(a) < fullName(b); });
    return commands;
}

// mimamori(1), from the same help texts as `mimamori COMMAND --help`.
std::string manual() {
    mimamori::common::ManPage page{"mimamori", 1, MIMAMORI_VERSION, "watch camera tools for city staff and police", {}};
    page.sections.push_back({"synopsis", "mimamori COMMAND [ARGS...]\nmimamori COMMAND --help\nmimamori --version\n"});
    page.sections.push_back(
        {"description",
         "The command line of the Mimamori watch cameras, for the city staff who place privacy\n"
         "masks and approve requests, and for the police who fetch footage under the city's\n"
         "ordinance: masks and their review, keys, requests, fetch, verify, the audit log, the\n"
         "ring on a camera's card, the BLE detector's records, and for the city office the\n"
         "collection of every camera's log (fleet collect) and the yearly report. Each\n"
         "command's options and exit status follow; `mimamori COMMAND --help` prints the same\n"
         "text.\n"});
    std::string list;
    for (const auto& c : sortedCommands()) list += fmt::format("  {:<22} {}\n", fullName(c), c.summary);
    page.sections.push_back({"commands", list});
    for (const auto& c : sortedCommands()) page.sections.push_back({"mimamori " + fullName(c), c.help});
    page.sections.push_back({"exit status", "0  success\n1  the thing checked is bad, or the operation failed\n"
                                            "2  bad usage (unknown command or option, missing argument)\n"});
    page.sections.push_back({"see also", "mimamorid(8), and the formats in /usr/share/doc/mimamori/\n"});
    return mimamori::common::renderManPage(page);
}

// A bash completion script for every command and option of the registry.
std::string bashCompletion() {
    std::map<std::string, std::vector<const Command*>> groups;
    const auto commands = sortedCommands();
    std::string firstWords;
    for (const auto& c : commands) {
        const std::string first = c.group.empty() ? c.name : c.group;
        if (groups[first].empty()) firstWords += (firstWords.empty() ? "" : " ") + first;
        groups[first].push_back(&c);
    }
    const auto join = [](const std::vector<std::string>& words) {
        std::string out;
        for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
        return out;
    };
    std::string cases;
    for (const auto& [first, members] : groups) {
        std::string inner;
        std::vector<std::string> names;
        for (const Command* c : members) {
            std::vector<std::string> all = c->valueOptions;
            all.insert(all.end(), c->flagOptions.begin(), c->flagOptions.end());
            all.push_back("--help");
            const std::string label = c->group.empty() ? "" : c->name;
            names.push_back(c->name);
            inner += fmt::format("        {}) opts=\"{}\"; values=\"{}\" ;;\n", label.empty() ? "*" : label, join(all),
                                 join(c->valueOptions));
        }
        const bool grouped = !members.front()->group.empty();
        cases += fmt::format("    {})\n", first);
        if (grouped) {
            cases += fmt::format("      if [[ $COMP_CWORD -eq 2 ]]; then\n"
                                 "        COMPREPLY=($(compgen -W \"{} --help\" -- \"$cur\")); return\n"
                                 "      fi\n",
                                 join(names));
        }
        cases += fmt::format("      case \"${{COMP_WORDS[{}]}}\" in\n{}      esac ;;\n", grouped ? 2 : 1, inner);
    }
    return fmt::format(
        "# bash completion for mimamori {} (written by `mimamori --bash-completion`)\n"
        "_mimamori() {{\n"
        "  local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\" opts=\"\" values=\"\"\n"
        "  COMPREPLY=()\n"
        "  if [[ $COMP_CWORD -eq 1 ]]; then\n"
        "    COMPREPLY=($(compgen -W \"{} --help --version\" -- \"$cur\")); return\n"
        "  fi\n"
        "  case \"${{COMP_WORDS[1]}}\" in\n{}"
        "    *) return ;;\n"
        "  esac\n"
        "  # After an option that takes a value, or for positionals: file names.\n"
        "  if [[ \" $values \" == *\" $prev \"* || $cur != -* ]]; then\n"
        "    compopt -o filenames 2>/dev/null\n"
        "    COMPREPLY=($(compgen -f -- \"$cur\")); return\n"
        "  fi\n"
        "  COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
        "}}\n"
        "complete -F _mimamori mimamori\n",
        MIMAMORI_VERSION, firstWords, cases);
}

}  // namespace

Registrar::Registrar(Command command) { registry().push_back(std::move(command)); }

void ignoreBrokenConnections() { std::signal(SIGPIPE, SIG_IGN); }

int runCommand(const std::string& group, const std::string& name, const std::vector<std::string>& words) {
    for (const auto& c : registry())
        if (c.group == group && c.name == name) return c.run(Args(words, c.valueOptions, c.flagOptions));
    throw std::logic_error(fmt::format("no command '{}'", group.empty() ? name : group + " " + name));
}

Args::Args(const std::vector<std::string>& words, const std::vector<std::string>& valueOptions,
           const std::vector<std::string>& flagOptions) {
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        if (w.size() > 2 && w.rfind("--", 0) == 0) {
            std::string name = w, value;
            const auto eq = w.find('=');
            const bool inlineValue = eq != std::string::npos;
            if (inlineValue) {
                name = w.substr(0, eq);
                value = w.substr(eq + 1);
            }
            if (contains(flagOptions, name) && !inlineValue) {
                flags_.push_back(name);
            } else if (contains(valueOptions, name)) {
                if (!inlineValue) {
                    if (i + 1 >= words.size()) throw UsageError(fmt::format("{} needs a value", name));
                    value = words[++i];
                }
                if (options_.count(name)) throw UsageError(fmt::format("{} given twice", name));
                options_[name] = value;
            } else {
                throw UsageError(fmt::format("unknown option {}", name));
            }
        } else {
            positionals_.push_back(w);
        }
    }
}

bool Args::flag(const std::string& name) const { return contains(flags_, name); }

std::optional<std::string> Args::option(const std::string& name) const {
    const auto it = options_.find(name);
    if (it == options_.end()) return std::nullopt;
    return it->second;
}

std::string Args::required(const std::string& name) const {
    auto value = option(name);
    if (!value) throw UsageError(fmt::format("missing {}", name));
    return *value;
}

void Args::expectPositionals(std::size_t count, const std::string& names) const {
    if (positionals_.size() < count) throw UsageError(fmt::format("missing {}", names));
    if (positionals_.size() > count)
        throw UsageError(fmt::format("unexpected argument '{}'", positionals_[count]));
}

}  // namespace mimamori::cli

int main(int argc, char** argv) {
    using namespace mimamori::cli;
    std::vector<std::string> words(argv + 1, argv + argc);
    if (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
        printOverview(words.empty() ? stderr : stdout);
        return words.empty() ? 2 : 0;
    }
    if (words[0] == "--man" || words[0] == "--bash-completion") {  // for the package build
        fmt::print("{}", words[0] == "--man" ? manual() : bashCompletion());
        return 0;
    }
    if (words[0] == "--version") {
        fmt::print("mimamori {}\n", MIMAMORI_VERSION);
        return 0;
    }
    const Command* found = nullptr;
    std::size_t used = 0;
    for (const auto& c : registry()) {
        if (c.group.empty() && words[0] == c.name) {
            found = &c;
            used = 1;
        } else if (!c.group.empty() && words.size() >= 2 && words[0] == c.group && words[1] == c.name) {
            found = &c;
            used = 2;
        }
    }
    if (!found) {
        const bool isGroup = std::any_of(registry().begin(), registry().end(),
                                         [&](const Command& c) { return c.group == words[0]; });
        if (isGroup && (words.size() < 2 || words[1] == "--help")) {
            fmt::print(stdout, "mimamori {} commands:\n", words[0]);
            for (const auto& c : registry())
                if (c.group == words[0]) fmt::print("  {:<22} {}\n", fullName(c), c.summary);
            return words.size() < 2 ? 2 : 0;
        }
        fmt::print(stderr, "mimamori: unknown command '{}{}' (see mimamori --help)\n", words[0],
                   isGroup && words.size() >= 2 ? " " + words[1] : "");
        return 2;
    }
    std::vector<std::string> rest(words.begin() + static_cast<long>(used), words.end());
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
        std::find(rest.begin(), rest.end(), "-h") != rest.end()) {
        fmt::print("{}", found->help);
        return 0;
    }
    try {
        Args args(rest, found->valueOptions, found->flagOptions);
        // Every missing option at once, not one per attempt: the usage line is the contract.
        std::vector<std::string> missing;
        for (const auto& option : requiredOptions(found->help))
            if (!args.option(option)) missing.push_back(option);
        if (!missing.empty()) {
            std::string list;
            for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
            throw UsageError("missing " + list);
        }
        return found->run(args);
    } catch (const UsageError& e) {
        fmt::print(stderr, "mimamori {}: {} (see mimamori {} --help)\n", fullName(*found), e.what(),
                   fullName(*found));
        return 2;
    } catch (const std::exception& e) {
        fmt::print(stderr, "mimamori {}: {}\n", fullName(*found), e.what());
        return 1;
    }
}

// `mimamori`: the city staff's and police's command line. Dispatches to registered commands.
#include "cli.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <exception>

namespace mimamori::cli {
namespace {

std::vector<Command>& registry() {
    static std::vector<Command> commands;
    return commands;
}

std::string fullName(const Command& c) { return c.group.empty() ? c.name : c.group + " " + c.name; }

void printOverview(std::FILE* out) {
    fmt::print(out, "mimamori {} — watch camera tools for city staff and police\n\n"
                    "usage: mimamori COMMAND [ARGS...]   (mimamori COMMAND --help for details)\n\n",
               MIMAMORI_VERSION);
    auto commands = registry();
    std::sort(commands.begin(), commands.end(),
              [](const Command& a, const Command& b) { return fullName(a) < fullName(b); });
    for (const auto& c : commands) fmt::print(out, "  {:<22} {}\n", fullName(c), c.summary);
}

bool contains(const std::vector<std::string>& list, const std::string& word) {
    return std::find(list.begin(), list.end(), word) != list.end();
}

}  // namespace

Registrar::Registrar(Command command) { registry().push_back(std::move(command)); }

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

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The `mimamori` command registry: each cmd_<group>.cpp registers its commands statically.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mimamori::cli {

// Bad usage: main prints it in one line and exits 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The parsed words after the command's name: positionals, `--name value` options, `--flag`s.
class Args {
public:
    Args(const std::vector<std::string>& words, const std::vector<std::string>& valueOptions,
         const std::vector<std::string>& flagOptions);

    bool flag(const std::string& name) const;
    std::optional<std::string> option(const std::string& name) const;
    // Throws UsageError naming the missing option.
    std::string required(const std::string& name) const;
    const std::vector<std::string>& positionals() const { return positionals_; }
    // Throws UsageError unless exactly `count` positionals were given; `names` describe them.
    void expectPositionals(std::size_t count, const std::string& names) const;

private:
    std::map<std::string, std::string> options_;
    std::vector<std::string> flags_;
    std::vector<std::string> positionals_;
};

// Exit codes: 0 success, 1 the thing checked is bad / the operation failed, 2 bad usage.
struct Command {
    std::string group;    // "mask"; empty for a top-level command such as "keygen"
    std::string name;     // "validate"
    std::string summary;  // one line for the command list
    std::string help;     // the full --help text, starting with the usage line
    std::vector<std::string> valueOptions;  // e.g. {"--out", "--at"}
    std::vector<std::string> flagOptions;   // e.g. {"--outline"}
    std::function<int(const Args&)> run;
};

// Runs a registered command with these words (after its name), as main would without the
// usage checks; for a command made of others (provision runs keygen). Exit status as above.
int runCommand(const std::string& group, const std::string& name, const std::vector<std::string>& words);

// For commands that talk to cameras: a camera that resets the connection while OpenSSL writes
// to it (OpenSSL's socket writes do not ask for MSG_NOSIGNAL, as cpp-httplib's own do) must fail
// that exchange with an error line, not kill the command silently with SIGPIPE.
void ignoreBrokenConnections();

// Called from static initialisers in each cmd_*.cpp.
struct Registrar {
    explicit Registrar(Command command);
};

}  // namespace mimamori::cli

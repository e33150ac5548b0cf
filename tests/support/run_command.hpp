// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Runs a shell command line and collects its exit status and standard output (for CLI tests).
#pragma once

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace mimamori::testing {

struct CommandResult {
    int status = -1;     // exit status, -1 when killed by a signal
    std::string output;  // standard output (callers redirect stderr as they need)
};

inline CommandResult runCommand(const std::string& shellCommand) {
    CommandResult result;
    std::FILE* pipe = ::popen(shellCommand.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
    const int status = ::pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

}  // namespace mimamori::testing

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The one error type of every module's configuration parsing (mimamorid's file and its sections).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace mimamori::common {

// Every problem found in a configuration, each naming its key ("storage.byte_limit: must be
// ..."), so an operator fixes them all in one go. what() is one line: "<source>: <problem>; ...".
class ConfigError : public std::runtime_error {
public:
    // `source` names what was parsed: the file, or the section ("retrieval").
    ConfigError(std::string source, std::vector<std::string> problems);
    [[nodiscard]] const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<std::string> problems_;
};

}  // namespace mimamori::common

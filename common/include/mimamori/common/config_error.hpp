// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The one error type of every module's configuration parsing (mimamorid's file and its sections).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
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

// A bad value as a problem line shows it ("must be an integer (got \"ten\")"): its JSON text,
// cut to at most 60 bytes (ending in "...") on a UTF-8 character boundary, so a long or hostile
// value cannot flood the line and a cut never leaves half a character behind.
[[nodiscard]] std::string shownValue(std::string_view jsonText);

}  // namespace mimamori::common

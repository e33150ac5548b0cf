// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// ConfigError's one-line message.
#include "mimamori/common/config_error.hpp"

#include <cstddef>
#include <utility>

namespace mimamori::common {
namespace {

std::string joinProblems(const std::string& source, const std::vector<std::string>& problems) {
    std::string text = source + ": ";
    for (std::size_t i = 0; i < problems.size(); ++i) {
        if (i) text += "; ";
        text += problems[i];
    }
    return text;
}

}  // namespace

ConfigError::ConfigError(std::string source, std::vector<std::string> problems)
    : std::runtime_error(joinProblems(source, problems)), problems_(std::move(problems)) {}

}  // namespace mimamori::common

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

std::string shownValue(std::string_view jsonText) {
    constexpr std::size_t kMax = 60;
    constexpr std::string_view kEllipsis = "...";
    if (jsonText.size() <= kMax) return std::string(jsonText);
    std::size_t cut = kMax - kEllipsis.size();
    // Back off over UTF-8 continuation bytes (10xxxxxx) to the start of the character.
    while (cut > 0 && (static_cast<unsigned char>(jsonText[cut]) & 0xC0) == 0x80) --cut;
    return std::string(jsonText.substr(0, cut)) + std::string(kEllipsis);
}

ConfigError::ConfigError(std::string source, std::vector<std::string> problems)
    : std::runtime_error(joinProblems(source, problems)), problems_(std::move(problems)) {}

}  // namespace mimamori::common

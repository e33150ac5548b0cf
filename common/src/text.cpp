// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// escapeControls: one visible escape for every character that could forge a displayed line.
#include "mimamori/common/text.hpp"

#include <fmt/format.h>

#include <cstdint>

namespace mimamori::common {
namespace {

// Length of the well-formed UTF-8 sequence starting at text[i] and its code point, or 0 when
// the bytes there are not one (overlong forms, surrogates and values past U+10FFFF included).
std::size_t decodeUtf8(std::string_view text, std::size_t i, char32_t& codePoint) {
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
    const std::uint8_t lead = byte(i);
    std::size_t length = 0;
    char32_t value = 0;
    char32_t minimum = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        value = lead & 0x1Fu;
        minimum = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        value = lead & 0x0Fu;
        minimum = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        value = lead & 0x07u;
        minimum = 0x10000;
    } else {
        return 0;
    }
    if (i + length > text.size()) return 0;
    for (std::size_t k = 1; k < length; ++k) {
        const std::uint8_t continuation = byte(i + k);
        if ((continuation & 0xC0u) != 0x80u) return 0;
        value = (value << 6) | (continuation & 0x3Fu);
    }
    if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
    codePoint = value;
    return length;
}

bool isFormattingControl(char32_t c) {
    return (c >= 0x80 && c <= 0x9F) || c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x2028 && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069);
}

}  // namespace

std::string escapeControls(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<std::uint8_t>(text[i]);
        if (lead == '\\') {
            out += "\\\\";
            ++i;
        } else if (lead < 0x20 || lead == 0x7F) {
            out += fmt::format("\\x{:02x}", lead);
            ++i;
        } else if (lead < 0x80) {
            out += static_cast<char>(lead);
            ++i;
        } else {
            char32_t codePoint = 0;
            const std::size_t length = decodeUtf8(text, i, codePoint);
            if (length == 0) {
                out += fmt::format("\\x{:02x}", lead);
                ++i;
            } else if (isFormattingControl(codePoint)) {
                out += fmt::format("\\u{:04x}", static_cast<std::uint32_t>(codePoint));
                i += length;
            } else {
                out.append(text.substr(i, length));
                i += length;
            }
        }
    }
    return out;
}

}  // namespace mimamori::common

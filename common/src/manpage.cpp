// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Manual pages in roff from help text.
#include "mimamori/common/manpage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace mimamori::common {
namespace {

// One line of text for roff's no-fill mode: nothing in it is taken as a request or escape.
std::string roffLine(std::string_view line) {
    std::string out;
    // A line starting with '.' or '\'' would be a request; "\&" (a zero-width nothing) prevents it.
    if (!line.empty() && (line.front() == '.' || line.front() == '\'')) out += "\\&";
    for (std::size_t i = 0; i < line.size();) {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c < 0x80) {
            if (c == '\\') out += "\\e";
            else if (c == '-') out += "\\-";  // a minus sign, so options copy and search as typed
            else out += static_cast<char>(c);
            ++i;
            continue;
        }
        // roff input is ASCII: other characters (a dash, an ellipsis, Japanese) go in as
        // \[uXXXX]. The help texts are our own UTF-8; a malformed byte becomes U+FFFD.
        const int length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        std::uint32_t code = length == 4 ? c & 0x07u : length == 3 ? c & 0x0fu : c & 0x1fu;
        bool ok = length > 1 && i + static_cast<std::size_t>(length) <= line.size();
        for (int k = 1; ok && k < length; ++k) {
            const auto next = static_cast<unsigned char>(line[i + static_cast<std::size_t>(k)]);
            ok = (next & 0xc0) == 0x80;
            code = code << 6 | (next & 0x3fu);
        }
        out += fmt::format("\\[u{:04X}]", ok ? code : 0xFFFDu);
        i += ok ? static_cast<std::size_t>(length) : 1;
    }
    return out;
}

std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::string renderManPage(const ManPage& page) {
    std::string out = fmt::format(".TH {} {} \"\" \"{} {}\" \"{}\"\n", upper(page.name), page.section, page.name,
                                  page.version, page.section == 8 ? "System Administration" : "User Commands");
    out += fmt::format(".SH NAME\n{} \\- {}\n", roffLine(page.name), roffLine(page.summary));
    for (const ManSection& section : page.sections) {
        out += fmt::format(".SH {}\n.nf\n", roffLine(upper(section.heading)));
        std::string_view text = section.text;
        while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        std::size_t start = 0;
        while (start <= text.size()) {
            const std::size_t end = std::min(text.find('\n', start), text.size());
            const std::string_view line = text.substr(start, end - start);
            out += line.empty() ? ".sp\n" : roffLine(line) + "\n";
            start = end + 1;
        }
        out += ".fi\n";
    }
    return out;
}

}  // namespace mimamori::common

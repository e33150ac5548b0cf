// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Manual pages (roff, man(7) macros) written from the same text as --help, so the two can
// never drift apart: `mimamori --man` and `mimamorid --man` print them, the build installs them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mimamori::common {

struct ManSection {
    std::string heading;  // ".SH" heading, e.g. "COMMANDS"
    std::string text;     // preformatted text, kept line for line (help layout)
};

struct ManPage {
    std::string name;      // "mimamori"
    int section = 1;       // 1 user commands, 8 system administration
    std::string version;   // "0.1.0"
    std::string summary;   // the NAME line after the dash
    std::vector<ManSection> sections;
};

// The page as roff. Every line of text is escaped (backslashes, leading dots and quotes,
// hyphens as \-) and set in no-fill mode, so columns stay as --help prints them.
std::string renderManPage(const ManPage& page);

}  // namespace mimamori::common

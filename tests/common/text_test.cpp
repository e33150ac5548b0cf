// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// escapeControls: nothing that moves, erases or reorders a displayed line passes through.
#include "mimamori/common/text.hpp"

#include <doctest/doctest.h>

using mimamori::common::escapeControls;

TEST_CASE("plain ASCII and Japanese text pass unchanged") {
    CHECK(escapeControls("case-42 窓 ベランダ 加古川署") == "case-42 窓 ベランダ 加古川署");
    CHECK(escapeControls("") == "");
}

TEST_CASE("C0 controls and DEL become \\xNN, so a line cannot end, erase or recolour another") {
    CHECK(escapeControls("a\nb") == "a\\x0ab");
    CHECK(escapeControls("\r\x1b[2K\x1b[1A<0>forged") == "\\x0d\\x1b[2K\\x1b[1A<0>forged");
    CHECK(escapeControls(std::string_view("\0\t\x7f", 3)) == "\\x00\\x09\\x7f");
}

TEST_CASE("C1 controls and bidirectional overrides become \\uNNNN") {
    CHECK(escapeControls("\xc2\x9b" "31m") == "\\u009b31m");              // CSI as a C1 control
    CHECK(escapeControls("abc\xe2\x80\xae" "fed") == "abc\\u202efed");    // RIGHT-TO-LEFT OVERRIDE
    CHECK(escapeControls("\xe2\x81\xa6x\xe2\x81\xa9") == "\\u2066x\\u2069");  // isolates
    CHECK(escapeControls("\xe2\x80\xa8") == "\\u2028");                   // LINE SEPARATOR
    CHECK(escapeControls("\xd8\x9c") == "\\u061c");                       // ARABIC LETTER MARK
}

TEST_CASE("malformed UTF-8 is escaped byte by byte") {
    CHECK(escapeControls("\xff\xfe") == "\\xff\\xfe");
    CHECK(escapeControls("\xc0\xaf") == "\\xc0\\xaf");          // overlong '/'
    CHECK(escapeControls("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
    CHECK(escapeControls("\xe7\xaa") == "\\xe7\\xaa");          // cut short
}

TEST_CASE("a backslash is doubled, so an escape can never be forged") {
    CHECK(escapeControls("\\x1b") == "\\\\x1b");
    CHECK(escapeControls("\x1b") != escapeControls("\\x1b"));
}

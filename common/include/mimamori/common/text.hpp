// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Making untrusted text safe to show a person: a terminal, the journal, an operator's screen.
#pragma once

#include <string>
#include <string_view>

namespace mimamori::common {

// Returns `text` with everything that could move the cursor, erase, recolour or reorder what
// a terminal or log viewer shows replaced by a visible escape, so a line can never pass itself
// off as another:
//   - C0 controls and DEL (0x00-0x1F, 0x7F) as \xNN;
//   - C1 controls (U+0080-U+009F) and the bidirectional and line-breaking formatting
//     characters (U+061C, U+200E, U+200F, U+2028-U+202E, U+2066-U+2069) as \uNNNN;
//   - bytes that are not well-formed UTF-8 as \xNN;
//   - the backslash itself as \\, so that the escaping cannot be forged either.
// Every other character, Japanese text included, is kept as it is. Pure; thread-safe.
[[nodiscard]] std::string escapeControls(std::string_view text);

}  // namespace mimamori::common

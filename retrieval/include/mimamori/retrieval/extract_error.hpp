// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The error every step of an extract throws: demuxing, parsing, muxing, reading the ring.
#pragma once

#include <stdexcept>

namespace mimamori::retrieval {

// The range cannot be extracted (nothing held, a segment fails authentication or does not
// parse, the stream format changes inside the range). The message names the segment.
class ExtractError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// H.264 access units (ISO/IEC 14496-10 Annex B) to the length-prefixed form MP4 stores.
#pragma once

#include "mimamori/retrieval/extract_error.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace mimamori::retrieval {

// The sequence and picture parameter sets in force, NAL units without start codes.
struct ParameterSets {
    std::vector<std::vector<std::uint8_t>> sps;
    std::vector<std::vector<std::uint8_t>> pps;
    bool empty() const { return sps.empty() && pps.empty(); }
    bool operator==(const ParameterSets&) const = default;
};

// What MP4's sample entry needs from a sequence parameter set.
struct SpsInfo {
    int profileIdc = 0;
    int constraintFlags = 0;  // the byte after profile_idc
    int levelIdc = 0;
    int chromaFormatIdc = 1;
    int bitDepthLuma = 8;
    int bitDepthChroma = 8;
    int width = 0;   // luma samples, after the frame cropping
    int height = 0;
};

// Parses an SPS NAL unit (with its one-byte header). Throws ExtractError when it is cut short
// or out of range.
SpsInfo parseSps(std::span<const std::uint8_t> nal);

// One access unit after conversion.
struct AvccAccessUnit {
    bool keyframe = false;  // holds an IDR picture
    ParameterSets parameterSets;  // the SPS and PPS it carried (usually only on keyframes)
};

// Converts one Annex-B access unit to 4-byte big-endian length-prefixed NAL units appended to
// `out`. Access unit delimiters, SPS, PPS and filler data are left out of `out` (the SPS and PPS
// go to the MP4's avcC instead and are returned); everything else (SEI, slices) is kept byte for
// byte. Throws ExtractError when the bytes do not start with a start code or hold no picture.
AvccAccessUnit annexBToAvcc(std::span<const std::uint8_t> annexB, std::vector<std::uint8_t>& out);

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// H.264 access units to MP4 form: start codes to lengths, parameter sets aside, IDR found;
// the SPS gives the cropped picture size.
#include "media.hpp"

#include "mimamori/retrieval/h264.hpp"
#include "mimamori/retrieval/ts_demux.hpp"

#include <doctest/doctest.h>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

namespace {

// The SPS NAL units of a TS, via the demuxer.
std::vector<std::vector<std::uint8_t>> spsOf(const std::vector<std::uint8_t>& ts) {
    std::vector<std::vector<std::uint8_t>> out;
    TsDemuxer demuxer([&](const TsAccessUnit& au) {
        std::vector<std::uint8_t> avcc;
        for (auto& s : annexBToAvcc(au.data, avcc).parameterSets.sps) out.push_back(std::move(s));
    });
    demuxer.push(ts);
    demuxer.finish();
    return out;
}

}  // namespace

TEST_CASE("an access unit becomes length-prefixed NAL units without AUD, SPS, PPS and filler") {
    const std::vector<std::uint8_t> au = {
        0, 0, 0, 1, 0x09, 0xF0,                    // access unit delimiter
        0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0xAB,  // SPS (content irrelevant here)
        0, 0, 1, 0x68, 0xCE, 0x3C, 0x80,           // PPS, 3-byte start code
        0, 0, 1, 0x06, 0x05, 0x01, 0x80,           // SEI
        0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x03, 0x01, 0x00, 0x00,  // IDR slice (with an escape, trailing zeros)
        0, 0, 1, 0x0C, 0xFF, 0xFF, 0x80,           // filler data
    };
    std::vector<std::uint8_t> out = {0xAA};  // appended to, not replaced
    const AvccAccessUnit r = annexBToAvcc(au, out);
    CHECK(r.keyframe);
    REQUIRE(r.parameterSets.sps.size() == 1);
    CHECK(r.parameterSets.sps[0] == std::vector<std::uint8_t>{0x67, 0x42, 0xC0, 0x1E, 0xAB});
    REQUIRE(r.parameterSets.pps.size() == 1);
    CHECK(r.parameterSets.pps[0] == std::vector<std::uint8_t>{0x68, 0xCE, 0x3C, 0x80});
    const std::vector<std::uint8_t> expected = {0xAA, 0, 0, 0, 4, 0x06, 0x05, 0x01, 0x80,
                                                0, 0, 0, 6, 0x65, 0x88, 0x84, 0x00, 0x03, 0x01};
    CHECK(out == expected);

    std::vector<std::uint8_t> delta;
    CHECK_FALSE(annexBToAvcc(std::vector<std::uint8_t>{0, 0, 1, 0x41, 0x9A, 0x02}, delta).keyframe);
    CHECK(delta == std::vector<std::uint8_t>{0, 0, 0, 3, 0x41, 0x9A, 0x02});
}

TEST_CASE("access units that are not H.264 pictures are ExtractErrors") {
    std::vector<std::uint8_t> out;
    CHECK_THROWS_WITH_AS(annexBToAvcc(std::vector<std::uint8_t>{}, out), doctest::Contains("start code"), ExtractError);
    CHECK_THROWS_WITH_AS(annexBToAvcc(std::vector<std::uint8_t>{0x47, 0x40, 0x00, 0x10}, out),
                         doctest::Contains("start code"), ExtractError);
    CHECK_THROWS_WITH_AS(annexBToAvcc(std::vector<std::uint8_t>{0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x06, 0x05}, out),
                         doctest::Contains("without a coded picture"), ExtractError);
}

TEST_CASE("the SPS gives the picture size after cropping, and a cut SPS is an ExtractError") {
    // x264 codes 1080 lines as 1088 with 8 cropped; odd-ish sizes crop on the right too.
    for (const auto& [w, h] : {std::pair{1920, 1080}, std::pair{320, 240}, std::pair{202, 118}}) {
        CAPTURE(w);
        CAPTURE(h);
        const auto sps = spsOf(encodeRecorderTs({.frames = 1, .width = w, .height = h}));
        REQUIRE(!sps.empty());
        const SpsInfo info = parseSps(sps.front());
        CHECK(info.width == w);
        CHECK(info.height == h);
        CHECK(info.chromaFormatIdc == 1);
        CHECK(info.bitDepthLuma == 8);
        CHECK(info.profileIdc == sps.front()[1]);
        CHECK(info.levelIdc == sps.front()[3]);
        const std::vector<std::uint8_t> cut(sps.front().begin(), sps.front().begin() + 5);
        CHECK_THROWS_WITH_AS(parseSps(cut), doctest::Contains("SPS"), ExtractError);
    }
}

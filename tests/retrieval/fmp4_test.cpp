// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Remuxing to fragmented MP4: the extract decodes pixel-identical to the recorded TS with
// GStreamer and ffmpeg, keeps the TS's times (B-frames included), and has the documented layout.
#include "media.hpp"

#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/fmp4.hpp"
#include "mimamori/retrieval/ts_demux.hpp"

#include <doctest/doctest.h>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

namespace {

constexpr std::int64_t kTicks = 90000;

std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint64_t be64(const std::uint8_t* p) { return (std::uint64_t{be32(p)} << 32) | be32(p + 4); }

struct Box {
    std::string type;
    std::size_t offset = 0;  // in the file
    std::span<const std::uint8_t> body;  // after the 8-byte header
};

std::vector<Box> boxes(std::span<const std::uint8_t> data, std::size_t base = 0) {
    std::vector<Box> out;
    std::size_t i = 0;
    while (i + 8 <= data.size()) {
        const std::size_t size = be32(&data[i]);
        REQUIRE(size >= 8);
        REQUIRE(i + size <= data.size());
        out.push_back({std::string(reinterpret_cast<const char*>(&data[i + 4]), 4), base + i, data.subspan(i + 8, size - 8)});
        i += size;
    }
    CHECK(i == data.size());
    return out;
}

const Box& child(const Box& parent, const std::string& type, std::size_t skip = 0) {
    static std::vector<Box> keep;  // children live as long as the test's bytes
    keep = boxes(parent.body.subspan(skip));
    for (const Box& b : keep)
        if (b.type == type) return b;
    FAIL("no " << type << " in " << parent.type);
    return keep.front();
}

std::vector<std::uint8_t> readBytes(const fs::path& file) {
    const std::string s = common::readFile(file);
    return {s.begin(), s.end()};
}

// Rewrites every PTS and DTS of the video PES packets to `base` + their distance from the first
// PTS (33-bit arithmetic), so a stream can be made to wrap.
std::vector<std::uint8_t> retime(std::vector<std::uint8_t> ts, std::int64_t base) {
    constexpr std::int64_t kMask = (std::int64_t{1} << 33) - 1;
    auto read = [](const std::uint8_t* p) {
        return (std::int64_t{(p[0] >> 1) & 7} << 30) | (std::int64_t{p[1]} << 22) | (std::int64_t{p[2] >> 1} << 15) |
               (std::int64_t{p[3]} << 7) | (p[4] >> 1);
    };
    auto write = [](std::uint8_t* p, std::int64_t t) {
        p[0] = static_cast<std::uint8_t>((p[0] & 0xF0) | ((t >> 29) & 0x0E) | 1);
        p[1] = static_cast<std::uint8_t>(t >> 22);
        p[2] = static_cast<std::uint8_t>(((t >> 14) & 0xFE) | 1);
        p[3] = static_cast<std::uint8_t>(t >> 7);
        p[4] = static_cast<std::uint8_t>(((t << 1) & 0xFE) | 1);
    };
    std::int64_t first = -1;
    for (std::size_t i = 0; i < ts.size() / 188; ++i) {
        if (pidOf(ts, i) != 65 || !unitStart(ts, i)) continue;
        std::uint8_t* p = &ts[i * 188 + 4];
        if (ts[i * 188 + 3] & 0x20) p += 1 + ts[i * 188 + 4];
        const int flags = p[7] >> 6;
        if (first < 0) first = read(p + 9);
        write(p + 9, (read(p + 9) - first + base) & kMask);
        if (flags == 3) write(p + 14, (read(p + 14) - first + base) & kMask);
    }
    return ts;
}

// The recorded TS stored as `copies` segments back to back, extracted whole.
struct Remuxed {
    StoreOnly store;
    std::vector<std::uint8_t> ts;
    fs::path tsFile, mp4File;
    ExtractResult result;
    double seconds = 0;

    Remuxed(const std::vector<std::uint8_t>& source, int copies, double segmentSeconds) : ts(source), seconds(segmentSeconds) {
        tsFile = writeBytes(store.dir.path() / "source.ts", ts);
        writeSegments(*store.store, ts, kT0, copies, segmentSeconds);
        mp4File = store.extractTo(kT0, kT0 + static_cast<UtcMicros>(copies * segmentSeconds * 1e6), result);
    }
};

void checkPixelIdentical(const Remuxed& r, int copies) {
    const std::vector<RawFrame> source = decodeWithGstreamer(r.tsFile, "tsdemux");
    const std::vector<RawFrame> remuxed = decodeWithGstreamer(r.mp4File, "qtdemux");
    REQUIRE(!source.empty());
    REQUIRE(remuxed.size() == source.size() * static_cast<std::size_t>(copies));
    for (std::size_t i = 0; i < remuxed.size(); ++i) {
        CAPTURE(i);
        CHECK(remuxed[i].bytes == source[i % source.size()].bytes);
    }
    CHECK(remuxed.front().streamTimeUs == 0);

    std::string expected;
    const std::string once = decodeWithFfmpeg(r.tsFile);
    for (int i = 0; i < copies; ++i) expected += once;
    const std::string got = decodeWithFfmpeg(r.mp4File);
    CHECK(got.size() == expected.size());
    CHECK(got == expected);
}

// ffprobe's packets of the extract are the TS's, each copy shifted by its segment's start,
// the whole moved so that the first keyframe is presented at 0.
void checkTimestamps(const Remuxed& r, int copies) {
    const std::vector<Packet> source = probePackets(r.tsFile);
    const std::vector<Packet> remuxed = probePackets(r.mp4File);
    REQUIRE(remuxed.size() == source.size() * static_cast<std::size_t>(copies));
    const auto segmentTicks = static_cast<std::int64_t>(r.seconds * kTicks);
    for (std::size_t i = 0; i < remuxed.size(); ++i) {
        CAPTURE(i);
        const Packet& s = source[i % source.size()];
        const std::int64_t shift = static_cast<std::int64_t>(i / source.size()) * segmentTicks - source.front().pts;
        CHECK(remuxed[i].pts == s.pts + shift);
        CHECK(remuxed[i].dts == s.dts + shift);
        CHECK(remuxed[i].keyframe == s.keyframe);
    }
}

}  // namespace

TEST_CASE("a remuxed extract decodes pixel-identical to the recorded TS, with the TS's times and keyframes") {
    for (const int bframes : {0, 2}) {
        CAPTURE(bframes);
        const Remuxed r(encodeRecorderTs({.frames = 30, .fps = 10, .keyInterval = 10, .bframes = bframes}), 3, 3.0);
        CHECK(r.result.frames == 90);
        CHECK(r.result.actualFrom == kT0);
        CHECK(r.result.actualTo == kT0 + 9 * kMicrosPerSecond);
        checkPixelIdentical(r, 3);
        checkTimestamps(r, 3);
        // Presentation order: GStreamer shows the frames at 0, 0.1, 0.2 s ... whatever the B-frames.
        const std::vector<RawFrame> frames = decodeWithGstreamer(r.mp4File, "qtdemux");
        for (std::size_t i = 0; i < frames.size(); ++i) CHECK(frames[i].streamTimeUs == static_cast<std::int64_t>(i) * 100'000);
        if (bframes) {
            const std::vector<Packet> packets = probePackets(r.mp4File);
            CHECK(std::any_of(packets.begin(), packets.end(), [](const Packet& p) { return p.pts != p.dts; }));
        }
    }
}

TEST_CASE("timestamps that wrap past 2^33 inside a segment stay continuous in the extract") {
    // 30 frames at 10 fps: 9000 ticks apart; the wrap comes after the 12th frame.
    const std::vector<std::uint8_t> ts = retime(encodeRecorderTs({.frames = 30, .bframes = 2}), (std::int64_t{1} << 33) - 12 * 9000);
    const Remuxed r(ts, 1, 3.0);
    CHECK(r.result.frames == 30);
    CHECK(r.result.actualTo == kT0 + 3 * kMicrosPerSecond);
    const std::vector<RawFrame> frames = decodeWithGstreamer(r.mp4File, "qtdemux");
    REQUIRE(frames.size() == 30);
    for (std::size_t i = 0; i < frames.size(); ++i) CHECK(frames[i].streamTimeUs == static_cast<std::int64_t>(i) * 100'000);
    CHECK(decodeWithFfmpeg(r.mp4File) == decodeWithFfmpeg(writeBytes(r.store.dir.path() / "unwrapped.ts",
                                                                      encodeRecorderTs({.frames = 30, .bframes = 2}))));
}

TEST_CASE("a recording gap stays a gap: the frame before it lasts one frame, a new fragment starts after it") {
    StoreOnly s;
    const std::vector<std::uint8_t> ts = encodeRecorderTs({.frames = 20});  // 2 s
    writeSegments(*s.store, ts, kT0, 1, 2.0);
    writeSegments(*s.store, ts, kT0 + 5 * kMicrosPerSecond, 1, 2.0);
    ExtractResult r;
    const fs::path clip = s.extractTo(kT0, kT0 + 7 * kMicrosPerSecond, r);
    CHECK(r.frames == 40);
    const std::vector<Packet> packets = probePackets(clip);
    REQUIRE(packets.size() == 40);
    CHECK(packets[19].pts == 19 * 9000);
    CHECK(packets[20].pts == 5 * kTicks);
    CHECK(packets[39].pts == 5 * kTicks + 19 * 9000);

    // In the file: the fragment after the gap starts at 5 s, and the one before ends 0.1 s
    // after its last frame.
    const std::vector<std::uint8_t> bytes = readBytes(clip);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> fragments;  // (tfdt, summed durations)
    for (const Box& b : boxes(bytes)) {
        if (b.type != "moof") continue;
        const Box traf = child(b, "traf");
        const Box tfdt = child(traf, "tfdt");
        const Box trun = child(traf, "trun");
        const std::uint32_t count = be32(&trun.body[4]);
        std::uint64_t total = 0;
        for (std::uint32_t k = 0; k < count; ++k) total += be32(&trun.body[12 + 16 * k]);
        fragments.emplace_back(be64(&tfdt.body[4]), total);
    }
    REQUIRE(fragments.size() == 4);  // one per 1 s GOP
    CHECK(fragments[1].first + fragments[1].second == 2 * kTicks);
    CHECK(fragments[2].first == 5 * kTicks);
}

TEST_CASE("the MP4 has the documented layout: ftyp, moov with avcC and trex, moof + mdat per keyframe fragment, mfra") {
    const std::vector<std::uint8_t> ts = encodeRecorderTs({.frames = 30, .keyInterval = 10, .bframes = 2});
    const Remuxed r(ts, 2, 3.0);
    const std::vector<std::uint8_t> bytes = readBytes(r.mp4File);
    const std::vector<Box> top = boxes(bytes);
    REQUIRE(top.size() == 2 + 2 * 6 + 1);  // 6 GOPs of 1 s
    CHECK(top[0].type == "ftyp");
    CHECK(top[1].type == "moov");
    CHECK(top.back().type == "mfra");

    const Box trak = child(top[1], "trak");
    const Box elst = child(child(trak, "edts"), "elst");
    CHECK(be32(&elst.body[4]) == 1);
    CHECK(be32(&elst.body[12]) == 18000);  // two B-frames: the first keyframe is shown 2 frames after decoding
    const Box stbl = child(child(child(trak, "mdia"), "minf"), "stbl");
    const Box stsd = child(stbl, "stsd");
    const Box avc1 = child(stsd, "avc1", 8);
    CHECK((be32(&avc1.body[24]) >> 16) == 320u);  // width, height
    CHECK((be32(&avc1.body[24]) & 0xFFFFu) == 240u);
    const Box avcC = child(avc1, "avcC", 78);
    CHECK(avcC.body[4] == 0xFF);  // 4-byte NAL lengths
    CHECK((avcC.body[5] & 0x1Fu) == 1u);
    const Box trex = child(child(top[1], "mvex"), "trex");
    CHECK(be32(&trex.body[4]) == 1);

    std::uint64_t nextDecode = 0;
    std::uint32_t sequence = 0;
    for (std::size_t i = 2; i + 1 < top.size(); i += 2) {
        CAPTURE(i);
        REQUIRE(top[i].type == "moof");
        REQUIRE(top[i + 1].type == "mdat");
        CHECK(be32(&child(top[i], "mfhd").body[4]) == ++sequence);
        const Box traf = child(top[i], "traf");
        const Box tfhd = child(traf, "tfhd");
        CHECK((be32(&tfhd.body[0]) & 0x020000u) != 0u);  // default-base-is-moof
        CHECK(be64(&child(traf, "tfdt").body[4]) == nextDecode);
        const Box trun = child(traf, "trun");
        CHECK(trun.body[0] == 1);  // version 1: signed composition offsets
        const std::uint32_t count = be32(&trun.body[4]);
        CHECK(count == 10);
        // data_offset: from the moof's first byte to the mdat's payload.
        CHECK(be32(&trun.body[8]) == top[i + 1].offset + 8 - top[i].offset);
        std::uint64_t sizes = 0;
        for (std::uint32_t k = 0; k < count; ++k) {
            const std::uint8_t* sample = &trun.body[12 + 16 * k];
            nextDecode += be32(sample);
            sizes += be32(sample + 4);
            CHECK(be32(sample + 8) == (k == 0 ? 0x02000000u : 0x01010000u));  // a sync sample opens each fragment
        }
        CHECK(sizes == top[i + 1].body.size());
    }
    const Box tfra = child(top.back(), "tfra");
    CHECK(be32(&tfra.body[12]) == 6);
    const Box mfro = child(top.back(), "mfro");
    CHECK(be32(&mfro.body[4]) == top.back().body.size() + 8);
}

TEST_CASE("a segment that cannot be remuxed is named: in the gap, or in the error when nothing else is in the range") {
    StoreOnly s;
    const std::vector<std::uint8_t> good = encodeRecorderTs({.frames = 20});
    writeSegments(*s.store, good, kT0, 1, 2.0);
    ExtractResult r;
    SUBCASE("no SPS or PPS") {
        std::vector<std::uint8_t> bad = good;
        // Turn SPS and PPS into filler NAL units (same length): nothing else changes.
        for (std::size_t i = 0; i + 4 < bad.size(); ++i)
            if (bad[i] == 0 && bad[i + 1] == 0 && bad[i + 2] == 1 && ((bad[i + 3] & 0x1F) == 7 || (bad[i + 3] & 0x1F) == 8))
                bad[i + 3] = 0x0C;
        writeSegments(*s.store, bad, kT0 + 2 * kMicrosPerSecond, 1, 2.0);
        CHECK_NOTHROW(s.extractTo(kT0, kT0 + 4 * kMicrosPerSecond, r));  // the first segment's SPS stays in force
        const std::string message =
            extractErrorOf([&] { s.extractTo(kT0 + 2 * kMicrosPerSecond, kT0 + 4 * kMicrosPerSecond, r); });
        CAPTURE(message);
        CHECK(contains(message, "segment 2"));
        CHECK(contains(message, "no SPS and PPS"));
    }
    SUBCASE("a lost packet") {
        std::vector<std::uint8_t> bad;
        for (std::size_t i = 0; i < good.size() / 188; ++i)
            if (i != 40) bad.insert(bad.end(), good.begin() + static_cast<long>(i * 188), good.begin() + static_cast<long>(i * 188 + 188));
        writeSegments(*s.store, bad, kT0 + 2 * kMicrosPerSecond, 1, 2.0);
        // Packet 40 is in the segment's first GOP: with the sound segment 1 in the range, segment 2
        // is a gap (remux_repair_test.cpp); alone, nothing is sound and the extract fails.
        CHECK_NOTHROW(s.extractTo(kT0, kT0 + 4 * kMicrosPerSecond, r));
        REQUIRE(r.gaps.size() == 1);
        CHECK(r.gaps[0].from == kT0 + 2 * kMicrosPerSecond);
        const std::string message =
            extractErrorOf([&] { s.extractTo(kT0 + 2 * kMicrosPerSecond, kT0 + 4 * kMicrosPerSecond, r); });
        CAPTURE(message);
        CHECK(contains(message, "segment 2"));
        CHECK(contains(message, "continuity counter"));
    }
}

TEST_CASE("the MP4 writer refuses samples that would make an invalid file") {
    std::vector<std::uint8_t> sps;
    {
        TsDemuxer d([&](const TsAccessUnit& au) {
            std::vector<std::uint8_t> avcc;
            auto ps = annexBToAvcc(au.data, avcc).parameterSets;
            if (!ps.sps.empty() && sps.empty()) sps = ps.sps.front();
        });
        d.push(encodeRecorderTs({.frames = 1}));
        d.finish();
    }
    std::uint64_t written = 0;
    CHECK_THROWS_WITH_AS(FragmentedMp4Writer([](auto) {}, ParameterSets{}), doctest::Contains("no SPS and PPS"), ExtractError);
    FragmentedMp4Writer w([&](std::span<const std::uint8_t> b) { written += b.size(); }, ParameterSets{{sps}, {{0x68, 0xCE}}});
    w.add({.data = {0, 0, 0, 1, 0x65}, .decodeTime = 9000, .duration = 9000, .keyframe = true});
    CHECK_THROWS_WITH_AS(w.add({.data = {0, 0, 0, 1, 0x41}, .decodeTime = 0, .duration = 9000}),
                         doctest::Contains("decode times go back"), ExtractError);
    CHECK_THROWS_WITH_AS(w.add({.data = {0, 0, 0, 1, 0x41}, .decodeTime = 18000, .duration = 0}),
                         doctest::Contains("without duration"), ExtractError);
    w.finish();
    CHECK(written == w.bytes());
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// What real encoders and damaged cards leave in the ring, remuxed all the same: decode times
// that stall or step back (repaired as ffmpeg's muxers do, and counted), damaged segments (left
// out and named as gaps), and a stream format that changes at a keyframe (a sample entry each).
#include "media.hpp"

#include "mimamori/retrieval/extract.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

namespace {

// `ts` stored as one segment of `seconds` at kT0 and extracted whole.
struct OneSegment {
    StoreOnly store;
    fs::path tsFile, mp4File;
    ExtractResult result;
    OneSegment(const std::vector<std::uint8_t>& ts, double seconds) {
        tsFile = writeBytes(store.dir.path() / "source.ts", ts);
        writeSegments(*store.store, ts, kT0, 1, seconds);
        mp4File = store.extractTo(kT0, kT0 + static_cast<UtcMicros>(seconds * 1e6), result);
    }
};

// Decoded frame for frame like the recorded TS, by GStreamer and by ffmpeg.
void checkFrameExact(const fs::path& ts, const fs::path& mp4) {
    const std::vector<RawFrame> source = decodeWithGstreamer(ts, "tsdemux");
    const std::vector<RawFrame> remuxed = decodeWithGstreamer(mp4, "qtdemux");
    REQUIRE(!source.empty());
    REQUIRE(remuxed.size() == source.size());
    for (std::size_t i = 0; i < remuxed.size(); ++i) {
        CAPTURE(i);
        CHECK((remuxed[i].bytes == source[i].bytes));
    }
    CHECK(decodeWithFfmpeg(mp4) == decodeWithFfmpeg(ts));
}

constexpr std::int64_t k23976Ticks = 3754;  // 90000 * 1001 / 24000 = 3753.75, as the TS rounds

}  // namespace

TEST_CASE("equal and slightly backward decode times are moved by the smallest step, counted, and decode frame-exact") {
    // 23.976 fps with B-frames, as in the police case; two access units get a DTS that does not
    // increase: one equal to its predecessor's, one 2 ticks behind it.
    std::vector<std::uint8_t> ts = encodeRecorderTs({.frames = 30, .fps = 24000, .fpsDen = 1001, .bframes = 2});
    std::vector<PesTimes> times = videoPesTimes(ts);
    REQUIRE(times.size() == 30);
    for (const std::size_t i : {5u, 12u}) REQUIRE(times[i].dts);
    writePesTime(times[5].dts, readPesTime(times[4].dts));
    writePesTime(times[12].dts, readPesTime(times[11].dts) - 2);
    const OneSegment r(ts, 30 * 1001.0 / 24000.0);
    const std::vector<Packet> source = probePackets(r.tsFile);
    REQUIRE(source.size() == 30);
    REQUIRE(source[5].dts == source[4].dts);
    CHECK(r.result.frames == 30);
    CHECK(r.result.timestampRepairs == 2);
    CHECK(r.result.gaps.empty());
    const std::vector<Packet> packets = probePackets(r.mp4File);
    REQUIRE(packets.size() == 30);
    const std::int64_t shift = packets[0].dts - source[0].dts;
    for (std::size_t i = 0; i < packets.size(); ++i) {
        CAPTURE(i);
        if (i > 0) CHECK(packets[i].dts > packets[i - 1].dts);  // strictly increasing
        CHECK(packets[i].pts >= packets[i].dts);
        CHECK(packets[i].pts == source[i].pts + shift);  // presentation untouched
        if (i != 5 && i != 12) CHECK(packets[i].dts == source[i].dts + shift);
    }
    CHECK(packets[5].dts == packets[4].dts + 1);  // the smallest move
    CHECK(packets[12].dts == packets[11].dts + 1);
    checkFrameExact(r.tsFile, r.mp4File);
}

TEST_CASE("a decode time far behind the previous one (the stream's clock restarted) continues one frame on") {
    std::vector<std::uint8_t> ts = encodeRecorderTs({.frames = 30, .fps = 24000, .fpsDen = 1001});
    std::vector<PesTimes> times = videoPesTimes(ts);
    REQUIRE(times.size() == 30);
    for (std::size_t i = 15; i < times.size(); ++i) {  // from the 16th frame on, 5 s earlier
        writePesTime(times[i].pts, readPesTime(times[i].pts) - 5 * 90000);
        if (times[i].dts) writePesTime(times[i].dts, readPesTime(times[i].dts) - 5 * 90000);
    }
    const OneSegment r(ts, 30 * 1001.0 / 24000.0);
    CHECK(r.result.timestampRepairs == 1);
    const std::vector<Packet> packets = probePackets(r.mp4File);
    REQUIRE(packets.size() == 30);
    for (std::size_t i = 1; i < packets.size(); ++i) {
        CAPTURE(i);
        CHECK(packets[i].dts - packets[i - 1].dts >= k23976Ticks - 1);
        CHECK(packets[i].dts - packets[i - 1].dts <= k23976Ticks);
    }
    CHECK(r.result.actualTo - r.result.actualFrom < 2 * kMicrosPerSecond);  // 30 frames, not 5 s more
}

TEST_CASE("a damaged segment is left out from its last whole GOP on and named as a gap; the rest extracts") {
    StoreOnly s;
    const std::vector<std::uint8_t> good = encodeRecorderTs({.frames = 20});  // 2 s, GOPs of 1 s
    const fs::path goodFile = writeBytes(s.dir.path() / "good.ts", good);
    // A packet lost in the second GOP: the first GOP of the segment is sound and kept.
    std::size_t lost = 0;
    {
        std::vector<std::uint8_t> copy = good;
        const std::vector<PesTimes> times = videoPesTimes(copy);
        REQUIRE(times.size() == 20);
        lost = static_cast<std::size_t>(times[15].pts - copy.data()) / 188 + 1;
    }
    std::vector<std::uint8_t> bad;
    for (std::size_t i = 0; i < good.size() / 188; ++i)
        if (i != lost) bad.insert(bad.end(), good.begin() + static_cast<long>(i * 188), good.begin() + static_cast<long>(i * 188 + 188));
    writeSegments(*s.store, good, kT0, 1, 2.0);
    writeSegments(*s.store, bad, kT0 + 2 * kMicrosPerSecond, 1, 2.0);
    writeSegments(*s.store, good, kT0 + 4 * kMicrosPerSecond, 1, 2.0);
    const auto segments = s.store->all();
    REQUIRE(segments.size() == 3);

    ExtractResult r;
    const fs::path clip = s.extractTo(kT0, kT0 + 6 * kMicrosPerSecond, r);
    REQUIRE(r.gaps.size() == 1);
    CHECK(r.gaps[0].segment == segments[1].sequence);
    CHECK(r.gaps[0].from == kT0 + 3 * kMicrosPerSecond);
    CHECK(r.gaps[0].to == kT0 + 4 * kMicrosPerSecond);
    CHECK(contains(r.gaps[0].reason, "continuity counter"));
    CHECK(r.frames == 50);
    CHECK(r.actualFrom == kT0);
    CHECK(r.actualTo == kT0 + 6 * kMicrosPerSecond);
    // The gap stays a gap on the timeline: the last segment's first frame is shown at 4 s.
    const std::vector<Packet> packets = probePackets(clip);
    REQUIRE(packets.size() == 50);
    CHECK(packets[29].pts == 2 * 90000 + 9 * 9000);
    CHECK(packets[30].pts == 4 * 90000);
    // Frame-exact: the first segment, the sound GOP of the second, the third.
    const std::string whole = decodeWithFfmpeg(goodFile);
    REQUIRE(whole.size() % 20 == 0);
    const std::size_t frameBytes = whole.size() / 20;
    CHECK(decodeWithFfmpeg(clip) == whole + whole.substr(0, 10 * frameBytes) + whole);
    const std::vector<RawFrame> source = decodeWithGstreamer(goodFile, "tsdemux");
    const std::vector<RawFrame> remuxed = decodeWithGstreamer(clip, "qtdemux");
    REQUIRE(remuxed.size() == 50);
    for (std::size_t i = 0; i < 50; ++i) {
        CAPTURE(i);
        const std::size_t k = i < 20 ? i : i < 30 ? i - 20 : i - 30;
        CHECK((remuxed[i].bytes == source[k].bytes));
    }

    // Only the damaged segment in the range: nothing sound, the extract fails and says why.
    const std::string message =
        extractErrorOf([&] { s.extractTo(kT0 + 3 * kMicrosPerSecond + 500'000, kT0 + 4 * kMicrosPerSecond, r, "b.mp4"); });
    CAPTURE(message);
    CHECK(contains(message, "no sound footage"));
    CHECK(contains(message, fmt::format("segment {}", segments[1].sequence)));
    CHECK(contains(message, "continuity counter"));
}

TEST_CASE("a segment whose encrypted bytes were altered on the card is a gap, the others extract") {
    StoreOnly s;
    const std::vector<std::uint8_t> ts = encodeTs(20, kFps, kKeyInterval, 320, 240, 1 /* snow: large */);
    writeSegments(*s.store, ts, kT0, 3, 2.0);
    const auto segments = s.store->all();
    REQUIRE(segments.size() == 3);
    // Flip a byte in the middle of the second segment's file.
    const fs::path file = segments[1].path;
    REQUIRE(fs::file_size(file) > 100'000);
    {
        const int fd = ::open(file.c_str(), O_RDWR);
        REQUIRE(fd >= 0);
        const off_t at = static_cast<off_t>(fs::file_size(file) / 2);
        std::uint8_t b = 0;
        REQUIRE(::pread(fd, &b, 1, at) == 1);
        b ^= 0x40;
        REQUIRE(::pwrite(fd, &b, 1, at) == 1);
        ::close(fd);
    }
    ExtractResult r;
    const fs::path clip = s.extractTo(kT0, kT0 + 6 * kMicrosPerSecond, r);
    REQUIRE(r.gaps.size() == 1);
    CHECK(r.gaps[0].segment == segments[1].sequence);
    CHECK(r.gaps[0].to == kT0 + 4 * kMicrosPerSecond);
    CHECK(r.gaps[0].from >= kT0 + 2 * kMicrosPerSecond);
    CHECK(r.gaps[0].from < kT0 + 4 * kMicrosPerSecond);
    CHECK(r.frames >= 40);
    CHECK(r.frames < 60);
    CHECK(decodeWithGstreamer(clip, "qtdemux").size() == r.frames);
}

TEST_CASE("a resolution change at a keyframe: an avc3 sample entry, parameter sets in-band, frame-exact with both decoders") {
    StoreOnly s;
    const std::vector<std::uint8_t> small = encodeRecorderTs({.frames = 20});
    const std::vector<std::uint8_t> large = encodeRecorderTs({.frames = 20, .width = 640, .height = 480});
    const fs::path smallFile = writeBytes(s.dir.path() / "small.ts", small);
    const fs::path largeFile = writeBytes(s.dir.path() / "large.ts", large);
    writeSegments(*s.store, small, kT0, 1, 2.0);
    writeSegments(*s.store, large, kT0 + 2 * kMicrosPerSecond, 1, 2.0);
    writeSegments(*s.store, small, kT0 + 4 * kMicrosPerSecond, 1, 2.0);
    ExtractResult r;
    const fs::path clip = s.extractTo(kT0, kT0 + 6 * kMicrosPerSecond, r);
    CHECK(r.frames == 60);
    CHECK(r.gaps.empty());

    const std::vector<RawFrame> a = decodeWithGstreamer(smallFile, "tsdemux");
    const std::vector<RawFrame> b = decodeWithGstreamer(largeFile, "tsdemux");
    const std::vector<RawFrame> got = decodeWithGstreamer(clip, "qtdemux");
    REQUIRE(got.size() == 60);
    for (std::size_t i = 0; i < 60; ++i) {
        CAPTURE(i);
        CHECK(got[i].bytes.size() == (i >= 20 && i < 40 ? b[i - 20] : a[i % 20]).bytes.size());
        CHECK((got[i].bytes == (i >= 20 && i < 40 ? b[i - 20] : a[i % 20]).bytes));
        CHECK(got[i].streamTimeUs == static_cast<std::int64_t>(i) * 100'000);
    }
    const std::string fa = decodeWithFfmpeg(smallFile);
    CHECK(decodeWithFfmpeg(clip) == fa + decodeWithFfmpeg(largeFile) + fa);

    // One avc3 sample entry (the first format in its avcC); each keyframe carries its SPS and
    // PPS in-band, which is how both decoders above followed the change.
    const std::string bytes = common::readFile(clip);
    CHECK(bytes.find("avc3") != std::string::npos);
    CHECK(bytes.find("avc1", bytes.find("avc1") + 4) == std::string::npos);  // only the ftyp brand
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Real recordings through the recorder's own pipeline at the frame rates real cameras give
// (NTSC rates, 12.5 and 7.5 fps, jittering timestamps) and with other encoder settings: every
// extract decodes frame for frame like the recording itself, with ffmpeg and with GStreamer,
// and the segments' time labels match the frames they hold.
#include "media.hpp"

#include "mimamori/masking/mask.hpp"
#include "mimamori/common/config_error.hpp"
#include "mimamori/daemon/main_loop.hpp"
#include "mimamori/recorder/recorder.hpp"

#include <doctest/doctest.h>

#include <cmath>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

namespace {

struct Case {
    std::string name = "";
    std::string source = "";  // gst-launch description of raw video ("pipeline" source kind)
    int frames = 0;          // frames the source gives
    double fps = 0;          // its nominal frame rate
    std::string x264 = "";   // encoder properties; empty: the recorder's default (B-frames)
    int keyframeFrames = 0;  // encoder.keyframe_interval_frames; 0: the default
};

std::string testSource(int frames, const std::string& rate, bool live = false) {
    return fmt::format(
        "videotestsrc num-buffers={} pattern=ball is-live={} ! video/x-raw,format=I420,width=160,height=120,framerate={}",
        frames, live ? "true" : "false", rate);
}

struct Recorded {
    TempDir dir;
    recorder::RecorderConfig config;
    std::vector<store::SegmentInfo> segments;
    fs::path tsFile;  // every segment's plaintext back to back: the recorded stream
};

// Records `c` through the real recorder (masks, encoder, segmenter, encrypted ring) until the
// source ends.
void record(const Case& c, Recorded& r, double segmentSeconds = 1.0) {
    common::writeFileAtomic(r.dir.path() / "masks.json",
                            R"({"version": 1, "camera": "cam-media", "masks": [{"name": "house 1",
                               "polygon": [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3], [0.1, 0.3]]}]})");
    recorder::RecorderConfig& config = r.config;
    config.store.cameraId = "cam-media";
    config.store.storageDir = r.dir.path() / "ring";
    config.store.keyDir = r.dir.path() / "keys";
    config.stateDir = r.dir.path() / "state";
    config.maskFile = r.dir.path() / "masks.json";
    config.segmentSeconds = segmentSeconds;
    config.source.kind = "pipeline";
    config.source.location = c.source;
    config.source.framerate = static_cast<int>(std::lround(c.fps));
    config.encoder.properties = c.x264;
    config.encoder.keyframeIntervalFrames = c.keyframeFrames;
    const common::SystemClock clock;
    {
        recorder::RecorderOptions options;
        options.exitAtEndOfStream = true;
        const auto ring = store::SegmentStore::open(config.store, clock);
        recorder::Recorder rec(config, masking::loadMaskFile(config.maskFile), *ring, nullptr, clock, options);
        REQUIRE(daemon::runRecorder(rec) == 0);
    }
    auto store = store::SegmentStore::open(config.store, clock);
    r.segments = store->all();
    REQUIRE(!r.segments.empty());
    std::vector<std::uint8_t> ts;
    for (const auto& s : r.segments) {
        const auto read = store->read(s, [&](std::span<const std::uint8_t> b) { ts.insert(ts.end(), b.begin(), b.end()); });
        REQUIRE_MESSAGE(read.ok(), (read.ok() ? "" : read.error()));
    }
    r.tsFile = writeBytes(r.dir.path() / "recorded.ts", ts);
}

// Extracts [from, to) of the recording into `name`.
fs::path extract(Recorded& r, UtcMicros from, UtcMicros to, ExtractResult& result, const std::string& name) {
    const common::SystemClock clock;
    auto store = store::SegmentStore::open(r.config.store, clock);
    std::vector<std::uint8_t> mp4;
    result = extractMp4(*store, from, to, [&](std::span<const std::uint8_t> b) { mp4.insert(mp4.end(), b.begin(), b.end()); });
    return writeBytes(r.dir.path() / name, mp4);
}

void checkFrameExact(const fs::path& ts, const fs::path& mp4, int expectedFrames) {
    const std::vector<RawFrame> source = decodeWithGstreamer(ts, "tsdemux");
    const std::vector<RawFrame> remuxed = decodeWithGstreamer(mp4, "qtdemux");
    CHECK(source.size() == static_cast<std::size_t>(expectedFrames));
    REQUIRE(remuxed.size() == source.size());
    for (std::size_t i = 0; i < remuxed.size(); ++i) {
        CAPTURE(i);
        CHECK((remuxed[i].bytes == source[i].bytes));
    }
    const std::string a = decodeWithFfmpeg(ts), b = decodeWithFfmpeg(mp4);
    CHECK(a.size() == b.size());
    CHECK((a == b));
    CHECK(a.size() == static_cast<std::size_t>(expectedFrames) * 160 * 120 * 3 / 2);
}

void checkCase(const Case& c) {
    CAPTURE(c.name);
    Recorded r;
    record(c, r);
    for (std::size_t i = 0; i + 1 < r.segments.size(); ++i) CHECK(r.segments[i].end == r.segments[i + 1].start);
    ExtractResult result;
    const fs::path mp4 = extract(r, r.segments.front().start, r.segments.back().end, result, "all.mp4");
    MESSAGE(c.name, ": ", r.segments.size(), " segments, ", result.frames, " frames, ", result.timestampRepairs,
            " timestamp repairs");
    CHECK(result.frames == static_cast<std::uint64_t>(c.frames));
    CHECK(result.gaps.empty());
    CHECK(result.actualFrom == r.segments.front().start);
    CHECK(result.actualTo == r.segments.back().end);
    checkFrameExact(r.tsFile, mp4, c.frames);
    // Decode times as the player sees them: strictly increasing, never after presentation.
    const std::vector<Packet> packets = probePackets(mp4);
    REQUIRE(packets.size() == static_cast<std::size_t>(c.frames));
    for (std::size_t i = 0; i < packets.size(); ++i) {
        CAPTURE(i);
        if (i > 0) CHECK(packets[i].dts > packets[i - 1].dts);
        CHECK(packets[i].pts >= packets[i].dts);
    }
}

}  // namespace

TEST_CASE("recorded at 23.976, 29.97, 59.94, 12.5 and 7.5 fps, every extract decodes frame-exact") {
    const Case cases[] = {
        {"23.976 fps", testSource(72, "24000/1001"), 72, 24000.0 / 1001},
        {"29.97 fps", testSource(90, "30000/1001"), 90, 30000.0 / 1001},
        {"59.94 fps", testSource(150, "60000/1001"), 150, 60000.0 / 1001},
        {"12.5 fps", testSource(38, "25/2"), 38, 12.5},
        {"7.5 fps", testSource(23, "15/2"), 23, 7.5},
    };
    for (const Case& c : cases) checkCase(c);
}

TEST_CASE("other encoder settings: no B-frames, B-pyramid, several slices, intra refresh, CAVLC") {
    const std::string rate = "15/1";
    const Case cases[] = {
        {"no B-frames", testSource(45, rate), 45, 15, "speed-preset=ultrafast bframes=0"},
        {"B-pyramid", testSource(45, rate), 45, 15, "speed-preset=veryfast bframes=3 b-pyramid=true b-adapt=false"},
        {"4 slices", testSource(45, rate), 45, 15, "speed-preset=ultrafast bframes=2 option-string=slices=4"},
        {"intra refresh", testSource(45, rate), 45, 15, "speed-preset=ultrafast bframes=0 intra-refresh=true"},
        {"CAVLC", testSource(45, rate), 45, 15, "speed-preset=ultrafast bframes=2 cabac=false"},
    };
    for (const Case& c : cases) checkCase(c);
}

TEST_CASE("a live source whose timestamps jitter: recorded and extracted frame-exact, decode times repaired") {
    // A live test source stamped with the pipeline clock as each frame is made (as a camera
    // driver does), 15 fps, with the scheduling jitter that brings.
    checkCase({"live, clock-stamped", "videotestsrc num-buffers=40 pattern=ball is-live=true do-timestamp=true ! "
               "video/x-raw,format=I420,width=160,height=120,framerate=15/1",
               40, 15});
    // Jitter of up to ±8 ms on every frame of a 25 fps file, through the file source's decodebin.
    TempDir dir;
    const fs::path vfr = dir.path() / "jitter.mkv";
    const auto made = testing::runCommand(fmt::format(
        "ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=160x120:rate=25 -frames:v 50 "
        "-vf \"setpts='(N/25+0.008*sin(N*2.1))/TB'\" -fps_mode passthrough -c:v ffv1 '{}'",
        vfr.string()));
    REQUIRE(made.status == 0);
    checkCase({"file with ±8 ms jitter", fmt::format("filesrc location=\"{}\" ! decodebin", vfr.string()), 50, 25});
}

TEST_CASE("the first segment after a pipeline start is labelled with the frames it holds (B-frames)") {
    // The recorder's default encoder: 2 B-frames, so each keyframe is decoded 2 frames before it
    // is shown. All segments, the first included, begin at their first frame's presentation.
    Recorded r;
    record({"15 fps default encoder", testSource(60, "15/1"), 60, 15}, r);
    REQUIRE(r.segments.size() >= 3);
    const UtcMicros frame = kMicrosPerSecond / 15;
    for (std::size_t i = 0; i < r.segments.size(); ++i) {
        CAPTURE(i);
        ExtractResult one;
        const auto& s = r.segments[i];
        const fs::path mp4 = extract(r, s.start, s.end, one, fmt::format("segment{}.mp4", i));
        CHECK(one.actualFrom == s.start);
        CHECK(one.actualTo == s.end);
        // The label's length is the frames' length, to the microsecond rounding of each frame.
        const auto frames = static_cast<UtcMicros>(one.frames);
        CHECK(std::abs((s.end - s.start) - frames * frame) <= frames);
        const Decoded d = decodeMp4(mp4);
        CHECK(d.frames == static_cast<int>(one.frames));
        CHECK(d.firstPts >= 0);
        CHECK(std::abs((one.actualTo - one.actualFrom) - (d.lastEnd - d.firstPts)) <= 1000);
    }
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder end to end on real pipelines: record, decrypt through the store's read API,
// decode, and check masks in every frame, fidelity elsewhere, keyframe cuts and durations.
#include "mimamori/recorder/config.hpp"
#include "mimamori/recorder/pipeline.hpp"
#include "mimamori/daemon/main_loop.hpp"
#include "mimamori/recorder/recorder.hpp"
#include "mimamori/store/segment_store.hpp"
#include "pipeline_support.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/masking/mask.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

using namespace mimamori;
using namespace mimamori::testing;

namespace {

std::filesystem::path freshDir(const std::string& name) {
    auto dir = std::filesystem::path(MIMAMORI_BINARY_DIR) / "test-tmp" / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

recorder::RecorderConfig configIn(const std::filesystem::path& dir, const std::vector<Rect>& masks) {
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", masks));
    recorder::RecorderConfig c;
    c.store.cameraId = "cam-test";
    c.store.storageDir = dir / "ring";
    c.store.keyDir = dir / "keys";
    c.stateDir = dir / "state";
    c.maskFile = dir / "masks.json";
    c.segmentSeconds = 10;
    // Higher quality than the default so "the rest matches the source" is a tight check.
    c.encoder.properties = "speed-preset=superfast tune=zerolatency bframes=0 pass=qual quantizer=20";
    return c;
}

struct Recording {
    std::vector<store::SegmentInfo> segments;
    std::vector<Frame> frames;           // all segments decoded one by one, in order
    std::vector<std::size_t> perSegment;  // frames each segment decoded to on its own
    bool everySegmentStartsOnKeyframe = true;
};

Recording recordAndDecode(const recorder::RecorderConfig& config) {
    common::SystemClock clock;
    {
        recorder::RecorderOptions options;
        options.exitAtEndOfStream = true;
        const auto ring = store::SegmentStore::open(config.store, clock);
        recorder::Recorder rec(config, masking::loadMaskFile(config.maskFile), *ring, nullptr, clock, options);
        REQUIRE(daemon::runRecorder(rec) == 0);
    }
    auto store = store::SegmentStore::open(config.store, clock);
    Recording r;
    r.segments = store->all();
    for (const auto& ts : readSegments(*store, r.segments)) {
        bool key = false;
        auto frames = decodeTs(ts, &key);
        r.everySegmentStartsOnKeyframe = r.everySegmentStartsOnKeyframe && key;
        r.perSegment.push_back(frames.size());
        for (auto& f : frames) r.frames.push_back(std::move(f));
    }
    return r;
}

// Masked area black in every frame; outside the masks the frame matches the reference.
void checkFrames(const std::vector<Frame>& recorded, const std::vector<Frame>& reference,
                 const std::vector<Rect>& masks) {
    REQUIRE(recorded.size() == reference.size());
    REQUIRE(!recorded.empty());
    double worstPsnr = 99, worstMean = 0;
    int worstMax = 0, worstChroma = 0;
    double sourceMean = 255;
    for (std::size_t i = 0; i < recorded.size(); ++i) {
        const int w = recorded[i].width, h = recorded[i].height;
        REQUIRE(reference[i].width == w);
        std::vector<PixelRect> exclude;
        for (const auto& m : masks) exclude.push_back(pixels(m, w, h, -8));  // codec edge effects
        for (const auto& m : masks) {
            PixelRect p = pixels(m, w, h, 2);
            Stats s = lumaStats(recorded[i], p.x0, p.y0, p.x1, p.y1);
            worstMean = std::max(worstMean, s.mean);
            worstMax = std::max(worstMax, s.max);
            worstChroma = std::max(worstChroma, chromaDeviation(recorded[i], p.x0, p.y0, p.x1, p.y1));
            sourceMean = std::min(sourceMean, lumaStats(reference[i], p.x0, p.y0, p.x1, p.y1).mean);
        }
        worstPsnr = std::min(worstPsnr, psnrOutside(recorded[i], reference[i], exclude));
    }
    MESSAGE("frames ", recorded.size(), ": masked luma mean<=", worstMean, " max<=", worstMax,
            " chroma dev<=", worstChroma, "; PSNR outside masks >= ", worstPsnr,
            " dB; source luma under masks >= ", sourceMean);
    CHECK(sourceMean > 40);  // the masked areas really hold something in the source
    CHECK(worstMean <= 6);
    CHECK(worstMax <= 24);
    CHECK(worstChroma <= 12);
    CHECK(worstPsnr >= 30);
}

void checkSegments(const Recording& r, std::size_t expectedFrames, double fps) {
    REQUIRE(r.segments.size() >= 2);
    CHECK(r.everySegmentStartsOnKeyframe);
    std::size_t total = 0;
    for (auto n : r.perSegment) total += n;
    CHECK(total == expectedFrames);  // every segment decodes on its own, from its first frame
    common::UtcMicros sum = 0;
    for (std::size_t i = 0; i < r.segments.size(); ++i) {
        sum += r.segments[i].end - r.segments[i].start;
        if (i + 1 < r.segments.size()) {
            CHECK(r.segments[i].end == r.segments[i + 1].start);
            CHECK(r.segments[i].end - r.segments[i].start >= 10 * common::kMicrosPerSecond - 10'000);
        }
        CHECK(!r.segments[i].recovered);
    }
    const double expected = static_cast<double>(expectedFrames) / fps * 1e6;
    CHECK(std::abs(static_cast<double>(sum) - expected) <= 1e6 / fps);
}

}  // namespace

TEST_CASE("street clip: masked windows are black in every frame, the rest matches the source") {
    const std::string clip = MIMAMORI_SOURCE_DIR "/../shared/data/street-vtest.avi";
    REQUIRE(std::filesystem::exists(clip));
    // The building's windows, x 325..575, y 40..110 of 768x576.
    const std::vector<Rect> masks = {{325.0 / 768, 40.0 / 576, 575.0 / 768, 110.0 / 576}};
    auto dir = freshDir("pipeline-street");
    auto config = configIn(dir, masks);
    config.source.kind = "file";
    config.source.location = clip;
    config.source.realtime = false;

    Recording r = recordAndDecode(config);
    auto reference = runToFrames("filesrc location=\"" + clip +
                                 "\" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! "
                                 "appsink name=out");
    checkFrames(r.frames, reference, masks);
    checkSegments(r, reference.size(), 10.0);
}

TEST_CASE("test source: masks hold on the generated scene and segments add up") {
    const std::vector<Rect> masks = {{0.05, 0.1, 0.3, 0.45}, {0.55, 0.2, 0.7, 0.6}};
    auto dir = freshDir("pipeline-testsrc");
    auto config = configIn(dir, masks);
    config.source.kind = "test";
    config.source.realtime = false;
    config.source.width = 320;
    config.source.height = 240;
    config.source.framerate = 10;
    config.source.numBuffers = 230;

    Recording r = recordAndDecode(config);
    auto reference = runToFrames(recorder::sourceDescription(
        config.source, "videoconvert ! video/x-raw,format=I420 ! appsink name=out"));
    checkFrames(r.frames, reference, masks);
    checkSegments(r, 230, 10.0);
}

TEST_CASE("masks are rasterised again when the resolution changes mid-stream") {
    // concat switches from 320x240 to 640x480 inside one stream: new caps reach the mask stage.
    const std::vector<Rect> masks = {{0.25, 0.25, 0.75, 0.75}};
    auto dir = freshDir("pipeline-caps");
    auto config = configIn(dir, masks);
    config.source.kind = "pipeline";
    config.source.location =
        "videotestsrc num-buffers=20 pattern=smpte75 ! video/x-raw,width=320,height=240,"
        "framerate=10/1 ! mimamori_concat.  videotestsrc num-buffers=20 pattern=smpte75 ! "
        "video/x-raw,width=640,height=480,framerate=10/1 ! mimamori_concat.  "
        "concat name=mimamori_concat";
    Recording r = recordAndDecode(config);
    auto reference = runToFrames(recorder::sourceDescription(
        config.source, "videoconvert ! video/x-raw,format=I420 ! appsink name=out"));
    REQUIRE(r.frames.size() == 40);
    CHECK(r.frames.front().width == 320);
    CHECK(r.frames.back().width == 640);
    checkFrames(r.frames, reference, masks);
}

// Extracting from a real store: whole GOPs covering the range, an MP4 GStreamer decodes.
#include "fixture.hpp"

#include "mimamori/retrieval/extract.hpp"

#include <doctest/doctest.h>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

namespace {

struct StoreOnly {
    TempDir dir;
    common::ManualClock clock{kT0 + 3600 * kMicrosPerSecond};
    std::unique_ptr<recorder::SegmentStore> store;
    StoreOnly() {
        recorder::StoreConfig sc;
        sc.cameraId = "cam";
        sc.storageDir = dir.path() / "card";
        sc.keyDir = dir.path() / "keys";
        store = recorder::SegmentStore::open(sc, clock);
    }
    fs::path extractTo(UtcMicros from, UtcMicros to, ExtractResult& result) {
        const fs::path out = dir.path() / "clip.mp4";
        std::vector<std::uint8_t> bytes;
        result = extractMp4(*store, from, to, [&](std::span<const std::uint8_t> b) { bytes.insert(bytes.end(), b.begin(), b.end()); });
        CHECK(result.bytes == bytes.size());
        common::writeFileAtomic(out, std::string(bytes.begin(), bytes.end()));
        return out;
    }
};

}  // namespace

TEST_CASE("an extract covers the range with whole GOPs, at most one outside on each end, and decodes") {
    StoreOnly s;
    recordSegments(*s.store, kT0, 5);  // [kT0, kT0 + 10 s), GOPs of 1 s
    const UtcMicros gop = kMicrosPerSecond;

    SUBCASE("a range inside one segment, cut inside GOPs") {
        const UtcMicros from = kT0 + 2 * gop + 300'000, to = kT0 + 3 * gop + 200'000;
        ExtractResult r;
        const fs::path clip = s.extractTo(from, to, r);
        CHECK(r.actualFrom == kT0 + 2 * gop);  // the GOP holding `from`
        CHECK(r.actualTo == kT0 + 4 * gop);    // the end of the GOP holding `to`
        CHECK(r.frames == 2 * kFps);
        const Decoded d = decodeMp4(clip);
        CHECK(d.frames == 2 * kFps);
        CHECK(d.firstPts == 0);
        CHECK(d.lastEnd == doctest::Approx(2 * gop).epsilon(0.001));
    }
    SUBCASE("a range across segment boundaries on GOP boundaries takes nothing outside it") {
        const UtcMicros from = kT0 + 3 * gop, to = kT0 + 7 * gop;
        ExtractResult r;
        const fs::path clip = s.extractTo(from, to, r);
        CHECK(r.actualFrom == from);
        CHECK(r.actualTo == to);
        CHECK(r.segments == 3);
        CHECK(decodeMp4(clip).frames == 4 * kFps);
    }
    SUBCASE("the whole ring") {
        ExtractResult r;
        const fs::path clip = s.extractTo(kT0 - gop, kT0 + 20 * gop, r);
        CHECK(r.actualFrom == kT0);
        CHECK(r.actualTo == kT0 + 10 * gop);
        CHECK(decodeMp4(clip).frames == 10 * kFps);
    }
}

TEST_CASE("a recording gap stays a gap on the extract's timeline") {
    StoreOnly s;
    recordSegments(*s.store, kT0, 1);                          // [0, 2 s)
    recordSegments(*s.store, kT0 + 5 * kMicrosPerSecond, 1);   // [5, 7 s)
    ExtractResult r;
    const fs::path clip = s.extractTo(kT0, kT0 + 7 * kMicrosPerSecond, r);
    CHECK(r.frames == 2 * kSegmentSeconds * kFps);
    CHECK(r.actualTo - r.actualFrom == 7 * kMicrosPerSecond);
    const Decoded d = decodeMp4(clip);
    CHECK(d.frames == 2 * kSegmentSeconds * kFps);
    CHECK(d.lastEnd == doctest::Approx(7 * kMicrosPerSecond).epsilon(0.001));
}

TEST_CASE("extracting where the ring holds nothing fails with a clear error") {
    StoreOnly s;
    recordSegments(*s.store, kT0, 1);
    ExtractResult r;
    CHECK_THROWS_WITH_AS(s.extractTo(kT0 + 100 * kMicrosPerSecond, kT0 + 110 * kMicrosPerSecond, r),
                         doctest::Contains("no footage"), ExtractError);
}

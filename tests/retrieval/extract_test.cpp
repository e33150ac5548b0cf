// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Extracting from a real store: whole GOPs covering the range, an MP4 GStreamer decodes.
#include "fixture.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/retrieval/extract.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

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

TEST_CASE("a segment cut short by a power cut is extracted up to its last whole access unit") {
    StoreOnly s;
    // Noise makes big frames: the segment spans several 64 KiB chunks, cut at an arbitrary byte.
    const std::vector<std::uint8_t> ts = encodeTs(30, kFps, kKeyInterval, 320, 240, 1 /* snow */);
    REQUIRE(ts.size() > 3 * 65536);
    {
        auto writer = s.store->beginSegment(kT0);
        const std::size_t piece = ts.size() / 10;  // written as the recorder would: in pieces, with their end times
        for (std::size_t i = 0; i < 10; ++i)
            writer->write(std::span(ts).subspan(i * piece, i == 9 ? ts.size() - i * piece : piece),
                          kT0 + static_cast<UtcMicros>(i + 1) * 300'000);
    }  // destroyed unfinished: the unsealed tail is lost, as in a power cut
    s.reopen();
    const auto segments = s.store->all();
    REQUIRE(segments.size() == 1);
    REQUIRE(segments.front().recovered);
    ExtractResult r;
    const fs::path clip = s.extractTo(kT0, kT0 + 3 * kMicrosPerSecond, r);
    CHECK(r.frames > 0);
    CHECK(r.frames < 30);
    CHECK(decodeMp4(clip).frames == static_cast<int>(r.frames));
}

namespace {

std::vector<std::uint8_t> collect(const std::function<void(const ByteSink&)>& run) {
    std::vector<std::uint8_t> bytes;
    run([&](std::span<const std::uint8_t> b) { bytes.insert(bytes.end(), b.begin(), b.end()); });
    return bytes;
}

// Threads of this process with the given name. Not all threads: GStreamer's pool threads from
// encoding the test footage come and go on their own (a sanitized build saw 4, then 2).
long threadsNamed(const std::string& name) {
    long n = 0;
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
        std::string comm;
        try {
            comm = common::readFile(task.path() / "comm");
        } catch (const common::FileError&) {
            continue;  // the thread ended while we looked
        }
        if (!comm.empty() && comm.back() == '\n') comm.pop_back();
        n += comm == name;
    }
    return n;
}

}  // namespace

TEST_CASE("a replay from the recipe makes the same MP4 byte for byte, without a scanning pass") {
    StoreOnly s;
    recordSegments(*s.store, kT0, 5);
    const UtcMicros from = kT0 + 1'300'000, to = kT0 + 8'200'000;
    ExtractResult first;
    const auto original = collect([&](const ByteSink& sink) { first = extractMp4(*s.store, from, to, sink); });
    REQUIRE(first.recipe.segments.size() == 5);
    REQUIRE(first.recipe.formats.size() == 1);
    ExtractResult again;
    const auto replayed = collect([&](const ByteSink& sink) { again = replayMp4(*s.store, from, to, first.recipe, sink); });
    CHECK(replayed == original);
    CHECK(again.frames == first.frames);
    CHECK(again.actualFrom == first.actualFrom);
    CHECK(again.actualTo == first.actualTo);
}

TEST_CASE("a replay refuses footage that changed since the hash pass and never hands over other bytes") {
    StoreOnly s;
    recordSegments(*s.store, kT0, 5);
    const UtcMicros from = kT0, to = kT0 + 10 * kMicrosPerSecond;
    ExtractResult first;
    const auto original = collect([&](const ByteSink& sink) { first = extractMp4(*s.store, from, to, sink); });
    const auto segments = s.store->all();
    REQUIRE(segments.size() == 5);

    SUBCASE("a segment's ciphertext altered on the card: it fails authentication") {
        std::string bytes = common::readFile(segments[3].path);
        bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x40);
        common::writeFileAtomic(segments[3].path, bytes);
        std::vector<std::uint8_t> sent;
        long readersWhileSending = 0;
        CHECK_THROWS_WITH_AS(replayMp4(*s.store, from, to, first.recipe,
                                       [&](std::span<const std::uint8_t> b) {
                                           readersWhileSending = std::max(readersWhileSending, threadsNamed("extract-reader"));
                                           sent.insert(sent.end(), b.begin(), b.end());
                                       }),
                             doctest::Contains("no longer reads as when the extract was hashed"), ExtractError);
        // What went out before the failure is exactly the start of the hashed MP4.
        REQUIRE(sent.size() < original.size());
        CHECK(std::equal(sent.begin(), sent.end(), original.begin()));
        CHECK(readersWhileSending == 1);  // the count below sees the reading thread when there is one
    }
    SUBCASE("a segment gone from the ring: refused before any byte") {
        fs::remove(segments[2].path);
        s.reopen();
        std::size_t sent = 0;
        CHECK_THROWS_WITH_AS(replayMp4(*s.store, from, to, first.recipe, [&](std::span<const std::uint8_t> b) { sent += b.size(); }),
                             doctest::Contains("is no longer in the ring"), ExtractError);
        CHECK(sent == 0);
    }
    SUBCASE("the ring lists another segment in the range") {
        ExtractRecipe fewer = first.recipe;
        fewer.segments.pop_back();
        CHECK_THROWS_WITH_AS(replayMp4(*s.store, from, to, fewer, [](std::span<const std::uint8_t>) {}),
                             doctest::Contains("the ring lists 5 segments"), ExtractError);
    }
    CHECK(threadsNamed("extract-reader") == 0);  // the reading thread is joined on every refusal
}

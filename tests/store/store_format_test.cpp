// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Segment store: encryption round trip, tamper detection, truncation, recovery, no plaintext at rest.
#include "store_test_util.hpp"

#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/segment_format.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

using namespace mimamori;
using namespace mimamori::store;
using namespace mimamori::store::testing;
namespace fs = std::filesystem;

namespace {

// Writes `ts` in pieces of `piece` bytes, advancing the clock `step` between pieces.
SegmentInfo writeSegment(SegmentStore& store, common::ManualClock& clock, const std::vector<std::uint8_t>& ts,
                         std::size_t piece, std::int64_t step) {
    const auto start = clock.nowUtc();
    auto writer = store.beginSegment(start);
    for (std::size_t at = 0; at < ts.size(); at += piece) {
        const std::size_t n = std::min(piece, ts.size() - at);
        clock.advance(step);
        writer->write(std::span(ts).subspan(at, n), clock.nowUtc());
    }
    return writer->finish(clock.nowUtc());
}

// Flips the lowest bit of one byte in place (no fsync: the page cache is what read() sees).
void flipByte(const fs::path& path, std::size_t offset) {
    common::UniqueFd fd(::open(path.c_str(), O_RDWR));
    REQUIRE(fd.valid());
    std::uint8_t b = 0;
    REQUIRE(::pread(fd.get(), &b, 1, static_cast<off_t>(offset)) == 1);
    b ^= 0x01;
    REQUIRE(::pwrite(fd.get(), &b, 1, static_cast<off_t>(offset)) == 1);
}

}  // namespace

TEST_CASE("a segment round-trips through encryption and the read API") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    auto store = SegmentStore::open(config, clock);
    const auto ts = makeTs(2000, 1);  // 376,000 bytes: several full 64 KiB chunks
    const auto info = writeSegment(*store, clock, ts, 7 * 188, 10'000);

    CHECK(info.sequence == 1);
    CHECK(info.start == kT0);
    CHECK(info.end == clock.nowUtc());
    CHECK_FALSE(info.recovered);
    CHECK(info.path.filename().string() == "0000000000000001-20261101T000000.000000Z.mseg");
    CHECK(fs::file_size(info.path) == info.bytesOnDisk);
    CHECK(filesIn(config.storageDir, ".part").empty());

    const auto listed = store->all();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].path == info.path);
    std::optional<std::string> error;
    CHECK(readAll(config, *store, listed[0], &error) == ts);
    CHECK_FALSE(error);
    CHECK(store->list(info.end, info.end + 1).empty());
    CHECK(store->list(info.start, info.start + 1).size() == 1);

    // The listing survives a restart, taken from the index without decrypting.
    store.reset();
    store = SegmentStore::open(config, clock);
    REQUIRE(store->all().size() == 1);
    CHECK(store->all()[0].end == info.end);
    CHECK(readAll(config, *store, store->all()[0]) == ts);
    auto next = store->beginSegment(clock.nowUtc());
    CHECK(next->finish(clock.nowUtc()).sequence == 2);
}

TEST_CASE("a flipped byte anywhere in a segment is caught by read") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    auto store = SegmentStore::open(config, clock);
    // Two-second steps with a one-second sync interval: one small chunk per write.
    const auto ts = makeTs(24, 2);
    const auto info = writeSegment(*store, clock, ts, 4 * 188, 2 * common::kMicrosPerSecond);
    const auto original = fileBytes(info.path);
    REQUIRE(original.size() > 6 * format::kAuthBytes);
    REQUIRE(readAll(config, *store, info) == ts);

    for (std::size_t i = 0; i < original.size(); ++i) {
        flipByte(info.path, i);
        std::optional<std::string> error;
        readAll(config, *store, info, &error);
        CHECK_MESSAGE(error.has_value(), "flip at offset ", i, " went unnoticed");
        flipByte(info.path, i);
    }
    REQUIRE(fileBytes(info.path) == original);
    // Bytes appended after the final chunk are caught too.
    auto extended = original;
    extended.push_back(0);
    writeBytes(info.path, extended);
    std::optional<std::string> error;
    readAll(config, *store, info, &error);
    CHECK(error.has_value());
}

TEST_CASE("a truncated segment yields exactly its whole chunks and recovers to them") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    auto store = SegmentStore::open(config, clock);
    const auto ts = makeTs(40, 3);  // 10 writes of 4 packets, one chunk each
    const auto info = writeSegment(*store, clock, ts, 4 * 188, 2 * common::kMicrosPerSecond);
    const auto original = fileBytes(info.path);
    // Chunk boundaries: header, then length + ciphertext per chunk.
    const std::size_t chunk = format::kLengthBytes + format::kAuthBytes + sizeof(format::ChunkPrefix) + 4 * 188;
    const std::size_t header = sizeof(format::FileHeader);
    REQUIRE(original.size() == header + 10 * chunk + format::kLengthBytes + format::kAuthBytes +
                                   sizeof(format::FinalRecord));

    // Cut inside the fourth chunk: the read API delivers three chunks, then reports the cut.
    const std::size_t cut = header + 3 * chunk + 100;
    writeBytes(info.path, std::span(original).first(cut));
    std::optional<std::string> error;
    const auto prefix = readAll(config, *store, info, &error);
    CHECK(error.has_value());
    CHECK(prefix == std::vector<std::uint8_t>(ts.begin(), ts.begin() + 3 * 4 * 188));

    // Without its index record (as after a crash right after the rename), reopening recovers it.
    store.reset();
    fs::remove(config.storageDir / "ring.index");
    store = SegmentStore::open(config, clock);
    const auto listed = store->all();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].recovered);
    CHECK(listed[0].sequence == info.sequence);
    CHECK(listed[0].end == kT0 + 3 * 2 * common::kMicrosPerSecond);  // media time of the last whole chunk
    std::optional<std::string> again;
    CHECK(readAll(config, *store, listed[0], &again) == prefix);
    CHECK_FALSE(again);
}

TEST_CASE("a leftover .part is recovered on reopen and undecryptable files are never listed") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    auto store = SegmentStore::open(config, clock);
    const auto complete = writeSegment(*store, clock, makeTs(30, 4), 10 * 188, common::kMicrosPerSecond);

    // A writer that dies mid-segment (as kill -9 would leave it): five synced chunks and a torn sixth.
    const auto ts = makeTs(60, 5);
    const auto partStart = clock.nowUtc();
    auto writer = store->beginSegment(partStart);
    for (int i = 0; i < 5; ++i) {
        clock.advance(2 * common::kMicrosPerSecond);
        writer->write(std::span(ts).subspan(static_cast<std::size_t>(i) * 6 * 188, 6 * 188), clock.nowUtc());
    }
    const auto lastGoodEnd = clock.nowUtc();
    writer.reset();
    store.reset();  // closed before enforce() could recover the orphan
    const auto parts = filesIn(config.storageDir, ".part");
    REQUIRE(parts.size() == 1);
    {
        // Append half a chunk, like a write cut by the power.
        common::UniqueFd fd(::open(parts[0].c_str(), O_WRONLY | O_APPEND));
        const std::uint8_t torn[40] = {0x10, 0x05, 0, 0, 1, 2, 3};
        common::writeAll(fd.get(), torn, "part");
    }
    // Files that must never be listed: an empty .part, a .part of garbage, a .mseg of garbage.
    writeBytes(config.storageDir / "00000000000000a0-20261101T000000.000000Z.part", {});
    const auto junk = makeTs(3, 9);
    writeBytes(config.storageDir / "00000000000000a1-20261101T000000.000000Z.part", junk);
    writeBytes(config.storageDir / "00000000000000a2-20261101T000000.000000Z.mseg", junk);

    store = SegmentStore::open(config, clock);
    const auto listed = store->all();
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].sequence == complete.sequence);
    CHECK_FALSE(listed[0].recovered);
    CHECK(listed[1].recovered);
    CHECK(listed[1].start == partStart);
    CHECK(listed[1].end == lastGoodEnd);
    CHECK(readAll(config, *store, listed[1]) == std::vector<std::uint8_t>(ts.begin(), ts.begin() + 30 * 188));
    for (const auto& s : listed) CHECK(store->read(s, nullptr).ok());
    CHECK(filesIn(config.storageDir, ".part").empty());
    CHECK(filesIn(config.storageDir, ".mseg").size() == 2);
    // Sequences stay unique: the next one is above every name ever seen, junk included.
    CHECK(store->beginSegment(clock.nowUtc())->finish(clock.nowUtc()).sequence == 0xa3);
}

TEST_CASE("a writer abandoned while the daemon runs is recovered by enforce") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    auto store = SegmentStore::open(config, clock);
    const auto ts = makeTs(20, 6);
    {
        auto writer = store->beginSegment(clock.nowUtc());
        clock.advance(2 * common::kMicrosPerSecond);
        writer->write(ts, clock.nowUtc());
    }
    CHECK(store->all().empty());
    store->enforce();
    const auto listed = store->all();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].recovered);
    CHECK(readAll(config, *store, listed[0]) == ts);
}

TEST_CASE("plaintext video never reaches the storage or key directory") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    const auto ts = makeTs(3000, 7);
    REQUIRE(findPlaintext(ts).has_value());  // the scanner does see plaintext
    {
        auto store = SegmentStore::open(config, clock);
        for (int i = 0; i < 4; ++i) writeSegment(*store, clock, ts, 188 * 50, 300'000);
        auto open = store->beginSegment(clock.nowUtc());  // left open, synced: a partial on disk
        clock.advance(2 * common::kMicrosPerSecond);
        open->write(ts, clock.nowUtc());
        for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
            if (!e.is_regular_file()) continue;
            const auto bytes = fileBytes(e.path());
            const auto hit = findPlaintext(bytes);
            CHECK_MESSAGE(!hit.has_value(), e.path().string(), " holds plaintext at offset ", hit.value_or(0));
        }
    }
    // After recovery of the partial too.
    auto store = SegmentStore::open(config, clock);
    CHECK(store->all().size() == 5);
    std::size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
        if (!e.is_regular_file()) continue;
        ++files;
        CHECK_FALSE(findPlaintext(fileBytes(e.path())).has_value());
    }
    CHECK(files >= 7);  // 5 segments, the index, the key (and the lock)
}

TEST_CASE("the store refuses a key directory on the card, a second writer and an over-long retention") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    auto inside = config;
    inside.keyDir = config.storageDir / "keys";
    CHECK_THROWS_WITH_AS(SegmentStore::open(inside, clock), doctest::Contains("inside storage"), std::invalid_argument);
    auto same = config;
    same.keyDir = config.storageDir;
    CHECK_THROWS_AS(SegmentStore::open(same, clock), std::invalid_argument);
    auto tooLong = config;
    tooLong.retentionDays = 15;
    CHECK_THROWS_WITH_AS(SegmentStore::open(tooLong, clock), doctest::Contains("ceiling"), std::invalid_argument);

    auto store = SegmentStore::open(config, clock);
    CHECK_THROWS_WITH_AS(SegmentStore::open(config, clock), doctest::Contains("in use"), common::FileError);
    // A read-only view (ring ls / verify) works beside the writer and leaves partials alone.
    auto writer = store->beginSegment(clock.nowUtc());
    clock.advance(2 * common::kMicrosPerSecond);
    writer->write(makeTs(10, 8), clock.nowUtc());
    auto view = SegmentStore::openReadOnly(config, clock);
    CHECK(view->all().empty());
    CHECK(view->usage().partial == 1);
    CHECK_THROWS_AS(view->beginSegment(clock.nowUtc()), std::logic_error);
    writer->finish(clock.nowUtc());
    CHECK(SegmentStore::openReadOnly(config, clock)->all().size() == 1);
    CHECK(filesIn(config.storageDir, ".part").empty());
}

TEST_CASE("a ring whose key directory was lost is not silently re-keyed") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    {
        auto store = SegmentStore::open(config, clock);
        writeSegment(*store, clock, makeTs(10, 9), 188 * 10, 1000);
    }
    fs::remove(config.keyDir / KeyRatchet::kFileName);
    CHECK_THROWS_WITH_AS(SegmentStore::open(config, clock), doctest::Contains("no day key"), std::runtime_error);
}

TEST_CASE("a damaged or lost index is rebuilt from the segment files") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    std::vector<SegmentInfo> written;
    {
        auto store = SegmentStore::open(config, clock);
        for (int i = 0; i < 3; ++i) written.push_back(writeSegment(*store, clock, makeTs(10, 40 + i), 188 * 5, 1000));
    }
    const fs::path index = config.storageDir / "ring.index";
    REQUIRE(fs::file_size(index) == 3 * 64);
    {
        // A torn append and a garbled record, as a power cut might leave them.
        auto bytes = fileBytes(index);
        bytes[64 + 20] ^= 0xFF;
        bytes.insert(bytes.end(), {1, 2, 3, 4, 5});
        writeBytes(index, bytes);
    }
    auto store = SegmentStore::open(config, clock);
    const auto listed = store->all();
    REQUIRE(listed.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(listed[i].sequence == written[i].sequence);
        CHECK(listed[i].end == written[i].end);
        CHECK(listed[i].bytesOnDisk == written[i].bytesOnDisk);
        CHECK(store->read(listed[i], nullptr).ok());
    }
    CHECK(fs::file_size(index) == 4 * 64);  // the high-water record and the three segments
    CHECK(store->beginSegment(clock.nowUtc())->finish(clock.nowUtc()).sequence == 4);
}

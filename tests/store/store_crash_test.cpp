// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Segment store: kill -9 of a writing process at random instants, then reopen and resume.
#include "store_test_util.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/store/segment_format.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

using namespace mimamori;
using namespace mimamori::store;
using namespace mimamori::store::testing;

namespace {

constexpr std::int64_t kStep = 10'000;           // media per write: 10 ms
constexpr std::int64_t kSyncInterval = 100'000;  // 100 ms: a chunk is sealed every 10 writes
constexpr int kWritesPerSegment = 50;

// The child: records forever from `start`, reporting each write's media end on `report`.
[[noreturn]] void recordUntilKilled(const StoreConfig& config, common::UtcMicros start, int report) {
    try {
        common::setLogLevel(common::LogLevel::Error);
        common::ManualClock clock(start);
        auto store = SegmentStore::open(config, clock);
        const auto ts = makeTs(4, 77);
        for (;;) {
            auto writer = store->beginSegment(clock.nowUtc());
            for (int i = 0; i < kWritesPerSegment; ++i) {
                clock.advance(kStep);
                const common::UtcMicros end = clock.nowUtc();
                writer->write(ts, end);
                if (::write(report, &end, sizeof end) != static_cast<ssize_t>(sizeof end)) ::_exit(3);
            }
            writer->finish(clock.nowUtc());
            store->enforce();
        }
    } catch (...) {
        ::_exit(2);
    }
}

}  // namespace

TEST_CASE("kill -9 at random instants loses at most the sync interval and never breaks the ring") {
    TempDir dir;
    auto config = makeConfig(dir);
    config.syncIntervalMicros = kSyncInterval;
    std::mt19937 random(20261124);
    common::UtcMicros resumeAt = kT0;
    for (int cycle = 0; cycle < 8; ++cycle) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(fds[0]);
            recordUntilKilled(config, resumeAt, fds[1]);
        }
        ::close(fds[1]);
        common::UtcMicros lastReported = 0;
        auto drain = [&](int timeoutMs) {
            pollfd p{fds[0], POLLIN, 0};
            while (::poll(&p, 1, timeoutMs) > 0) {
                common::UtcMicros values[512];
                const ssize_t n = ::read(fds[0], values, sizeof values);
                if (n <= 0) break;
                lastReported = values[static_cast<std::size_t>(n) / sizeof(common::UtcMicros) - 1];
            }
        };
        // Wait for recording to run (however loaded the machine), then kill at a random instant.
        const auto startedBy = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (lastReported == 0 && std::chrono::steady_clock::now() < startedBy) drain(5);
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 700)(random));
        while (std::chrono::steady_clock::now() < deadline) drain(5);
        REQUIRE(::kill(child, SIGKILL) == 0);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        REQUIRE(WIFSIGNALED(status));  // still recording when killed, not failed
        drain(0);
        ::close(fds[0]);
        REQUIRE(lastReported > resumeAt);

        common::ManualClock clock(lastReported);
        auto store = SegmentStore::open(config, clock);
        const auto segments = store->all();
        REQUIRE(!segments.empty());
        const auto newest = segments.back().end;
        // Everything handed to write() up to the last sealed chunk survives: at most one sync
        // interval (plus the write in flight) is lost.
        CHECK_MESSAGE(newest >= lastReported - kSyncInterval - kStep, "cycle ", cycle, " lost ",
                      lastReported - newest, " us of media");
        CHECK(newest <= lastReported + kStep);
        common::UtcMicros previousEnd = kT0;
        for (const auto& s : segments) {
            CHECK(store->read(s, nullptr).ok());  // every listed segment decrypts and authenticates
            CHECK(s.start >= previousEnd);         // ordered, never overlapping
            previousEnd = s.end;
        }
        resumeAt = newest;
    }
}

namespace {

std::uintmax_t partSize(const StoreConfig& config) {
    const auto parts = filesIn(config.storageDir, ".part");
    REQUIRE(parts.size() == 1);
    return std::filesystem::file_size(parts.front());
}

}  // namespace

TEST_CASE("a sync ends the file on a block boundary, holding back at most a quarter interval") {
    TempDir dir;
    auto config = makeConfig(dir);
    config.syncIntervalMicros = 100'000;
    common::ManualClock clock(kT0);
    std::vector<std::uint8_t> bytes(1000, 0x47);
    common::UtcMicros lastEnd = kT0;
    const std::uintmax_t overhead = format::kChunkOverheadBytes;
    {
        auto store = SegmentStore::open(config, clock);
        auto writer = store->beginSegment(kT0);
        auto write = [&](int times) {
            for (int i = 0; i < times; ++i) {
                clock.advance(10'000);  // 10 ms of footage per write
                lastEnd = clock.nowUtc();
                writer->write(bytes, lastEnd);
            }
        };
        write(9);
        CHECK(partSize(config) == sizeof(format::FileHeader));  // nothing sealed before the interval
        // 100 ms: 10,000 bytes buffered. The chunk ends at 8,192 and holds writes 1-8 whole and
        // part of write 9; 1,973 bytes (20 ms of footage) wait for the next chunk.
        write(1);
        CHECK(partSize(config) == 8192);
        // Those 20 ms bring the next sync forward: at 180 ms, not 200 ms.
        write(7);
        CHECK(partSize(config) == 8192);
        write(1);
        CHECK(partSize(config) == 16384);  // 1,818 bytes (writes 17-18, 20 ms) held back again
        // Tiny writes: the next boundary is out of reach, so the sync at 260 ms seals everything
        // (that block is written again by the next sync).
        bytes.assign(10, 0x47);
        write(7);
        CHECK(partSize(config) == 16384);
        write(1);
        CHECK(partSize(config) == 16384 + overhead + 1818 + 8 * 10);
        const common::UtcMicros synced = lastEnd;
        write(2);  // not synced: lost with the writer
        lastEnd = synced;
    }  // the writer is abandoned unfinished, as by a crash
    auto store = SegmentStore::open(config, clock);
    const auto segments = store->all();
    REQUIRE(segments.size() == 1);
    CHECK(segments[0].recovered);
    CHECK(segments[0].end == lastEnd);  // all that was synced, and no claim beyond it
    CHECK(store->read(segments[0], nullptr).ok());
}

// Segment store: kill -9 of a writing process at random instants, then reopen and resume.
#include "store_test_util.hpp"

#include "mimamori/common/log.hpp"

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
using namespace mimamori::recorder;
using namespace mimamori::recorder::testing;

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
            CHECK_FALSE(store->read(s, nullptr));  // every listed segment decrypts and authenticates
            CHECK(s.start >= previousEnd);         // ordered, never overlapping
            previousEnd = s.end;
        }
        resumeAt = newest;
    }
}

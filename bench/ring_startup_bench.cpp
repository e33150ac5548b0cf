// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Start-up on a 12-day ring of 10 s segments (~104,000 files): SegmentStore::open() until ready to
// write, against `find DIR -type f | wc -l` on the same tree, side by side in one run.
//
// usage: ring_startup_bench [--dir DIR] [--days N] [--rounds N]
//   DIR (default: a new directory under /dev/shm, removed at the end) is reused when it already
//   holds a ring built by this benchmark, so a ring on another filesystem can be timed too:
//   ring_startup_bench --dir /var/tmp/ringbench   (built once, kept, timed on later runs)
#include "mimamori/common/log.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/store/segment_store.hpp"

#include <stdlib.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace mimamori;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr common::UtcMicros kStart = 1'793'491'200LL * common::kMicrosPerSecond;  // 2026-11-01T00:00:00Z
constexpr std::int64_t kSegment = 10 * common::kMicrosPerSecond;

store::StoreConfig configFor(const fs::path& dir) {
    store::StoreConfig c;
    c.cameraId = "bench-camera";
    c.storageDir = dir / "card";
    c.keyDir = dir / "keys";
    c.retentionDays = 14;
    return c;
}

// Small segments with real encryption and the real write path; the content does not matter.
void build(const store::StoreConfig& config, int days, common::ManualClock& clock) {
    auto store = store::SegmentStore::open(config, clock);
    std::vector<std::uint8_t> ts(2 * 188, 0);
    for (std::size_t i = 0; i < ts.size(); i += 188) ts[i] = 0x47;
    const long count = static_cast<long>(days) * 86400 / 10;
    const auto t0 = Clock::now();
    for (long i = 0; i < count; ++i) {
        auto writer = store->beginSegment(clock.nowUtc());
        clock.advance(kSegment);
        writer->write(ts, clock.nowUtc());
        writer->finish(clock.nowUtc());
        if ((i + 1) % 10000 == 0)
            fmt::print(stderr, "built {} of {} segments ({:.0f} s)\n", i + 1, count,
                       std::chrono::duration<double>(Clock::now() - t0).count());
    }
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    try {
        fs::path dir;
        int days = 12, rounds = 5;
        for (int i = 1; i + 1 < argc; i += 2) {
            const std::string a = argv[i];
            if (a == "--dir") dir = argv[i + 1];
            else if (a == "--days") days = std::stoi(argv[i + 1]);
            else if (a == "--rounds") rounds = std::stoi(argv[i + 1]);
            else throw std::invalid_argument("unknown option " + a);
        }
        if (argc % 2 == 0) throw std::invalid_argument("usage: ring_startup_bench [--dir DIR] [--days N] [--rounds N]");
        const bool temporary = dir.empty();
        if (temporary) {
            std::string pattern = "/dev/shm/mimamori-ringbench-XXXXXX";
            if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
            dir = pattern;
        }
        common::setLogLevel(common::LogLevel::Warning);
        const auto config = configFor(dir);
        // Store time continues from the footage, so the wall clock is put just after it.
        common::ManualClock clock(kStart);
        if (!fs::exists(dir / "built")) {
            fmt::print(stderr, "building a {}-day ring of 10 s segments in {}\n", days, dir.string());
            build(config, days, clock);
            std::FILE* f = std::fopen((dir / "built").c_str(), "w");
            if (f != nullptr) std::fclose(f);
        } else {
            clock.advance(static_cast<std::int64_t>(days) * common::kMicrosPerDay);
        }

        const std::string find = fmt::format("find '{}' -type f | wc -l > /dev/null", config.storageDir.string());
        auto timeFind = [&] {
            const auto t = Clock::now();
            if (std::system(find.c_str()) != 0) throw std::runtime_error("find failed");
            return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
        };
        std::size_t segments = 0;
        auto timeOpen = [&] {
            const auto t = Clock::now();
            auto store = store::SegmentStore::open(config, clock);
            auto writer = store->beginSegment(clock.nowUtc());  // ready to record
            const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
            segments = store->all().size();
            clock.advance(kSegment);
            writer->finish(clock.nowUtc());
            return ms;
        };
        timeFind();  // warm the caches for both
        timeOpen();
        std::vector<double> findMs, openMs;
        for (int r = 0; r < rounds; ++r) {
            findMs.push_back(timeFind());
            openMs.push_back(timeOpen());
        }
        std::size_t files = 0;
        for ([[maybe_unused]] const auto& e : fs::recursive_directory_iterator(config.storageDir)) ++files;
        const double f = median(findMs), o = median(openMs);
        fmt::print("ring: {} segments, {} files in {}\n", segments, files, config.storageDir.string());
        fmt::print("find -type f | wc -l : {:8.1f} ms (median of {})\n", f, rounds);
        fmt::print("SegmentStore::open() : {:8.1f} ms (median of {}, until a new segment is open)\n", o, rounds);
        fmt::print("ratio open/find      : {:8.2f}x (target <= 3x)\n", o / f);
        if (temporary) fs::remove_all(dir);
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "ring_startup_bench: {}\n", e.what());
        return 1;
    }
}

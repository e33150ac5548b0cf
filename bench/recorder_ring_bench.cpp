// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Helper for bench/recorder_bench.py: measures a ring after a recording run (plaintext TS bytes
// through the read API, bytes on disk, seconds of footage) and prints them as one JSON line.
#include "mimamori/common/time.hpp"
#include "mimamori/daemon/config.hpp"
#include "mimamori/store/segment_store.hpp"

#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3 || std::string(argv[1]) != "--config") {
        std::fprintf(stderr, "usage: recorder_ring_bench --config FILE\n");
        return 2;
    }
    try {
        using namespace mimamori;
        auto config = daemon::loadDaemonConfig(argv[2]).recorder;
        common::SystemClock clock;
        auto store = store::SegmentStore::openReadOnly(config.store, clock);
        std::uint64_t plaintext = 0, disk = 0;
        common::UtcMicros footage = 0;
        std::size_t bad = 0;
        auto segments = store->all();
        for (const auto& s : segments) {
            disk += s.bytesOnDisk;
            footage += s.end - s.start;
            const auto read = store->read(s, [&](std::span<const std::uint8_t> chunk) {
                plaintext += chunk.size();
            });
            if (!read) ++bad;
        }
        std::printf("{\"segments\": %zu, \"bad\": %zu, \"plaintext_bytes\": %llu, "
                    "\"disk_bytes\": %llu, \"footage_seconds\": %.3f}\n",
                    segments.size(), bad, static_cast<unsigned long long>(plaintext),
                    static_cast<unsigned long long>(disk), static_cast<double>(footage) / 1e6);
        return bad ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "recorder_ring_bench: %s\n", e.what());
        return 1;
    }
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Benchmark-only helper for bench/motion_compare.py: decrypts a ring through the read API and
// writes its MPEG-TS to stdout so the benchmark can decode it for SSIM. Never installed.
#include "mimamori/common/time.hpp"
#include "mimamori/daemon/config.hpp"
#include "mimamori/store/segment_store.hpp"

#include <cstdio>
#include <exception>
#include <string>

namespace {

constexpr const char* kUsage =
    "usage: ring_export_bench --config FILE > out.ts\n"
    "BENCHMARK ONLY (bench/motion_compare.py): decrypts every segment of the ring named by a\n"
    "mimamorid config through store::SegmentStore::openReadOnly/list/read and writes the\n"
    "plaintext MPEG-TS to stdout, oldest first, so the benchmark can measure SSIM. It is not\n"
    "installed and is not a product command: Mimamori has no plaintext export by design.\n";

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (argc != 3 || std::string(argv[1]) != "--config") {
        std::fputs(kUsage, stderr);
        return 2;
    }
    try {
        using namespace mimamori;
        auto config = daemon::loadDaemonConfig(argv[2]).recorder;
        common::SystemClock clock;
        auto store = store::SegmentStore::openReadOnly(config.store, clock);
        std::size_t bad = 0;
        bool writeFailed = false;
        for (const auto& s : store->list(INT64_MIN, INT64_MAX)) {
            const auto read = store->read(s, [&](std::span<const std::uint8_t> chunk) {
                if (std::fwrite(chunk.data(), 1, chunk.size(), stdout) != chunk.size()) writeFailed = true;
            });
            if (!read) {
                std::fprintf(stderr, "ring_export_bench: segment %s: %s\n", s.path.c_str(), read.error().c_str());
                ++bad;
            }
        }
        if (std::fflush(stdout) != 0 || writeFailed) {
            std::fprintf(stderr, "ring_export_bench: writing to stdout failed\n");
            return 1;
        }
        return bad ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ring_export_bench: %s\n", e.what());
        return 1;
    }
}

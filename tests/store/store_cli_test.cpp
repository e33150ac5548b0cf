// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori ring ls|verify` on a real ring: what they report, and verify's exit status.
#include "store_test_util.hpp"
#include "../support/run_command.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

using namespace mimamori;
using namespace mimamori::store;
using namespace mimamori::store::testing;
namespace fs = std::filesystem;

namespace {

struct Run {
    int status = -1;
    std::string out;
};

Run runCli(const std::string& args) {
    auto result = mimamori::testing::runCommand(std::string(MIMAMORI_BINARY_DIR) + "/apps/mimamori " + args + " 2>/dev/null");
    return Run{result.status, std::move(result.output)};
}

}  // namespace

TEST_CASE("ring ls reports the ring and ring verify names each bad segment and exits 1") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    std::vector<SegmentInfo> segments;
    {
        auto store = SegmentStore::open(config, clock);
        for (int i = 0; i < 4; ++i) {
            auto writer = store->beginSegment(clock.nowUtc());
            clock.advance(10 * common::kMicrosPerSecond);
            writer->write(makeTs(20, 60 + static_cast<std::uint32_t>(i)), clock.nowUtc());
            segments.push_back(writer->finish(clock.nowUtc()));
            if (i == 1) clock.advance(60 * common::kMicrosPerSecond);  // a one-minute gap
        }
    }
    const fs::path configFile = dir.path() / "mimamorid.json";
    common::writeFileAtomic(configFile, fmt::format(R"({{
  "camera_id": "{}",
  "source": {{ "kind": "test" }},
  "storage": {{ "path": "{}", "retention_days": 12 }},
  "mask_file": "masks.json",
  "key_dir": "{}",
  "state_dir": "state"
}})",
                                                    config.cameraId, config.storageDir.string(), config.keyDir.string()));
    const std::string args = "--config " + configFile.string();

    const auto ls = runCli("ring ls --segments " + args);
    CHECK(ls.status == 0);
    CHECK(ls.out.find("segments    4\n") != std::string::npos);
    CHECK(ls.out.find("gaps        1, 1m00s in all") != std::string::npos);
    CHECK(ls.out.find("oldest      2026-11-01T00:00:00Z") != std::string::npos);
    for (const auto& s : segments) CHECK(ls.out.find(s.path.filename().string()) != std::string::npos);

    auto verify = runCli("ring verify " + args);
    CHECK(verify.status == 0);
    CHECK(verify.out.find("verified 4 segments") != std::string::npos);
    CHECK(verify.out.find("BAD") == std::string::npos);

    // One flipped byte in the second segment, the fourth cut short.
    {
        common::UniqueFd fd(::open(segments[1].path.c_str(), O_RDWR));
        std::uint8_t b = 0;
        REQUIRE(::pread(fd.get(), &b, 1, 700) == 1);
        b ^= 0x20;
        REQUIRE(::pwrite(fd.get(), &b, 1, 700) == 1);
    }
    fs::resize_file(segments[3].path, segments[3].bytesOnDisk - 10);
    verify = runCli("ring verify " + args);
    CHECK(verify.status == 1);
    CHECK(verify.out.find("BAD  " + segments[1].path.filename().string()) != std::string::npos);
    CHECK(verify.out.find("BAD  " + segments[3].path.filename().string()) != std::string::npos);
    CHECK(verify.out.find(segments[0].path.filename().string()) == std::string::npos);
    CHECK(verify.out.find("2 bad") != std::string::npos);
}

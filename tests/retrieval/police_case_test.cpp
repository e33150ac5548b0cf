// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The police case of issue 9, end to end: a 720x528, 23.976 fps XviD AVI (B-frames) with an AC3 track,
// recorded by the real mimamorid through its file source; a 5 s request is fetched over
// 127.0.0.1, verifies, and decodes frame for frame like the footage in the ring.
#include "media.hpp"
#include "../support/daemon_process.hpp"

#include "mimamori/retrieval/client.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

using namespace mimamori;
using mimamori::testing::freePort;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

namespace {

}  // namespace

TEST_CASE("the police case: a 23.976 fps XviD AVI with AC3 recorded by mimamorid; a 5 s request extracts and decodes frame-exact") {
    TempDir dir;
    const CameraFixture fixture(dir.path());
    const fs::path avi = dir.path() / "case.avi";
    const auto made = testing::runCommand(fmt::format(
        "ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=720x528:rate=24000/1001 -f lavfi -i sine=frequency=440 "
        "-t 8 -c:v mpeg4 -vtag XVID -bf 2 -q:v 5 -r 24000/1001 -c:a ac3 -b:a 96k '{}'",
        avi.string()));
    REQUIRE(made.status == 0);

    const int port = freePort();
    fixture.writeDaemonConfig(dir.path(), port,
                              Json{{"kind", "file"}, {"location", avi.string()}, {"realtime", true}}.dump(), 2);
    FetchResult fetched;
    {
        testing::Daemon daemon({"--config", (dir.path() / "mimamorid.json").string()}, dir.path() / "daemon.log");
        daemon.waitForLog(fmt::format("127.0.0.1:{}", port));
        // The clip's first frame, as the recorder labelled it ("recording: first frame at UTC").
        const std::string marker = "first frame at ";
        std::optional<UtcMicros> first;
        for (int i = 0; i < 200 && !first; ++i) {
            const std::string log = common::readFile(dir.path() / "daemon.log");
            const std::size_t at = log.find(marker);
            if (at != std::string::npos && log.find('\n', at) != std::string::npos)
                first = common::parseUtc(log.substr(at + marker.size(), log.find('\n', at) - at - marker.size()));
            if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        REQUIRE(first);
        // The whole clip in real time, then 5 s from its middle.
        std::this_thread::sleep_for(std::chrono::microseconds(*first + 8'700'000 - common::SystemClock().nowUtc()));
        fetched = fixture.fetch(dir.path() / "request.json", *first + 1'500'000, *first + 6'500'000,
                                fmt::format("https://127.0.0.1:{}", port), dir.path() / "case");
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        daemon.signal(SIGTERM);
        CHECK(daemon.wait() == 0);
    }
    const Manifest& m = fetched.manifest;
    MESSAGE("police case: ", m.frames, " frames, ", m.timestampRepairs, " timestamp repairs, actual ",
            common::formatUtc(m.actualFrom), " .. ", common::formatUtc(m.actualTo));
    // XviD's B-frames reach x264enc with timestamps that make it write the same DTS twice now
    // and then (3753.75 ticks a frame): what used to fail with "decode times go back".
    CHECK(m.timestampRepairs > 0);
    CHECK(m.actualFrom <= m.requestedFrom);
    CHECK(m.actualTo >= m.requestedTo);
    CHECK(m.gaps.empty());
    CHECK(verifyExtractDir(dir.path() / "case", fixture.camera.publicKey().signKey).ok);

    // Frame for frame what the ring holds for [actual.from, actual.to): its whole segments
    // (the keyframe interval is the 2 s segment, so segments and GOPs coincide).
    const common::SystemClock clock;
    store::StoreConfig sc;
    sc.cameraId = "kakogawa-0042";
    sc.storageDir = dir.path() / "ring";
    sc.keyDir = dir.path() / "daykeys";
    auto store = store::SegmentStore::open(sc, clock);
    std::vector<std::uint8_t> ts;
    for (const auto& s : store->list(m.actualFrom, m.actualTo)) {
        if (s.start < m.actualFrom || s.end > m.actualTo) continue;
        const auto read = store->read(s, [&](std::span<const std::uint8_t> b) { ts.insert(ts.end(), b.begin(), b.end()); });
        REQUIRE_MESSAGE(read.ok(), (read.ok() ? "" : read.error()));
    }
    const fs::path ring = writeBytes(dir.path() / "ring.ts", ts);
    const fs::path clip = dir.path() / "case" / kClipFile;
    const std::vector<RawFrame> source = decodeWithGstreamer(ring, "tsdemux");
    const std::vector<RawFrame> got = decodeWithGstreamer(clip, "qtdemux");
    CHECK(got.size() == m.frames);
    CHECK(got.size() >= 5 * 23);
    REQUIRE(got.size() == source.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK((got[i].bytes == source[i].bytes));
    }
    const std::string a = decodeWithFfmpeg(ring), b = decodeWithFfmpeg(clip);
    CHECK(a.size() == m.frames * 720 * 528 * 3 / 2);
    CHECK((a == b));
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// End to end against the real mimamorid recording ../shared/data/street-vtest.avi: a police
// fetch over 127.0.0.1 yields a clip that decodes, covers the range, and is black where masked.
#include "fixture.hpp"
#include "../support/daemon_process.hpp"

#include "mimamori/retrieval/client.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <gst/video/video.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using namespace mimamori;
using mimamori::testing::freePort;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

namespace {

const std::string kClip = MIMAMORI_SOURCE_DIR "/../shared/data/street-vtest.avi";

}  // namespace

TEST_CASE("end to end with mimamorid recording the street clip: the fetched clip decodes, covers the range, masked area black") {
    TempDir dir;
    const CameraFixture fixture(dir.path());
    const policy::SecretKey& camera = fixture.camera;
    const int port = freePort();
    fixture.writeDaemonConfig(dir.path(), port, Json{{"kind", "file"}, {"location", kClip}, {"realtime", true}}.dump(),
                              2);

    const UtcMicros started = common::SystemClock().nowUtc();
    mimamori::testing::Daemon daemon({"--config", (dir.path() / "mimamorid.json").string()}, dir.path() / "daemon.log");
    daemon.waitForLog(fmt::format("127.0.0.1:{}", port));
    std::this_thread::sleep_for(std::chrono::seconds(14));

    // The middle of what has been recorded: [started + 6 s, started + 10 s).
    const UtcMicros from = started + 6 * kMicrosPerSecond, to = started + 10 * kMicrosPerSecond;
    const fs::path outDir = dir.path() / "case";
    const FetchResult fetched = fixture.fetch(dir.path() / "request.json", from, to,
                                              fmt::format("https://127.0.0.1:{}", port), outDir);
    const Manifest& m = fetched.manifest;
    CHECK(m.actualFrom <= from);
    CHECK(m.actualTo >= to);
    CHECK(m.actualTo - m.actualFrom <= (to - from) + 4 * kMicrosPerSecond);  // whole GOPs (1 s) at each end
    CHECK(verifyExtractDir(outDir, camera.publicKey().signKey).ok);

    const Decoded d = decodeMp4(outDir / kClipFile);
    CHECK(d.frames == static_cast<int>(m.frames));
    CHECK(d.frames >= 40);  // 4 s at 10 fps at least
    // Well inside the mask: black in every frame (limited-range black is 16; codec noise aside).
    const Luma masked = lumaIn(outDir / kClipFile, 0.13, 0.13, 0.37, 0.37);
    CHECK(masked.frames == d.frames);
    CHECK(masked.worstMean < 24);
    const Luma open = lumaIn(outDir / kClipFile, 0.5, 0.5, 0.9, 0.9);
    CHECK(open.worstMean > 40);  // the street itself is not black

    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // delivery is audited after the last byte
    daemon.signal(SIGTERM);
    CHECK(daemon.wait() == 0);

    // After a restart of the daemon the same request is a replay, refused and audited.
    {
        mimamori::testing::Daemon again({"--config", (dir.path() / "mimamorid.json").string()}, dir.path() / "daemon2.log");
        again.waitForLog(fmt::format("127.0.0.1:{}", port));
        httplib::SSLClient cli("127.0.0.1", port);  // the camera speaks HTTPS only
        cli.enable_server_certificate_verification(false);  // a raw request: fetch's pinning is checked above
        const auto res = cli.Post("/v1/requests", common::readFile(dir.path() / "request.json"), "application/json");
        REQUIRE(res);
        CHECK(res->status == 403);
        CHECK(res->body.find("replayed_nonce") != std::string::npos);
        again.signal(SIGTERM);
        CHECK(again.wait() == 0);
    }
    std::string audit;
    for (const auto& e : policy::readAuditLog(dir.path() / "state" / "audit")) audit += e.line + "\n";
    CHECK(audit.find("\"request_granted\"") != std::string::npos);
    CHECK(audit.find("\"extract_delivered\"") != std::string::npos);
    CHECK(audit.find("\"replayed_nonce\"") != std::string::npos);
    const policy::AuditVerifyResult verified =
        policy::verifyAuditLog(dir.path() / "state" / "audit", camera.publicKey().signKey);
    CHECK_MESSAGE(verified.ok, verified.reason);
}

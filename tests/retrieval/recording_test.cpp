// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// End to end with the real recorder recording ../shared/data/street-vtest.avi through its
// masks, in process with the endpoint as mimamorid runs them: a police fetch over 127.0.0.1
// while 8 clients hammer the endpoint; the clip decodes, covers the range, is black where
// masked, and the recorder drops no frame.
#include "fixture.hpp"

#include "mimamori/masking/mask.hpp"
#include "mimamori/common/config_error.hpp"
#include "mimamori/daemon/config.hpp"
#include "mimamori/daemon/main_loop.hpp"
#include "mimamori/recorder/recorder.hpp"
#include "mimamori/retrieval/client.hpp"

#include <doctest/doctest.h>
#include <gst/video/video.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

namespace {

const std::string kClip = MIMAMORI_SOURCE_DIR "/../shared/data/street-vtest.avi";
}  // namespace

TEST_CASE("recording the street clip: a fetch during 8 hammering clients decodes, covers the range, is black where masked, and no frame is dropped") {
    TempDir dir;
    const CameraFixture fixture(dir.path());
    const policy::SecretKey& camera = fixture.camera;
    const Json config = {
        {"camera_id", "kakogawa-0042"},
        {"source", {{"kind", "file"}, {"location", kClip}, {"realtime", true}}},
        {"segment_seconds", 2},
        {"storage", {{"path", "ring"}}},
        {"mask_file", "masks.json"},
        {"key_dir", "daykeys"},
        {"state_dir", "state"},
        // The officer and the 8 hammering clients share 127.0.0.1: room for all of them.
        {"retrieval", {{"address", "127.0.0.1"}, {"port", 0}, {"trust_file", "trust.json"},
                       {"camera_key", "keys/camera-0042.secret"}, {"max_connections_per_peer", 16},
                       {"insecure_http", true}}},
    };
    common::writeFileAtomic(dir.path() / "mimamorid.json", config.dump(2));

    // What mimamorid does (apps/mimamorid + docs/retrieval-http.md): recorder, audit log, nonce
    // store, endpoint on the recorder's store.
    const daemon::DaemonConfig whole = daemon::loadDaemonConfig(dir.path() / "mimamorid.json");
    const recorder::RecorderConfig& daemonConfig = whole.recorder;
    const EndpointConfig& endpointConfig = *whole.retrieval;
    masking::MaskSet masks = masking::loadMaskFile(daemonConfig.maskFile);
    const std::string maskSha = masks.sha256Hex;
    const common::SystemClock clock;
    const auto ring = store::SegmentStore::open(daemonConfig.store, clock);
    fs::create_directories(daemonConfig.stateDir);
    policy::AuditLog audit(daemonConfig.stateDir / "audit.log", camera, clock);
    policy::NonceStore nonces(daemonConfig.stateDir / "nonces");
    recorder::RecorderOptions options;
    options.healthIntervalSeconds = 1;
    recorder::Recorder rec(daemonConfig, std::move(masks), *ring, &audit, clock, options);
    auto endpoint = Endpoint::start(endpointConfig, "kakogawa-0042", *ring, audit, nonces, camera, clock,
                                    [&] { return maskSha; });
    const UtcMicros started = clock.nowUtc();

    // The police and the hammering clients work on other threads; the recorder owns this one.
    std::optional<FetchResult> fetched;
    std::string failure;
    std::atomic<int> hammered{0};
    std::thread officer([&] {
        try {
            std::this_thread::sleep_for(std::chrono::seconds(13));
            std::atomic<bool> stop{false};
            std::vector<std::thread> clients;
            struct Join {
                std::atomic<bool>& stop;
                std::vector<std::thread>& threads;
                ~Join() {
                    stop = true;
                    for (auto& t : threads) t.join();
                }
            } join{stop, clients};
            for (int c = 0; c < 8; ++c) {
                clients.emplace_back([&, c] {
                    httplib::Client cli("127.0.0.1", endpoint->port());
                    while (!stop) {
                        if (c % 2) cli.Post("/v1/requests", std::string(500 + c, 'x'), "application/json");
                        else cli.Get("/v1/extracts/0123456789abcdef0123456789abcdef/manifest");
                        ++hammered;
                    }
                });
            }
            fetched = fixture.fetch(dir.path() / "request.json", started + 5 * kMicrosPerSecond,
                                    started + 9 * kMicrosPerSecond,
                                    fmt::format("http://127.0.0.1:{}", endpoint->port()), dir.path() / "case");
            std::this_thread::sleep_for(std::chrono::seconds(2));  // keep hammering while recording
        } catch (const std::exception& e) {
            failure = e.what();
        }
        ::kill(::getpid(), SIGTERM);  // mimamorid's stop: finish the segment and return
    });
    const int exitCode = daemon::runRecorder(rec);
    officer.join();
    endpoint->stop();
    CHECK(exitCode == 0);
    REQUIRE_MESSAGE(failure.empty(), failure);
    REQUIRE(fetched);
    CHECK(hammered > 100);

    const Manifest& m = fetched->manifest;
    CHECK(m.actualFrom <= m.requestedFrom);
    CHECK(m.actualTo >= m.requestedTo);
    CHECK(m.actualFrom > m.requestedFrom - 2 * kMicrosPerSecond);  // at most one GOP (1 s) outside
    CHECK(m.actualTo < m.requestedTo + 2 * kMicrosPerSecond);
    CHECK(m.maskSha256 == maskSha);
    CHECK(verifyExtractDir(dir.path() / "case", camera.publicKey().signKey).ok);

    const fs::path clip = dir.path() / "case" / kClipFile;
    const Decoded d = decodeMp4(clip);
    CHECK(d.frames == static_cast<int>(m.frames));
    CHECK(d.frames >= 40);  // 4 s at 10 fps at least
    // Well inside the mask: black in every frame (limited-range black is 16; codec noise aside).
    const Luma masked = lumaIn(clip, 0.13, 0.13, 0.37, 0.37);
    CHECK(masked.frames == d.frames);
    CHECK(masked.worstMean < 24);
    const Luma street = lumaIn(clip, 0.5, 0.5, 0.9, 0.9);
    CHECK(street.worstMean > 40);  // the street itself is not black

    // Recording kept priority: every frame that came in was encoded and stored.
    const Json health = Json::parse(common::readFile(daemonConfig.stateDir / "health.json"));
    CHECK(health["frames"]["dropped"].get<int>() == 0);
    CHECK(health["frames"]["in"].get<int>() > 150);
    CHECK(health["frames"]["in"] == health["frames"]["out"]);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::string log;
    for (const auto& e : policy::readAuditLog(daemonConfig.stateDir / "audit.log")) log += e.line + "\n";
    CHECK(log.find("\"request_granted\"") != std::string::npos);
    CHECK(log.find("\"extract_delivered\"") != std::string::npos);
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The real mimamorid recording its test source, for the tests that attack or break its endpoint
// process and then check that the recorder lost nothing.
#pragma once

#include "fixture.hpp"
#include "../support/daemon_process.hpp"
#include "../support/run_command.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <regex>
#include <string>
#include <vector>

namespace mimamori::retrieval::test {

// The real mimamorid recording its test source (small frames), the endpoint on a free port,
// started under RLIMIT_NOFILE 1024 as systemd sets it by default.
struct Camera {
    using Json = nlohmann::json;
    TempDir dir;
    CameraFixture fixture{dir.path()};
    int port = mimamori::testing::freePort();
    // A moment after the first frame: the ring holds the footage from here on. Not the daemon's
    // start, which can be seconds earlier on a loaded machine or in a sanitized build.
    UtcMicros recording = 0;
    std::unique_ptr<mimamori::testing::Daemon> daemon;

    explicit Camera(const Json& retrievalExtra = Json::object()) {
        Json retrieval = {{"address", "127.0.0.1"}, {"port", port}, {"trust_file", "trust.json"},
                          {"camera_key", "keys/camera-0042.secret"}, {"insecure_http", true}};
        retrieval.update(retrievalExtra);
        const Json config = {
            {"camera_id", "kakogawa-0042"},
            {"source", {{"kind", "test"}, {"width", 320}, {"height", 240}, {"framerate", 10}}},
            {"segment_seconds", 2},
            {"storage", {{"path", "ring"}}},
            {"mask_file", "masks.json"},
            {"key_dir", "daykeys"},
            {"state_dir", "state"},
            {"retrieval", retrieval},
        };
        common::writeFileAtomic(dir.path() / "mimamorid.json", config.dump(2));
        rlimit saved{};
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
        rlimit lowered = saved;
        lowered.rlim_cur = 1024;  // systemd's default soft limit (LimitNOFILE unset)
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
        daemon = std::make_unique<mimamori::testing::Daemon>(
            std::vector<std::string>{"--config", (dir.path() / "mimamorid.json").string()}, dir.path() / "daemon.log");
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);  // the attackers below need more
        daemon->waitForLog("retrieval endpoint on 127.0.0.1:");  // mimamorid heard the endpoint process serve
        daemon->waitForLog("recorder: recording: first frame");
        recording = common::SystemClock().nowUtc();
    }

    // The pids of the endpoint processes mimamorid reported serving, in order (restarts add one).
    std::vector<pid_t> endpointPids() const {
        static const std::regex ready(R"(retrieval endpoint on [^ ]+:\d+ \(process (\d+)\))");
        const std::string log = daemon->log();
        std::vector<pid_t> pids;
        for (auto it = std::sregex_iterator(log.begin(), log.end(), ready); it != std::sregex_iterator(); ++it)
            pids.push_back(static_cast<pid_t>(std::stol((*it)[1])));
        return pids;
    }
    pid_t endpointPid() const {
        const std::vector<pid_t> pids = endpointPids();
        REQUIRE(!pids.empty());
        return pids.back();
    }

    fs::path auditLog() const { return dir.path() / "state" / "audit"; }
    std::uintmax_t auditBytes() const {
        std::uintmax_t bytes = 0;
        for (const auto& file : policy::auditLogFiles(auditLog())) bytes += fs::file_size(file);
        return bytes;
    }

    // Stops the daemon and returns the frames it dropped; checks that nothing else was lost:
    // no failed segment, no gap in health or in `ring ls`, an audit log that verifies.
    int stopAndCheckRecorder() {
        daemon->signal(SIGTERM);
        CHECK(daemon->wait() == 0);
        const Json health = Json::parse(common::readFile(dir.path() / "state" / "health.json"));
        CHECK(health["segments"]["failed"].get<int>() == 0);
        CHECK(health["gaps"].empty());
        CHECK(health["segments"]["written"].get<int>() >= 1);
        CHECK(health["frames"]["in"].get<int>() > 0);
        const auto ls = mimamori::testing::runCommand(std::string(MIMAMORI_BINARY_DIR) + "/apps/mimamori ring ls --config " +
                                                      (dir.path() / "mimamorid.json").string() + " 2>&1");
        CHECK_MESSAGE(ls.status == 0, ls.output);
        CHECK_MESSAGE(ls.output.find("gaps        0") != std::string::npos, ls.output);
        const policy::AuditVerifyResult verified = policy::verifyAuditLog(auditLog(), fixture.camera.publicKey().signKey);
        CHECK_MESSAGE(verified.ok, verified.reason);
        return health["frames"]["dropped"].get<int>();
    }
};


}  // namespace mimamori::retrieval::test

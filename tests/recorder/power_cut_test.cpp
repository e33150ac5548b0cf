// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Power cuts at random points inside the real mimamorid's writes, fsyncs, renames and unlinks of
// the ring, its index, the day key, the audit log and the health record (power_cut_shim.cpp
// says how a cut is made and why a shim). After every cut: the ring verifies, no key of held
// footage is missing, the audit log opens (a torn tail recovered and chained) and verifies, and
// at most the sync interval plus the encoder and hand-over delay of footage is lost.
//
// By hand: MIMAMORI_POWER_CUTS=1000 build/tests/recorder/test_recorder_power_cut
// (default 50, as ./tests/run runs it); MIMAMORI_POWER_CUT_SEED=S draws another sequence.
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/daemon/config.hpp"
#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/segment_format.hpp"
#include "mimamori/store/segment_store.hpp"
#include "../support/daemon_process.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>

using namespace mimamori;
using namespace mimamori::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// What a cut may take: the sync interval (the default 800 ms); the encoder's delay (two B-frames
// and x264's frame threading, about three frames at 10 fps); the hand-over to the writing thread
// (a batch waits up to 100 ms, and the sync comes with the first write after the interval, up to
// a batch later); and 0.2 s for a machine shared with other work.
constexpr double kSyncIntervalSeconds = 0.8;
constexpr double kEncoderDelaySeconds = 0.3;
constexpr double kHandOverSeconds = 0.2;
constexpr double kMaxLossSeconds = kSyncIntervalSeconds + kEncoderDelaySeconds + kHandOverSeconds + 0.2;

int envInt(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : fallback;
}

// Where a cut is aimed: a class of file and how many of its events may come first.
// Past `recordingSeconds` of recording without the cut, the test kills the daemon itself.
using Seconds = std::chrono::duration<double>;
struct Aim {
    const char* cls;
    int maxAt;
    int weight;
    Seconds recordingSeconds;
};
const Aim kAims[] = {
    // chunk writes, fdatasync, the final chunk, fsync, rename, directory fsync, recovery: ~6 a second
    {"segment", 24, 40, Seconds(5)},
    {"index", 4, 12, Seconds(5)},    // one append per finished (1 s) segment
    {"audit", 4, 14, Seconds(1)},    // daemon_start, key_advanced, retention_deleted, checkpoints, torn tails
    {"key", 4, 12, Seconds(1)},      // tmp write, fsync, rename, directory fsync of the day key
    {"health", 3, 10, Seconds(1)},   // tmp write, fsync, rename of health.json (at start, then every 10 s)
    {"any", 30, 12, Seconds(5)},
};

struct Footage {
    std::optional<common::UtcMicros> newestEnd;  // of listed segments and of partial ones
    std::size_t segments = 0;
    std::size_t partial = 0;
};

}  // namespace

TEST_CASE("power cuts inside writes, fsyncs and renames: the ring verifies, keys held, audit log chained, loss bounded") {
    const int cuts = envInt("MIMAMORI_POWER_CUTS", 50);
    const auto seed = static_cast<unsigned>(envInt("MIMAMORI_POWER_CUT_SEED", 20261201));
    const fs::path dir = fs::path(MIMAMORI_BINARY_DIR) / "test-tmp" / "power-cut";
    fs::remove_all(dir);
    fs::create_directories(dir / "camkeys");

    const policy::SecretKey camera = policy::generateKey(policy::Role::Camera, "cam-cut");
    policy::writeKeyFiles(camera, dir / "camkeys");
    const policy::SecretKey police = policy::generateKey(policy::Role::Police, "police-1");
    policy::TrustStore trust;
    trust.add(police.publicKey());
    common::writeFileAtomic(dir / "trust.json", trust.toJson());
    common::writeFileAtomic(dir / "masks.json", R"({"version": 1, "camera": "cam-cut", "masks": [{"name": "house",
        "polygon": [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3], [0.1, 0.3]]}]})");
    const json config = {
        {"camera_id", "cam-cut"},
        {"source", {{"kind", "test"}, {"width", 160}, {"height", 120}, {"framerate", 10}}},
        {"segment_seconds", 1},
        {"storage", {{"path", "ring"}, {"retention_days", 2}}},
        {"mask_file", "masks.json"},
        {"key_dir", "keys"},
        {"state_dir", "state"},
        {"retrieval",
         {{"address", "127.0.0.1"}, {"port", freePort()}, {"trust_file", "trust.json"},
          {"camera_key", "camkeys/cam-cut.secret"}, {"insecure_http", true}}},  // no TLS key: only the audit log matters
    };
    common::writeFileAtomic(dir / "mimamorid.json", config.dump(2));
    const store::StoreConfig store = daemon::loadDaemonConfig(dir / "mimamorid.json").recorder.store;
    const fs::path auditPath = dir / "state" / "audit";
    const fs::path report = dir / "cut-report";

    std::mt19937 random(seed);
    int totalWeight = 0;
    for (const Aim& a : kAims) totalWeight += a.weight;
    common::UtcMicros offset = 0;  // the camera's clock runs this far ahead (a day per key cut)

    // What the ring holds, as the next start will find it: listed segments must decrypt, and
    // each partial one up to its last authenticated chunk, with keys the device still has.
    auto inspect = [&](int cycle) {
        Footage f;
        common::ManualClock clock(common::SystemClock().nowUtc() + offset);
        auto ring = store::SegmentStore::openReadOnly(store, clock);
        for (const auto& s : ring->all()) {
            const auto read = ring->read(s, nullptr);
            INFO("cycle ", cycle, ": ", s.path.filename().string());
            CHECK_MESSAGE(read.ok(), (read.ok() ? "" : read.error()));
            f.newestEnd = std::max(f.newestEnd.value_or(s.end), s.end);
            ++f.segments;
        }
        const auto ratchet = store::KeyRatchet::load(store.keyDir);
        REQUIRE_MESSAGE(ratchet, "cycle " << cycle << ": no day key");
        for (const auto& e : fs::directory_iterator(store.storageDir)) {
            const std::string name = e.path().filename().string();
            if (!name.ends_with(store::format::kPartialSuffix)) continue;
            common::UniqueFd fd(::open(e.path().c_str(), O_RDONLY | O_CLOEXEC));
            REQUIRE(fd.valid());
            bool missingKey = false;
            const auto scan = store::format::decodeSegment(
                fd.get(), name,
                [&](const store::format::FileHeader& h) {
                    auto key = ratchet->segmentKey(h.keyDay, h.sequence);
                    missingKey = !key;
                    return key;
                },
                nullptr);
            INFO("cycle ", cycle, ": partial ", name, ": ", scan.error.value_or("ok"));
            CHECK(!missingKey);  // footage on the card whose key is gone
            if (scan.dataChunks > 0 && scan.lastPrefix) {
                f.newestEnd = std::max(f.newestEnd.value_or(scan.lastPrefix->mediaEnd), scan.lastPrefix->mediaEnd);
                ++f.partial;
            }
        }
        return f;
    };

    // The audit log as the next start opens it: a copy is opened (recovering a torn tail into
    // the chain), closed, and verified against the camera key.
    std::size_t tornTails = 0;
    auto checkAudit = [&](int cycle) {
        if (!fs::exists(auditPath)) return;
        const fs::path scratch = dir / "audit-check";
        fs::remove_all(scratch);
        fs::create_directories(scratch);
        fs::copy(auditPath, scratch / "audit", fs::copy_options::recursive);
        INFO("cycle ", cycle);
        common::SystemClock clock;
        try {
            policy::AuditLog log(scratch / "audit", camera, clock);
            if (log.recovery().tornBytes > 0) ++tornTails;
            log.close();
        } catch (const std::exception& e) {
            FAIL("the audit log does not open after the cut: " << e.what());
        }
        const auto verified = policy::verifyAuditLog(scratch / "audit", camera.publicKey().signKey);
        CHECK_MESSAGE(verified.ok, verified.reason);
    };

    std::map<std::string, int> byClass;
    int shimCuts = 0, fallbackKills = 0, lossChecked = 0;
    double worstLoss = 0, totalLoss = 0;
    std::string worstWhere;
    const auto began = std::chrono::steady_clock::now();
    for (int cycle = 0; cycle < cuts; ++cycle) {
        int pick = std::uniform_int_distribution<int>(0, totalWeight - 1)(random);
        const Aim* aim = kAims;
        while (pick >= aim->weight) pick -= (aim++)->weight;
        const int at = std::uniform_int_distribution<int>(1, aim->maxAt)(random);
        // A key cut needs a day to pass: the next start finds a day more of footage expired.
        if (std::string(aim->cls) == "key") offset += common::kMicrosPerDay;
        fs::remove(report);

        ::setenv("LD_PRELOAD", MIMAMORI_POWER_CUT_SHIM, 1);
        ::setenv("MIMAMORI_CUT_CLASS", aim->cls, 1);
        ::setenv("MIMAMORI_CUT_AT", std::to_string(at).c_str(), 1);
        ::setenv("MIMAMORI_CUT_SEED", std::to_string(random()).c_str(), 1);
        ::setenv("MIMAMORI_CUT_REPORT", report.c_str(), 1);
        ::setenv("MIMAMORI_CUT_RING", store.storageDir.c_str(), 1);
        ::setenv("MIMAMORI_CUT_KEYS", store.keyDir.c_str(), 1);
        ::setenv("MIMAMORI_TIME_OFFSET_US", std::to_string(offset).c_str(), 1);
        Daemon d({"--config", (dir / "mimamorid.json").string()}, dir / "daemon.log");
        ::unsetenv("LD_PRELOAD");

        // Wait for the cut; an aim past the events this run makes ends in a plain SIGKILL, once
        // recording has run long enough for the aim's class to have had its events.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        std::optional<std::chrono::steady_clock::time_point> recordingSince;
        while (d.running() && std::chrono::steady_clock::now() < deadline) {
            if (!recordingSince && d.log().find("first frame at ") != std::string::npos)
                recordingSince = std::chrono::steady_clock::now();
            if (recordingSince && std::chrono::steady_clock::now() - *recordingSince > aim->recordingSeconds) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        common::UtcMicros cutUtc = common::SystemClock().nowUtc() + offset;
        std::string where = std::string(aim->cls) + " (killed: no event " + std::to_string(at) + ")";
        if (d.running()) {
            d.signal(SIGKILL);
            ++fallbackKills;
        }
        const int status = d.wait();
        const std::string log = d.log();
        REQUIRE_MESSAGE(status == -SIGKILL, "cycle " << cycle << ": mimamorid ended with " << status
                                                     << " instead of being cut; its log:\n" << log);
        if (fs::exists(report)) {
            const std::string line = common::readFile(report);
            char cls[32] = {}, op[32] = {}, mode[32] = {};
            long n = 0;
            long long utc = 0;
            REQUIRE(std::sscanf(line.c_str(), "%31s %31s %31s %ld %lld", cls, op, mode, &n, &utc) == 5);
            cutUtc = utc;
            where = fmt::format("{} {} {} #{}", cls, op, mode, n);
            ++byClass[cls];
            ++shimCuts;
        }

        const Footage f = inspect(cycle);
        checkAudit(cycle);
        if (fs::exists(dir / "state" / "health.json")) {
            INFO("cycle ", cycle, ": health.json");
            json parsed;
            CHECK_NOTHROW(parsed = json::parse(common::readFile(dir / "state" / "health.json")));
        }

        // Loss, for every cut after the first frame: from the cut back to the newest footage
        // the next start will hold, or to the first frame when nothing of this run is held.
        const std::string firstFrame = "first frame at ";
        if (const auto p = log.find(firstFrame); p != std::string::npos) {
            const auto start = common::parseUtc(log.substr(p + firstFrame.size(), log.find('\n', p) - p - firstFrame.size()));
            REQUIRE(start);
            if (cutUtc > *start) {
                const common::UtcMicros held = std::max(f.newestEnd.value_or(*start), *start);
                const double loss = static_cast<double>(cutUtc - held) / 1e6;
                INFO("cycle ", cycle, " cut at ", where, ": ", loss, " s lost");
                CHECK(loss <= kMaxLossSeconds);
                ++lossChecked;
                totalLoss += loss;
                if (loss > worstLoss) {
                    worstLoss = loss;
                    worstWhere = fmt::format("cycle {}, {}", cycle, where);
                }
            }
        }
    }

    // A clean run after all of it recovers what is left, records, and stops normally.
    {
        ::setenv("MIMAMORI_TIME_OFFSET_US", std::to_string(offset).c_str(), 1);
        ::setenv("LD_PRELOAD", MIMAMORI_POWER_CUT_SHIM, 1);  // the clock offset only: no cut class
        ::unsetenv("MIMAMORI_CUT_CLASS");
        Daemon d({"--config", (dir / "mimamorid.json").string()}, dir / "final.log");
        ::unsetenv("LD_PRELOAD");
        d.waitForLog("first frame at ");
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        d.signal(SIGTERM);
        CHECK(d.wait() == 0);
    }
    common::ManualClock clock(common::SystemClock().nowUtc() + offset);
    auto ring = store::SegmentStore::open(store, clock);
    const auto segments = ring->all();
    CHECK(!segments.empty());
    for (const auto& s : segments) CHECK(ring->read(s, nullptr).ok());
    const auto verified = policy::verifyAuditLog(auditPath, camera.publicKey().signKey);
    CHECK_MESSAGE(verified.ok, verified.reason);

    std::string classes;
    for (const auto& [cls, n] : byClass) classes += fmt::format("{}{} {}", classes.empty() ? "" : ", ", cls, n);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    MESSAGE(fmt::format("power cuts: {} ({} inside a call: {}; {} plain SIGKILL), seed {}, {:.0f} s; torn audit tails "
                        "recovered {}; loss checked after {} cuts: worst {:.3f} s ({}), mean {:.3f} s; bound {:.1f} s",
                        cuts, shimCuts, classes, fallbackKills, seed, seconds, tornTails, lossChecked, worstLoss,
                        worstWhere, lossChecked ? totalLoss / lossChecked : 0.0, kMaxLossSeconds));
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The real mimamorid process: fail-closed start, --check-config, SIGHUP mask reloads, lost
// sources, kill -9 at random instants, writes refused (gaps) and a day key that cannot advance.
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/daemon/config.hpp"
#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/segment_store.hpp"
#include "pipeline_support.hpp"
#include "../support/daemon_process.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

using namespace mimamori;
using namespace mimamori::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path freshDir(const std::string& name) {
    auto dir = fs::path(MIMAMORI_BINARY_DIR) / "test-tmp" / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

json baseConfig() {
    return {{"camera_id", "cam-test"},
            {"source",
             {{"kind", "test"}, {"width", 320}, {"height", 240}, {"framerate", 10}}},
            {"segment_seconds", 2},
            {"storage", {{"path", "ring"}}},
            {"mask_file", "masks.json"},
            {"key_dir", "keys"},
            {"state_dir", "state"}};
}

fs::path writeConfig(const fs::path& dir, const json& config) {
    common::writeFileAtomic(dir / "mimamorid.json", config.dump(2));
    return dir / "mimamorid.json";
}

store::StoreConfig storeConfig(const fs::path& dir) {
    return daemon::loadDaemonConfig(dir / "mimamorid.json").recorder.store;
}

std::vector<Frame> decodeAll(const fs::path& dir) {
    common::SystemClock clock;
    auto store = store::SegmentStore::open(storeConfig(dir), clock);
    std::vector<Frame> frames;
    for (const auto& ts : readSegments(*store, store->all()))
        for (auto& f : decodeTs(ts)) frames.push_back(std::move(f));
    return frames;
}

bool black(const Frame& f, const Rect& r) {
    PixelRect p = pixels(r, f.width, f.height, 2);
    return lumaStats(f, p.x0, p.y0, p.x1, p.y1).max <= 24;
}

}  // namespace

TEST_CASE("a missing or invalid mask file refuses to start and records nothing") {
    auto dir = freshDir("daemon-failclosed");
    auto config = writeConfig(dir, baseConfig());
    {
        Daemon d({"--config", config.string()}, dir / "missing.log");
        CHECK(d.wait() == 1);
        CHECK(d.log().find("refusing to record") != std::string::npos);
        CHECK(d.log().find("masks.json") != std::string::npos);
    }
    common::writeFileAtomic(dir / "masks.json",
                            R"({"version": 1, "camera": "cam-test", "masks": [)"
                            R"({"name": "a", "polygon": [[0.1, 0.1], [1.7, 0.1], [0.5, 0.9]]}]})");
    {
        Daemon d({"--config", config.string()}, dir / "invalid.log");
        CHECK(d.wait() == 1);
        std::string log = d.log();
        CHECK(log.find("refusing to record") != std::string::npos);
        CHECK(log.find("mask 'a' point 1") != std::string::npos);
        // One clear line.
        CHECK(std::count(log.begin(), log.end(), '\n') == 1);
    }
    {
        Daemon d({"--check-config", config.string()}, dir / "check.log");
        CHECK(d.wait() == 1);
        CHECK(d.log().find("point 1") != std::string::npos);
    }
    CHECK(!fs::exists(dir / "ring"));  // nothing was even opened
}

TEST_CASE("--check-config lists every problem of a bad config and accepts a good one") {
    auto dir = freshDir("daemon-check");
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {{0.1, 0.1, 0.2, 0.2}}));
    json bad = baseConfig();
    bad["segment_seconds"] = 0;
    bad["storage"]["retention_days"] = 20;
    bad["sorce"] = {{"kind", "test"}};
    auto config = writeConfig(dir, bad);
    {
        Daemon d({"--check-config", config.string()}, dir / "bad.log");
        CHECK(d.wait() == 1);
        std::string log = d.log();
        CHECK(std::count(log.begin(), log.end(), '\n') == 3);
        CHECK(log.find("segment_seconds:") != std::string::npos);
        CHECK(log.find("storage.retention_days:") != std::string::npos);
        CHECK(log.find("sorce: unknown key") != std::string::npos);
    }
    {
        Daemon d({"--config", config.string()}, dir / "bad-start.log");
        CHECK(d.wait() == 1);
        std::string log = d.log();
        CHECK(std::count(log.begin(), log.end(), '\n') == 1);  // one clear line
    }
    config = writeConfig(dir, baseConfig());
    Daemon d({"--check-config", config.string()}, dir / "good.log");
    CHECK(d.wait() == 0);
    CHECK(d.log().find("valid") != std::string::npos);
}

TEST_CASE("with the default encoder's B-frames, segments are cut at segment_seconds, the first one too") {
    auto dir = freshDir("daemon-segment-length");
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {{0.1, 0.1, 0.3, 0.3}}));
    auto config = writeConfig(dir, baseConfig());  // 2 s segments, 10 fps, default x264 settings
    {
        Daemon d({"--config", config.string()}, dir / "daemon.log");
        d.waitForLog("first frame at");
        std::this_thread::sleep_for(std::chrono::milliseconds(9500));
        d.signal(SIGTERM);
        CHECK(d.wait() == 0);
    }
    common::SystemClock clock;
    auto store = store::SegmentStore::open(storeConfig(dir), clock);
    const auto segments = store->all();
    REQUIRE(segments.size() >= 4);
    // Every segment but the last (cut short by SIGTERM) holds one keyframe interval: the
    // keyframes arrive in the TS a few frames early (decode order), never a whole interval late.
    for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
        const double seconds = double(segments[i].end - segments[i].start) / 1e6;
        INFO("segment ", i, ": ", seconds, " s");
        CHECK(seconds > 1.5);
        CHECK(seconds < 2.5);
    }
}

TEST_CASE("SIGHUP: an invalid mask file keeps the old masks, a valid one changes the masked area") {
    auto dir = freshDir("daemon-sighup");
    const Rect a{0.05, 0.1, 0.3, 0.45}, b{0.55, 0.2, 0.7, 0.6};
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {a}));
    auto config = writeConfig(dir, baseConfig());
    {
        Daemon d({"--config", config.string()}, dir / "daemon.log");
        d.waitForLog("first frame at");
        std::this_thread::sleep_for(std::chrono::seconds(2));
        common::writeFileAtomic(dir / "masks.json",
                                R"({"version": 1, "camera": "cam-test", "masks": [)"
                                R"({"name": "bad", "polygon": [[0.1, 0.1], [2, 0.1], [0.5, -1]]}]})");
        d.signal(SIGHUP);
        std::string log = d.waitForLog("keeping the previous masks");
        // Every finding is logged, each on its own line.
        CHECK(log.find("mask 'bad' point 1") != std::string::npos);
        CHECK(log.find("mask 'bad' point 2") != std::string::npos);
        std::this_thread::sleep_for(std::chrono::seconds(2));
        common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {b}));
        d.signal(SIGHUP);
        d.waitForLog("masks reloaded");
        std::this_thread::sleep_for(std::chrono::seconds(2));
        d.signal(SIGTERM);
        CHECK(d.wait() == 0);
    }
    auto frames = decodeAll(dir);
    REQUIRE(frames.size() > 40);
    // A A A ... B B B: every frame masked by exactly the set in force, one switch, never bare.
    std::size_t switches = 0;
    bool inB = false;
    for (const auto& f : frames) {
        bool isA = black(f, a), isB = black(f, b);
        REQUIRE((isA || isB));
        CHECK(isA != isB);
        if (isB && !inB) ++switches;
        inB = isB;
    }
    CHECK(switches == 1);
    CHECK(black(frames.front(), a));
    CHECK(black(frames.back(), b));
    // The stop finished the last segment cleanly (not left for recovery).
    common::SystemClock clock;
    auto store = store::SegmentStore::open(storeConfig(dir), clock);
    auto segments = store->all();
    REQUIRE(!segments.empty());
    for (const auto& s : segments) CHECK(!s.recovered);
}

TEST_CASE("a lost source keeps the daemon up: it logs, records the gap and retries") {
    auto dir = freshDir("daemon-lost");
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {}));
    // A closed port on 127.0.0.1 and a camera that is not plugged in.
    for (json source : {json{{"kind", "rtsp"}, {"location", "rtsp://127.0.0.1:9/stream"}},
                        json{{"kind", "v4l2"}, {"location", "/dev/video-mimamori-absent"}}}) {
        json cfg = baseConfig();
        cfg["source"] = source;
        auto config = writeConfig(dir, cfg);
        fs::remove(dir / "state" / "health.json");
        Daemon d({"--config", config.string()}, dir / "daemon.log");
        std::string log = d.waitForLog("retrying in", 30, 3);  // 1 s, 2 s, 4 s back-off
        CHECK(log.find("retrying in 1 s") != std::string::npos);
        CHECK(log.find("retrying in 2 s") != std::string::npos);
        CHECK(log.find("source lost") != std::string::npos);
        CHECK(d.running());
        d.signal(SIGTERM);
        CHECK(d.wait() == 0);
        json health = json::parse(common::readFile(dir / "state" / "health.json"));
        REQUIRE(health["gaps"].size() >= 1);
        const json& gap = health["gaps"].back();
        CHECK(gap["reason"].get<std::string>().find("source lost") != std::string::npos);
        CHECK(gap["end"].is_string());
        CHECK(health["frames"]["in"] == 0);
        CHECK(health["state"] == "stopped");
    }
}

TEST_CASE("kill -9 at random instants: completed segments intact, at most about a second lost") {
    auto dir = freshDir("daemon-kill9");
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {{0.1, 0.1, 0.3, 0.3}}));
    json cfg = baseConfig();
    cfg["source"]["framerate"] = 15;
    auto config = writeConfig(dir, cfg);
    common::SystemClock clock;
    std::mt19937 random(20261124);
    std::uniform_int_distribution<int> afterFirstFrameMs(300, 4000);

    auto coverage = [&](std::size_t* count, std::size_t* recovered) {
        auto store = store::SegmentStore::open(storeConfig(dir), clock);
        auto segments = store->all();
        common::UtcMicros sum = 0;
        for (const auto& s : segments) sum += s.end - s.start;
        readSegments(*store, segments);  // throws when any listed segment fails to decrypt
        *count = segments.size();
        *recovered = 0;
        for (const auto& s : segments) *recovered += s.recovered ? 1 : 0;
        if (!segments.empty()) {
            // The newest segment decodes from a keyframe.
            bool key = false;
            auto frames = decodeTs(readSegments(*store, {segments.back()}).front(), &key);
            CHECK(key);
            CHECK(!frames.empty());
        }
        return sum;
    };

    double worstLoss = 0, totalLoss = 0;
    std::size_t count = 0, recovered = 0;
    common::UtcMicros before = coverage(&count, &recovered);
    const int cycles = 20;
    for (int cycle = 0; cycle < cycles; ++cycle) {
        Daemon d({"--config", config.string()}, dir / "daemon.log");
        if (cycle % 5 == 4) {
            // Now and then during start-up (store recovery, pipeline set-up).
            std::this_thread::sleep_for(std::chrono::milliseconds(afterFirstFrameMs(random) / 10));
            d.signal(SIGKILL);
            d.wait();
            continue;
        }
        std::string log = d.waitForLog("first frame at ");
        auto at = log.find("first frame at ") + std::string("first frame at ").size();
        auto firstFrame = common::parseUtc(log.substr(at, log.find('\n', at) - at));
        REQUIRE(firstFrame);
        std::this_thread::sleep_for(std::chrono::milliseconds(afterFirstFrameMs(random)));
        common::UtcMicros killedAt = clock.nowUtc();
        d.signal(SIGKILL);
        CHECK(d.wait() == -SIGKILL);
        common::UtcMicros after = coverage(&count, &recovered);
        double ran = double(killedAt - *firstFrame) / 1e6;
        double kept = double(after - before) / 1e6;
        double lost = ran - kept;
        worstLoss = std::max(worstLoss, lost);
        totalLoss += lost;
        INFO("cycle ", cycle, ": ran ", ran, " s, kept ", kept, " s");
        // Recording resumed after the previous kill: whatever ran past one sync interval
        // (plus the first chunk's hand-over) is on disk.
        if (ran >= 1.5) CHECK(kept > 0);
        CHECK(lost <= 1.5);   // at most about one second (sync interval) plus a frame or two
        before = after;
    }
    MESSAGE("kill -9 cycles: ", cycles, ", segments ", count, " (", recovered,
            " recovered), worst loss ", worstLoss, " s, mean loss ", totalLoss / 16, " s");
    // A clean run after all that still records and stops normally.
    Daemon d({"--config", config.string()}, dir / "final.log");
    d.waitForLog("first frame at ");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    d.signal(SIGTERM);
    CHECK(d.wait() == 0);
    common::UtcMicros finalCoverage = coverage(&count, &recovered);
    CHECK(finalCoverage > before);
}

TEST_CASE("file sources: a looping file records on seamlessly, a finished one is a gap and a retry") {
    auto dir = freshDir("daemon-file");
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {{0.1, 0.1, 0.3, 0.3}}));
    // A 2 s clip at 10 fps, made here so the test needs nothing else.
    const fs::path clip = dir / "clip.mkv";
    const std::string make = "gst-launch-1.0 -q videotestsrc num-buffers=20 pattern=smpte75 ! "
                             "video/x-raw,width=320,height=240,framerate=10/1 ! x264enc ! "
                             "h264parse ! matroskamux ! filesink location=" + clip.string();
    REQUIRE(std::system(make.c_str()) == 0);

    json cfg = baseConfig();
    cfg["source"] = {{"kind", "file"}, {"location", clip.string()}, {"loop", true}};
    auto config = writeConfig(dir, cfg);
    {
        Daemon d({"--config", config.string()}, dir / "loop.log");
        d.waitForLog("first frame at");
        std::this_thread::sleep_for(std::chrono::milliseconds(5500));  // plays the clip ~3 times
        d.signal(SIGTERM);
        CHECK(d.wait() == 0);
        CHECK(d.log().find("source ended") == std::string::npos);
    }
    common::SystemClock clock;
    {
        auto store = store::SegmentStore::open(storeConfig(dir), clock);
        auto segments = store->all();
        REQUIRE(segments.size() >= 2);
        for (std::size_t i = 0; i + 1 < segments.size(); ++i)
            CHECK(segments[i].end == segments[i + 1].start);  // no break at the loop point
    }
    CHECK(decodeAll(dir).size() > 40);

    cfg["source"] = {{"kind", "file"}, {"location", clip.string()}};
    config = writeConfig(dir, cfg);
    Daemon d({"--config", config.string()}, dir / "once.log");
    d.waitForLog("retrying in 1 s");
    d.waitForLog("first frame at", 30, 2);  // recorded the file again after the retry
    CHECK(d.running());
    d.signal(SIGTERM);
    CHECK(d.wait() == 0);
    json health = json::parse(common::readFile(dir / "state" / "health.json"));
    bool endOfStreamGap = false;
    for (const auto& gap : health["gaps"])
        endOfStreamGap = endOfStreamGap || gap["reason"] == "end of stream";
    CHECK(endOfStreamGap);
}

namespace {

// baseConfig() with a retrieval section, so that the daemon keeps its audit log.
json configWithAudit(const fs::path& dir) {
    fs::create_directories(dir / "camkeys");
    const policy::SecretKey camera = policy::generateKey(policy::Role::Camera, "cam-test");
    policy::writeKeyFiles(camera, dir / "camkeys");
    policy::TrustStore trust;
    trust.add(policy::generateKey(policy::Role::Police, "police-1").publicKey());
    common::writeFileAtomic(dir / "trust.json", trust.toJson());
    json cfg = baseConfig();
    cfg["retrieval"] = {{"address", "127.0.0.1"}, {"port", freePort()}, {"trust_file", "trust.json"},
                        {"camera_key", "camkeys/cam-test.secret"}, {"insecure_http", true}};  // no TLS key here
    return cfg;
}

rlim_t softDescriptorLimit(pid_t pid) {
    rlimit limit{};
    REQUIRE(::prlimit(pid, RLIMIT_NOFILE, nullptr, &limit) == 0);
    return limit.rlim_cur;
}

// The audit log's entries of one type, as parsed JSON lines.
std::vector<json> auditEntries(const fs::path& log, const std::string& type) {
    std::vector<json> out;
    for (const auto& e : policy::readAuditLog(log))
        if (e.type == type) out.push_back(json::parse(e.fieldsJson));
    return out;
}

}  // namespace

TEST_CASE("footage the recorder cannot write (no descriptors) is a gap in health and a recording_gap in the audit log") {
    auto dir = freshDir("daemon-write-gap");
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {{0.1, 0.1, 0.3, 0.3}}));
    auto config = writeConfig(dir, configWithAudit(dir));
    // Started with a low soft limit, as a unit without LimitNOFILE would start it.
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    REQUIRE(saved.rlim_max > 512);
    const rlimit low{256, saved.rlim_max};
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    Daemon d({"--config", config.string()}, dir / "daemon.log");
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
    d.waitForLog("first frame at");
    // The recorder runs with the hard limit: network clients cannot take its descriptors.
    CHECK(softDescriptorLimit(d.pid()) == saved.rlim_max);

    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    // Now no descriptor can be opened at all (0, 1 and 2 are taken): every new segment fails
    // with EMFILE, as when a flood of connections took them all.
    const common::UtcMicros blockedAt = common::SystemClock().nowUtc();
    const rlimit none{3, saved.rlim_max};
    REQUIRE(::prlimit(d.pid(), RLIMIT_NOFILE, &none, nullptr) == 0);
    d.waitForLog("writing the segment failed");
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    const common::UtcMicros freedAt = common::SystemClock().nowUtc();
    REQUIRE(::prlimit(d.pid(), RLIMIT_NOFILE, &saved, nullptr) == 0);
    d.waitForLog("writing resumed");
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    d.signal(SIGTERM);
    CHECK(d.wait() == 0);

    const json health = json::parse(common::readFile(dir / "state" / "health.json"));
    CHECK(health["segments"]["failed"].get<int>() >= 1);
    std::optional<json> gap;
    for (const auto& g : health["gaps"])
        if (g["reason"].get<std::string>().starts_with("write failed:")) gap = g;
    REQUIRE_MESSAGE(gap, health.dump(2));
    CHECK((*gap)["reason"].get<std::string>().find("Too many open files") != std::string::npos);
    REQUIRE((*gap)["end"].is_string());
    const auto gapStart = *common::parseUtc((*gap)["start"].get<std::string>());
    const auto gapEnd = *common::parseUtc((*gap)["end"].get<std::string>());
    // The gap spans the blocked time (give or take the segment under way and a keyframe).
    CHECK(gapStart <= freedAt);
    CHECK(gapStart >= blockedAt - 3 * common::kMicrosPerSecond);
    CHECK(gapEnd >= freedAt - common::kMicrosPerSecond);
    CHECK(gapEnd <= freedAt + 4 * common::kMicrosPerSecond);

    const auto recorded = auditEntries(dir / "state" / "audit", "recording_gap");
    REQUIRE(recorded.size() == 1);
    CHECK(recorded[0]["reason"] == (*gap)["reason"]);
    CHECK(recorded[0]["start"] == (*gap)["start"]);

    // The ring agrees: its segments leave a hole where the gap is.
    common::SystemClock clock;
    auto store = store::SegmentStore::open(storeConfig(dir), clock);
    const auto segments = store->all();
    bool hole = false;
    for (std::size_t i = 0; i + 1 < segments.size(); ++i)
        hole = hole || (segments[i].end <= gapStart + 1000 && segments[i + 1].start >= gapEnd - 1000 &&
                        segments[i + 1].start - segments[i].end >= 2 * common::kMicrosPerSecond);
    CHECK(hole);
    for (const auto& s : segments) CHECK(store->read(s, nullptr).ok());
}

TEST_CASE("a day key that cannot advance is a health state and an audit entry; the next start catches up") {
    auto dir = freshDir("daemon-ratchet");
    common::writeFileAtomic(dir / "masks.json", maskJson("cam-test", {{0.1, 0.1, 0.3, 0.3}}));
    json cfg = configWithAudit(dir);
    cfg["storage"]["retention_days"] = 1;
    auto config = writeConfig(dir, cfg);
    const auto store = storeConfig(dir);
    // Three days ago the camera recorded one segment; its day key is the oldest one held.
    const common::UtcMicros then = common::SystemClock().nowUtc() - 3 * common::kMicrosPerDay;
    std::int64_t oldDay = 0;
    {
        common::ManualClock clock(then);
        auto ring = store::SegmentStore::open(store, clock);
        auto writer = ring->beginSegment(clock.nowUtc());
        clock.advance(common::kMicrosPerSecond);
        const std::vector<std::uint8_t> ts(188 * 8, 0x47);
        writer->write(ts, clock.nowUtc());
        writer->finish(clock.nowUtc());
        oldDay = store::KeyRatchet::load(store.keyDir)->day();
    }
    REQUIRE(oldDay == store::dayIndex(then));
    // The key partition refuses the new key file (here: its temporary name is a directory).
    const fs::path obstacle = store.keyDir / "day.key.tmp";
    fs::create_directories(obstacle);
    {
        Daemon d({"--config", config.string()}, dir / "failing.log");
        d.waitForLog("the day key cannot advance");
        d.waitForLog("first frame at");  // recording goes on regardless
        d.signal(SIGTERM);
        CHECK(d.wait() == 0);
    }
    json health = json::parse(common::readFile(dir / "state" / "health.json"));
    INFO(health.dump(2));
    CHECK(health["key_ratchet"]["state"] == "failing");
    CHECK(health["key_ratchet"]["day"] == common::formatUtc(oldDay * common::kMicrosPerDay).substr(0, 10));
    CHECK(health["key_ratchet"]["error"].get<std::string>().find("day.key.tmp") != std::string::npos);
    CHECK(health["key_ratchet"]["failing_since"].is_string());
    const auto failed = auditEntries(dir / "state" / "audit", "key_ratchet_failed");
    REQUIRE(failed.size() == 1);
    CHECK(failed[0]["day"] == health["key_ratchet"]["day"]);
    CHECK(failed[0]["target_day"] == health["key_ratchet"]["target_day"]);
    CHECK(store::KeyRatchet::load(store.keyDir)->day() == oldDay);
    // Retention did not wait for the key: the expired segment is gone from the card.
    {
        common::SystemClock clock;
        auto ring = store::SegmentStore::openReadOnly(store, clock);
        for (const auto& s : ring->all()) CHECK(s.start > then + common::kMicrosPerDay);
    }

    fs::remove(obstacle);
    {
        Daemon d({"--config", config.string()}, dir / "fixed.log");
        d.waitForLog("first frame at");
        d.signal(SIGTERM);
        CHECK(d.wait() == 0);
    }
    health = json::parse(common::readFile(dir / "state" / "health.json"));
    CHECK(health["key_ratchet"]["state"] == "ok");
    CHECK(health["key_ratchet"]["error"].is_null());
    CHECK(store::KeyRatchet::load(store.keyDir)->day() > oldDay);
    // One day_shredded per day the key moved past, the first with the segment deleted while
    // the key could not move (counted across the restart).
    const auto shredded = auditEntries(dir / "state" / "audit", "day_shredded");
    REQUIRE(!shredded.empty());
    CHECK(shredded.size() == static_cast<std::size_t>(store::KeyRatchet::load(store.keyDir)->day() - oldDay));
    CHECK(shredded.front()["day"] == common::formatUtc(oldDay * common::kMicrosPerDay).substr(0, 10));
    CHECK(shredded.front()["segments"] == 1);
    CHECK(auditEntries(dir / "state" / "audit", "key_advanced").empty());
    CHECK(auditEntries(dir / "state" / "audit", "key_ratchet_failed").size() == 1);
}

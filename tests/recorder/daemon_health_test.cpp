// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The health record: counters and gaps in the JSON, gaps kept across restarts, atomic writes.
#include "mimamori/recorder/health.hpp"

#include "mimamori/common/file.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

using namespace mimamori;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {
constexpr common::UtcMicros kT0 = 1'790'000'000LL * common::kMicrosPerSecond;
constexpr common::UtcMicros kSec = common::kMicrosPerSecond;

fs::path freshFile() {
    auto dir = fs::path(MIMAMORI_BINARY_DIR) / "test-tmp" / "health";
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir / "health.json";
}
}  // namespace

TEST_CASE("the health record holds counters, segments, gaps and storage") {
    auto file = freshFile();
    recorder::Health health(file, "cam-1", kT0);
    health.openGap(kT0 + 5 * kSec, "source lost: device gone");
    health.openGap(kT0 + 6 * kSec, "source lost: again");  // the first reason counts
    health.closeGap(kT0 + 9 * kSec);
    store::SegmentInfo segment;
    segment.start = kT0 + 9 * kSec;
    segment.end = kT0 + 19 * kSec;
    health.segmentWritten(segment);
    store::SegmentStore::Usage usage;
    usage.bytes = 1234;
    usage.segments = 1;
    usage.daysCapacityHolds = 13.5;
    health.setStorage(usage);
    health.setState("recording");
    health.write({100, 99, 1, 2}, kT0 + 20 * kSec);

    json doc = json::parse(common::readFile(file));
    CHECK(doc["camera_id"] == "cam-1");
    CHECK(doc["state"] == "recording");
    CHECK(doc["frames"]["in"] == 100);
    CHECK(doc["frames"]["out"] == 99);
    CHECK(doc["frames"]["dropped"] == 3);
    CHECK(doc["segments"]["written"] == 1);
    CHECK(doc["segments"]["recorded_seconds"] == 10.0);
    REQUIRE(doc["gaps"].size() == 1);
    CHECK(doc["gaps"][0]["reason"] == "source lost: device gone");
    CHECK(*common::parseUtc(doc["gaps"][0]["end"].get<std::string>()) == kT0 + 9 * kSec);
    CHECK(doc["storage"]["bytes"] == 1234);
    CHECK(doc["storage"]["days_capacity_holds"] == 13.5);
}

TEST_CASE("gaps survive a restart; a gap open at a crash ends at the last record") {
    auto file = freshFile();
    {
        recorder::Health first(file, "cam-1", kT0);
        first.openGap(kT0 + kSec, "source lost: rtsp down");
        first.closeGap(kT0 + 3 * kSec);
        first.openGap(kT0 + 50 * kSec, "source lost: unplugged");
        first.write({}, kT0 + 60 * kSec);  // then the process dies with the gap open
    }
    recorder::Health second(file, "cam-1", kT0 + 100 * kSec);
    auto gaps = second.gaps();
    REQUIRE(gaps.size() == 2);
    CHECK(gaps[0].end == kT0 + 3 * kSec);
    CHECK(gaps[1].reason == "source lost: unplugged");
    CHECK(gaps[1].end == kT0 + 60 * kSec);
    CHECK(!second.gapOpen());
}

TEST_CASE("a corrupt previous record does not stop the recorder") {
    auto file = freshFile();
    common::writeFileAtomic(file, "{ not json");
    recorder::Health health(file, "cam-1", kT0);
    CHECK(health.gaps().empty());
    health.write({}, kT0);
    CHECK(json::parse(common::readFile(file))["gaps"].empty());
}

TEST_CASE("gaps known whole go in time order before an open gap; a settled gap ends where writing resumed") {
    auto file = freshFile();
    recorder::Health health(file, "cam-1", kT0);
    health.addGap(kT0 + 20 * kSec, kT0 + 21 * kSec, "storage too slow: 9 frames dropped");
    health.openGap(kT0 + 30 * kSec, "write failed: Too many open files");
    // A source restart closed it early; the writer settles it where writes came back.
    health.closeGap(kT0 + 31 * kSec);
    health.settleGap(kT0 + 30 * kSec, kT0 + 36 * kSec, "write failed: Too many open files");
    health.openGap(kT0 + 50 * kSec, "source lost: gone");
    health.addGap(kT0 + 10 * kSec, kT0 + 12 * kSec, "storage too slow: 3 frames dropped");
    // Not open, not there: settled as a whole gap.
    health.settleGap(kT0 + 40 * kSec, kT0 + 41 * kSec, "write failed: No space left on device");
    const auto gaps = health.gaps();
    REQUIRE(gaps.size() == 5);
    CHECK(gaps[0].start == kT0 + 10 * kSec);
    CHECK(gaps[1].start == kT0 + 20 * kSec);
    CHECK(gaps[2].end == kT0 + 36 * kSec);
    CHECK(gaps[3].reason == "write failed: No space left on device");
    CHECK(gaps[4].reason == "source lost: gone");
    CHECK(!gaps[4].end);
    CHECK(health.gapOpen());
}

TEST_CASE("the key ratchet's state is in the record: ok, or failing with since when and why") {
    auto file = freshFile();
    recorder::Health health(file, "cam-1", kT0);
    health.write({}, kT0);
    CHECK(!json::parse(common::readFile(file)).contains("key_ratchet"));  // no enforcement yet
    const std::int64_t day = kT0 / common::kMicrosPerDay;
    health.setKeyRatchet({true, day - 14, day - 12, kT0 + kSec, "day.key.tmp: No space left on device"});
    health.write({}, kT0 + 2 * kSec);
    json doc = json::parse(common::readFile(file));
    CHECK(doc["key_ratchet"]["state"] == "failing");
    CHECK(doc["key_ratchet"]["day"] == common::formatUtc((day - 14) * common::kMicrosPerDay).substr(0, 10));
    CHECK(doc["key_ratchet"]["target_day"] == common::formatUtc((day - 12) * common::kMicrosPerDay).substr(0, 10));
    CHECK(*common::parseUtc(doc["key_ratchet"]["failing_since"].get<std::string>()) == kT0 + kSec);
    CHECK(doc["key_ratchet"]["error"] == "day.key.tmp: No space left on device");
    health.setKeyRatchet({false, day - 12, day - 12, std::nullopt, ""});
    health.write({}, kT0 + 3 * kSec);
    doc = json::parse(common::readFile(file));
    CHECK(doc["key_ratchet"]["state"] == "ok");
    CHECK(doc["key_ratchet"]["error"].is_null());
    CHECK(doc["key_ratchet"]["failing_since"].is_null());
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// A log that lasts: a simulated year of a full ring stays at a few audit entries a day, spans
// two fiscal-year files as one chain, and reopens in constant time (issue 11 item 1).
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/shred_tally.hpp"

#include "store_test_util.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

using namespace mimamori;
using common::kMicrosPerDay;
using common::kMicrosPerSecond;
namespace fs = std::filesystem;

namespace {

// One retention run of a full ring: `count` segments of key day `day` deleted.
store::SegmentStore::Enforcement run(std::int64_t day, int count, std::int64_t keyDay, int keyAdvances) {
    store::SegmentStore::Enforcement r;
    for (int i = 0; i < count; ++i) {
        store::SegmentInfo s;
        s.keyDay = day;
        s.bytesOnDisk = 1000;
        r.deleted.push_back(s);
    }
    r.reason = count ? "byte limit" : "";
    r.keyDay = keyDay;
    r.keyAdvances = keyAdvances;
    return r;
}

}  // namespace

TEST_CASE("the shred tally reports each shredded day once, with what was deleted of it, across restarts") {
    store::testing::TempDir dir;
    common::ManualClock clock(*common::parseUtc("2026-11-24T00:00:00Z"));
    const std::int64_t today = store::dayIndex(clock.nowUtc());
    {
        store::ShredTally tally(dir.path() / "tally", clock);
        CHECK(tally.add(run(today - 14, 5, today - 14, 0)).empty());
        CHECK(tally.add(run(today - 14, 3, today - 14, 0)).empty());
        tally.save();  // as the recorder does when it stops
    }
    store::ShredTally tally(dir.path() / "tally", clock);
    auto r = run(today - 13, 2, today - 13, 1);
    r.reason = "retention";
    const auto shredded = tally.add(r);
    REQUIRE(shredded.size() == 1);
    CHECK(shredded[0].day == today - 14);
    CHECK(shredded[0].segments == 8);
    CHECK(shredded[0].bytes == 8000);
    CHECK(shredded[0].reasons == "byte limit");
    CHECK(store::ShredTally::dayText(shredded[0].day) == "2026-11-10");
    // Three days at once (after a downtime): one entry each, the counted day with its count.
    const auto later = tally.add(run(today - 13, 0, today - 10, 3));
    REQUIRE(later.size() == 3);
    CHECK(later[0].day == today - 13);
    CHECK(later[0].segments == 2);
    CHECK(later[0].reasons == "retention");
    CHECK(later[1].segments == 0);
    CHECK(later[2].day == today - 11);
}

TEST_CASE("a simulated year of steady state stays within a few entries a day, in fiscal-year files, and opens in "
          "constant time") {
    store::testing::TempDir dir;
    const policy::SecretKey camera = policy::generateKey(policy::Role::Camera, "cam");
    // From the middle of FY2025 across 2026-03-31T15:00Z (the first instant of FY2026 in JST).
    common::ManualClock clock(*common::parseUtc("2026-01-10T00:00:00Z"));
    const fs::path logDir = dir.path() / "audit";
    constexpr int kDays = 365;
    constexpr int kRunsPerDay = 288;  // a retention run every 5 minutes (the daemon: every 30 s)
    std::map<std::string, int> perDay;
    {
        policy::AuditLog log(logDir, camera, clock);
        store::ShredTally tally(dir.path() / "tally", clock, kMicrosPerDay);
        for (int d = 0; d < kDays; ++d) {
            const std::int64_t day = store::dayIndex(clock.nowUtc());
            for (int i = 0; i < kRunsPerDay; ++i) {
                // The ring is full: every run deletes the oldest footage; the first run of a day
                // shreds the key of the day 14 days back, whose footage is then all gone.
                const auto shredded = tally.add(run(day - 13, 10, day - 13, i == 0 ? 1 : 0));
                for (const auto& s : shredded) {
                    CHECK(s.segments == (d == 0 ? 0u : 10u * kRunsPerDay));
                    log.append(policy::audit::kDayShredded, {{"day", store::ShredTally::dayText(s.day)},
                                                             {"segments", static_cast<std::int64_t>(s.segments)},
                                                             {"bytes", static_cast<std::int64_t>(s.bytes)},
                                                             {"reasons", s.reasons}});
                }
                if (!shredded.empty()) tally.save();
                clock.advance(300 * kMicrosPerSecond);
            }
            if (d % 7 == 3) {  // a police request a week, refused or granted
                log.append(policy::audit::kRequestReceived, {{"request_id", fmt::format("r{}", d)}});
                log.append(policy::audit::kRequestRefused, {{"request_id", fmt::format("r{}", d)},
                                                            {"reason", std::string("expired")}});
            }
            if (d % 30 == 11) log.append(policy::audit::kRecordingGap, {{"reason", std::string("source lost")}});
            // The city collects once a day: a checkpoint and the collection's own entry.
            (void)log.checkpoint();
            log.append(policy::audit::kLogsCollected, {{"city_key", std::string("kakogawa-city")}});
        }
    }
    const auto entries = policy::readAuditLog(logDir);
    for (const auto& e : entries) ++perDay[common::formatUtc(e.time).substr(0, 10)];
    const int most = std::max_element(perDay.begin(), perDay.end(), [](auto& a, auto& b) {
                         return a.second < b.second;
                     })->second;
    INFO("entries: " << entries.size() << " over " << perDay.size() << " days");
    CHECK(entries.size() <= 5 * kDays);  // a full ring used to write 2,880 a day
    CHECK(most <= 8);                    // the busiest day: a request, a gap, the daily ones
    CHECK(perDay.size() >= kDays);

    // Two files, one chain: FY2025 ends with a signed checkpoint; FY2026 goes on from its hash.
    const auto files = policy::auditLogFiles(logDir);
    REQUIRE(files.size() == 2);
    CHECK(files[0].filename() == "audit-FY2025.log");
    CHECK(files[1].filename() == "audit-FY2026.log");
    const auto first = policy::readAuditLog(files[0]);
    const auto second = policy::readAuditLog(files[1]);
    CHECK(first.back().type == "checkpoint");
    CHECK(second.front().seq == first.back().seq + 1);
    CHECK(second.front().line.find(policy::blake2b256Hex(first.back().line)) != std::string::npos);
    CHECK(policy::fiscalYearOf(second.front().time) == 2026);
    const auto verified = policy::verifyAuditLog(logDir, camera.publicKey().signKey);
    CHECK_MESSAGE(verified.ok, verified.reason);
    CHECK(policy::verifyAuditLog(files[1], camera.publicKey().signKey).ok);  // a year's file alone

    // Reopening reads the recorded checkpoint and what follows it, not the year behind it.
    const auto openStart = std::chrono::steady_clock::now();
    policy::AuditLog reopened(logDir, camera, clock);
    const auto openMicros =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - openStart).count();
    CHECK(reopened.recovery().entries == entries.size());
    CHECK(reopened.recovery().linesVerified <= 2);
    std::uintmax_t bytes = 0;
    for (const auto& f : files) bytes += fs::file_size(f);
    MESSAGE(fmt::format("a simulated year: {} entries ({:.1f} a day, at most {} on one day), {} bytes in {} files; "
                        "reopened reading {} line(s) in {} us",
                        entries.size(), static_cast<double>(entries.size()) / kDays, most, bytes, files.size(),
                        reopened.recovery().linesVerified, openMicros));
}

TEST_CASE("fiscal years follow JST: 2026-03-31T15:00Z is the first instant of FY2026") {
    CHECK(policy::fiscalYearOf(*common::parseUtc("2026-03-31T14:59:59.999999Z")) == 2025);
    CHECK(policy::fiscalYearOf(*common::parseUtc("2026-03-31T15:00:00Z")) == 2026);
    CHECK(policy::fiscalYearOf(*common::parseUtc("2027-03-31T14:59:59Z")) == 2026);
    CHECK(policy::fiscalYearOf(*common::parseUtc("2026-01-01T00:00:00+09:00")) == 2025);
    CHECK(policy::auditFileName(2026) == "audit-FY2026.log");
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// city/: fiscal-year and era boundaries, the archive (verified before stored, never rewritten,
// cut-back logs flagged) and the report's figures for a synthetic fleet with known events.
#include "mimamori/city/archive.hpp"
#include "mimamori/city/fiscal_year.hpp"
#include "mimamori/city/fleet.hpp"
#include "mimamori/city/report.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"

#include "../policy/test_support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace {

using namespace mimamori;
using common::UtcMicros;
using policy::AuditFields;
using policy::test::TempDir;

UtcMicros at(const char* text) { return common::parseUtc(text).value(); }

std::string slurp(const std::filesystem::path& p) { return common::readFile(p); }

// The lines of `log` (a log's directory: its fiscal-year files in order) after entry `seq`
// (what the camera's route answers).
std::string linesAfter(const std::filesystem::path& log, std::uint64_t seq) {
    std::string text;
    for (const auto& e : policy::readAuditLog(log))
        if (e.seq > seq) text += e.line + "\n";
    return text;
}

// A camera writing its real audit log (policy::AuditLog) on a clock the test sets.
class Camera {
public:
    Camera(const TempDir& dir, std::string id, const policy::SecretKey* key = nullptr)
        : id_(std::move(id)), own_(key ? nullptr : std::make_unique<policy::SecretKey>(policy::generateKey(policy::Role::Camera, id_))),
          key_(key ? *key : *own_), clock_(at("2025-04-01T00:00:00Z")), log_(dir / (id_ + ".log")) {
        open();
    }
    void open() { audit_ = std::make_unique<policy::AuditLog>(log_, key_, clock_); }
    void write(const char* time, std::string_view type, const AuditFields& fields = {}) {
        clock_.stepWall(at(time) - clock_.nowUtc());
        audit_->append(type, fields);
    }
    policy::AuditCheckpoint checkpoint(const char* time) {
        clock_.stepWall(at(time) - clock_.nowUtc());
        return audit_->checkpoint();
    }
    // Collects everything after the archive's end, as `fleet collect` does.
    city::IngestResult collectInto(city::CameraArchive& archive, const policy::AuditCheckpoint& cp, UtcMicros now) {
        REQUIRE(archive.adoptKey(key_.publicKey()).empty());
        return archive.ingest(linesAfter(log_, archive.end().seq), cp, now);
    }
    // Starts the log again from nothing with the same key (a log cut back to zero and re-extended).
    void wipe() {
        audit_.reset();
        std::filesystem::remove_all(log_);
        open();
    }
    const policy::SecretKey& key() const { return key_; }
    const std::filesystem::path& log() const { return log_; }

private:
    std::string id_;
    std::unique_ptr<policy::SecretKey> own_;
    const policy::SecretKey& key_;
    common::ManualClock clock_;
    std::filesystem::path log_;
    std::unique_ptr<policy::AuditLog> audit_;
};

AuditFields granted(const char* ground, const char* body) {
    return {{"request_id", std::string("r")}, {"ground", std::string(ground)}, {"body", std::string(body)}};
}
AuditFields refused(const char* reason) { return {{"request_id", std::string("r")}, {"reason", std::string(reason)}}; }

}  // namespace

TEST_CASE("fiscal years follow JST and carry the era label of their April") {
    CHECK(city::fiscalYearOf(at("2026-03-31T15:30:00Z")) == 2026);  // 2026-04-01 00:30 JST
    CHECK(city::fiscalYearOf(at("2026-03-31T14:59:59.999999Z")) == 2025);
    CHECK(city::fiscalYearOf(at("2026-03-31T15:00:00Z")) == 2026);
    CHECK(city::fiscalYearOf(at("2025-04-01T00:00:00+09:00")) == 2025);
    CHECK(city::fiscalYearOf(at("2025-12-31T23:00:00Z")) == 2025);
    CHECK(city::fiscalYearRange(2025).begin == at("2025-03-31T15:00:00Z"));
    CHECK(city::fiscalYearRange(2025).end == at("2026-03-31T15:00:00Z"));
    CHECK(city::fiscalMonthOf(at("2025-03-31T15:00:00Z")) == 0);   // April, JST
    CHECK(city::fiscalMonthOf(at("2026-03-31T14:59:00Z")) == 11);  // March
    CHECK(city::fiscalMonthOf(at("2025-12-31T15:00:00Z")) == 9);   // 2026-01-01 JST: January
    CHECK(city::jstDay(at("2025-12-31T15:00:00Z")) == "2026-01-01");

    CHECK(city::eraLabel(2025, city::Lang::Ja) == "令和7年度");
    CHECK(city::eraLabel(2020, city::Lang::Ja) == "令和2年度");
    CHECK(city::eraLabel(2019, city::Lang::Ja) == "平成31年度／令和元年度");
    CHECK(city::eraLabel(2018, city::Lang::Ja) == "平成30年度");
    CHECK(city::eraLabel(1989, city::Lang::Ja) == "平成元年度");
    CHECK(city::eraLabel(1988, city::Lang::Ja) == "昭和63年度／平成元年度");
    CHECK(city::eraLabel(2025, city::Lang::En) == "FY2025 (Reiwa 7)");
    CHECK(city::eraLabel(2019, city::Lang::En) == "FY2019 (Heisei 31 / Reiwa 1)");
}

TEST_CASE("collect stores each verified line once, in the fiscal-year file of its time, and only signed lines") {
    TempDir dir;
    Camera cam(dir, "kakogawa-0001");
    city::CameraArchive archive(dir / "archive", "kakogawa-0001");
    cam.write("2026-03-31T14:00:00Z", "daemon_start", {{"retention_days", std::int64_t{12}}});
    cam.write("2026-03-31T14:59:59Z", "request_granted", granted("law", "court"));
    const auto cp1 = cam.checkpoint("2026-03-31T14:59:59Z");
    cam.write("2026-03-31T15:00:00Z", "mask_changed");  // FY2026 in JST
    const auto cp2 = cam.checkpoint("2026-03-31T15:00:01Z");
    cam.write("2026-03-31T16:00:00Z", "request_refused", refused("expired"));  // not yet signed

    auto first = cam.collectInto(archive, cp2, at("2026-04-01T00:00:00Z"));
    CHECK(first.problem.empty());
    CHECK(first.stored == 5);
    CHECK(first.unsignedTail == 1);
    const auto fy25 = archive.dir() / "audit" / "audit-FY2025.log";
    const auto fy26 = archive.dir() / "audit" / "audit-FY2026.log";
    const std::string log = linesAfter(cam.log(), 0);
    // The archive holds the camera's bytes, split at the fiscal year: nothing re-serialised.
    CHECK(slurp(fy25) + slurp(fy26) == log.substr(0, log.rfind('\n', log.size() - 2) + 1));
    CHECK(slurp(fy25) == linesAfter(cam.log(), 0).substr(0, slurp(fy25).size()));
    CHECK(archive.end().seq == cp2.seq);
    CHECK(archive.end().hash == cp2.lineHash);
    (void)cp1;

    SUBCASE("collecting again stores nothing twice") {
        const auto again = cam.collectInto(archive, cp2, at("2026-04-01T01:00:00Z"));
        CHECK(again.problem.empty());
        CHECK(again.stored == 0);
        CHECK(again.unsignedTail == 1);
        CHECK(slurp(fy25) + slurp(fy26) == log.substr(0, log.rfind('\n', log.size() - 2) + 1));
        const auto cp3 = cam.checkpoint("2026-04-01T02:00:00Z");
        const auto third = cam.collectInto(archive, cp3, at("2026-04-01T03:00:00Z"));
        CHECK(third.stored == 2);
        CHECK(slurp(fy25) + slurp(fy26) == linesAfter(cam.log(), 0));
    }
    SUBCASE("a line altered in transit is refused and nothing is stored") {
        cam.checkpoint("2026-04-01T02:00:00Z");
        std::string lines = linesAfter(cam.log(), archive.end().seq);
        lines[lines.find("expired")] = 'E';
        const auto before = slurp(fy26);
        const auto bad = archive.ingest(lines, cp2, at("2026-04-01T03:00:00Z"));
        CHECK_FALSE(bad.problem.empty());
        CHECK(bad.stored == 0);
        CHECK(slurp(fy26) == before);
    }
}

TEST_CASE("a camera log cut back and re-extended is flagged and the archive keeps its old lines") {
    TempDir dir;
    Camera cam(dir, "kakogawa-0002");
    city::CameraArchive archive(dir / "archive", "kakogawa-0002");
    for (int i = 0; i < 10; ++i) cam.write("2025-06-01T00:00:00Z", "request_granted", granted("law", "court"));
    const auto cp = cam.checkpoint("2025-06-01T00:00:01Z");
    REQUIRE(cam.collectInto(archive, cp, at("2025-06-02T00:00:00Z")).problem.empty());
    const auto file = archive.dir() / "audit" / "audit-FY2025.log";
    const std::string kept = slurp(file);

    SUBCASE("re-extended past the archive") {
        cam.wipe();  // someone with root removed the log and its state file; the camera starts again
        for (int i = 0; i < 14; ++i) cam.write("2025-06-03T00:00:00Z", "daemon_start");
        const auto cp2 = cam.checkpoint("2025-06-03T00:00:01Z");
        REQUIRE(cp2.seq > cp.seq);
        const auto result = cam.collectInto(archive, cp2, at("2025-06-04T00:00:00Z"));
        CHECK(result.problem.find("no longer extends the archive") != std::string::npos);
        CHECK(result.stored == 0);
    }
    SUBCASE("cut back behind the archive") {
        cam.wipe();
        cam.write("2025-06-03T00:00:00Z", "daemon_start");
        const auto cp2 = cam.checkpoint("2025-06-03T00:00:01Z");
        const auto result = cam.collectInto(archive, cp2, at("2025-06-04T00:00:00Z"));
        CHECK(result.problem.find("cut back") != std::string::npos);
    }
    SUBCASE("rewritten to the same length") {
        cam.wipe();
        for (int i = 0; i < 10; ++i) cam.write("2025-06-01T00:00:00Z", "request_granted", granted("law", "other"));
        const auto cp2 = cam.checkpoint("2025-06-01T00:00:01Z");
        REQUIRE(cp2.seq == cp.seq);
        const auto result = cam.collectInto(archive, cp2, at("2025-06-04T00:00:00Z"));
        CHECK(result.problem.find("rewritten") != std::string::npos);
    }
    CHECK(slurp(file) == kept);
    CHECK(slurp(archive.dir() / "problems").find("2025-06-04T00:00:00Z ") == 0);

    // The report names the camera and marks its figures.
    const auto report = city::computeReport(dir / "archive", 2025);
    REQUIRE(report.cameras.size() == 1);
    CHECK(report.cameras[0].broken);
    CHECK(report.cameras[0].provisions[0] == 10);
    CHECK(city::renderHtml(report, city::Lang::Ja).find("class=\"marked\"") != std::string::npos);
}

TEST_CASE("a replaced camera key is refused and the archive keeps the old one") {
    TempDir dir;
    city::CameraArchive archive(dir / "archive", "kakogawa-0003");
    const auto oldKey = policy::generateKey(policy::Role::Camera, "kakogawa-0003");
    const auto newKey = policy::generateKey(policy::Role::Camera, "kakogawa-0003");
    CHECK(archive.adoptKey(oldKey.publicKey()).empty());
    CHECK(archive.adoptKey(oldKey.publicKey()).empty());
    CHECK(archive.adoptKey(newKey.publicKey()).find("replaced") != std::string::npos);
    CHECK(archive.key().signKey == oldKey.publicKey().signKey);
    CHECK_THROWS_AS(city::CameraArchive(dir / "archive", "../etc"), city::ArchiveError);
}

TEST_CASE("the report's figures equal a synthetic fleet's known events, in all three files") {
    TempDir dir;
    const auto archiveDir = dir / "archive";
    const UtcMicros now = at("2026-04-02T00:00:00Z");
    {
        Camera a(dir, "cam-a");
        a.write("2025-03-31T14:00:00Z", "request_granted", granted("law", "FY2024 court"));  // FY2024: not counted
        a.write("2025-04-01T00:00:00Z", "daemon_start", {{"retention_days", std::int64_t{12}}});
        a.write("2025-05-10T03:00:00Z", "request_granted", granted("criminal-investigation", "兵庫県警察加古川警察署"));
        a.write("2025-05-10T03:05:00Z", "extract_delivered",
                {{"bytes", std::int64_t{1000}}, {"actual_from", std::string("2025-05-09T00:00:00Z")},
                 {"actual_to", std::string("2025-05-09T00:00:10Z")}});
        a.write("2026-01-15T03:00:00Z", "request_granted", granted("emergency", "兵庫県警察加古川警察署"));
        a.write("2025-06-01T00:00:00Z", "request_refused", refused("disclosure_request"));
        a.write("2025-06-02T00:00:00Z", "request_refused", refused("expired"));
        a.write("2025-07-01T00:00:00Z", "mask_changed", {{"masks", std::int64_t{3}}});
        a.write("2025-08-13T12:00:00Z", "retention_deleted", {{"from", std::string("2025-08-01T00:00:00Z")}});
        for (const char* t : {"2025-08-02T00:00:00Z", "2025-08-03T00:00:00Z", "2025-08-04T00:00:00Z"})
            a.write(t, "key_advanced", {{"advances", std::int64_t{1}}});
        a.write("2025-09-01T00:00:00Z", "recording_gap",
                {{"start", std::string("2025-09-01T00:00:00Z")}, {"reason", std::string("storage too slow")},
                 {"end", std::string("2025-09-01T01:00:00Z")}});
        a.write("2025-10-05T00:10:00Z", "day_shredded",
                {{"day", std::string("2025-09-22")}, {"segments", std::int64_t{8640}}, {"bytes", std::int64_t{1} << 30},
                 {"reasons", std::string("retention")}});
        a.write("2025-11-01T00:00:00Z", "mask_review_still", {{"form", std::string("unmasked")}});
        a.write("2026-03-31T15:30:00Z", "request_granted", granted("law", "FY2026 court"));  // FY2026
        city::CameraArchive archive(archiveDir, "cam-a");
        REQUIRE(a.collectInto(archive, a.checkpoint("2026-03-31T15:31:00Z"), now).problem.empty());
    }
    {
        Camera b(dir, "cam-b");
        b.write("2025-04-01T00:00:00Z", "daemon_start", {{"retention_days", std::int64_t{12}}});
        b.write("2025-10-01T00:00:00Z", "request_granted", granted("law", "神戸地方検察庁"));
        b.write("2025-10-02T00:00:00Z", "request_refused", refused("unknown_police_key"));
        b.write("2025-10-03T00:00:00Z", "request_refused", refused("unknown_police_key"));
        b.write("2025-11-01T00:00:00Z", "recording_gap",
                {{"start", std::string("2025-11-01T00:00:00Z")}, {"reason", std::string("source lost: cable")}});
        const auto cp = b.checkpoint("2026-03-31T14:00:00Z");
        city::CameraArchive archive(archiveDir, "cam-b");
        REQUIRE(b.collectInto(archive, cp, now).problem.empty());
        // The gap's end is known only from the health record.
        archive.storeHealth(R"({"format":"mimamori-health-1","gaps":[{"start":"2025-11-01T00:00:00Z","end":"2025-11-01T02:00:00Z","reason":"source lost: cable"}]})",
                            now);
    }
    {
        Camera c(dir, "cam-c");
        c.write("2025-04-01T00:00:00Z", "daemon_start");
        c.write("2025-04-02T00:00:00Z", "request_granted", granted("law", "court"));
        c.write("2025-04-03T00:00:00Z", "mask_changed");
        city::CameraArchive archive(archiveDir, "cam-c");
        REQUIRE(c.collectInto(archive, c.checkpoint("2026-03-31T14:00:00Z"), now).problem.empty());
        // The archive itself edited afterwards: the report's own chain check finds it.
        const auto file = archive.dir() / "audit" / "audit-FY2025.log";
        std::string text = slurp(file);
        text[text.find("\"law\"") + 1] = 'L';
        common::writeFileAtomic(file, text);
    }

    const auto report = city::computeReport(archiveDir, 2025);
    REQUIRE(report.cameras.size() == 3);
    const auto& a = report.cameras[0];
    const auto& b = report.cameras[1];
    const auto& c = report.cameras[2];
    CHECK(a.id == "cam-a");
    CHECK_FALSE(a.broken);
    CHECK(a.chainStatus == "ok");
    CHECK(a.provisions == std::array<std::uint64_t, 3>{0, 1, 1});
    CHECK(a.extracts == 1);
    CHECK(a.extractSeconds == 10);
    CHECK(a.extractBytes == 1000);
    CHECK(a.refusals.at("disclosure_request") == 1);
    CHECK(a.refusals.at("expired") == 1);
    CHECK(a.maskChanges == 1);
    CHECK(a.oldestHeldSeconds == 13 * 86400 + 10 * 60);  // the day_shredded of 2025-09-22 on 10-05, 00:10
    CHECK(a.maskReviews == 1);
    CHECK(a.retentionDays == 12);
    CHECK(a.daysShredded == 4);  // three key_advanced (older cameras) and one day_shredded
    CHECK(a.gapSeconds == 3600);
    // cam-a has a FY2024 file: in operation from the year's first instant; cam-b from its first entry.
    CHECK(a.operatingFrom == city::fiscalYearRange(2025).begin);
    CHECK(a.operatingTo == city::fiscalYearRange(2025).end);
    CHECK(b.operatingFrom == at("2025-04-01T00:00:00Z"));
    CHECK(b.operatingTo == at("2026-03-31T14:00:00Z"));
    CHECK(b.provisions == std::array<std::uint64_t, 3>{1, 0, 0});
    CHECK(b.refusals.at("unknown_police_key") == 2);
    CHECK(b.gapSeconds == 7200);
    CHECK(b.gaps.at(0).endKnown);
    CHECK(c.broken);
    CHECK(c.chainStatus.find("chain breaks") != std::string::npos);

    const auto json = nlohmann::json::parse(city::renderJson(report, city::Lang::Ja));
    CHECK(json["label"] == "令和7年度");
    CHECK(json["cameras_in_operation"] == 3);
    CHECK(json["cameras_marked"] == nlohmann::json::array({"cam-c"}));
    CHECK(json["provisions"]["by_ground"]["law"] == 1);  // cam-c's grant is after its break: not counted
    CHECK(json["provisions"]["by_ground"]["emergency"] == 1);
    CHECK(json["provisions"]["by_ground"]["criminal-investigation"] == 1);
    CHECK(json["provisions"]["by_body"]["兵庫県警察加古川警察署"] == 2);
    CHECK(json["provisions"]["by_month"][1]["criminal-investigation"] == 1);  // May
    CHECK(json["provisions"]["by_month"][9]["emergency"] == 1);               // January
    CHECK(json["provisions"]["by_month"][6]["law"] == 1);                     // October
    CHECK(json["refusals"]["disclosure"] == 1);
    CHECK(json["refusals"]["by_reason"]["unknown_police_key"] == 2);
    CHECK(json["refusals"]["by_reason"].contains("disclosure_request") == false);
    CHECK(json["extracts"]["bytes"] == 1000);
    CHECK(json["retention"]["days_shredded"] == 4);
    CHECK(json["mask_reviews"] == 1);
    CHECK(json["retention"]["oldest_held_camera"] == "cam-a");
    // cam-a's year is signed by the checkpoint that closes its FY2025 file (seq 16, written as the
    // log moved on to FY2026): the verification names that one.
    INFO(json["cameras"][0]["last_checkpoint"].get<std::string>());
    CHECK(json["cameras"][0]["last_checkpoint"].get<std::string>().starts_with("16:"));
    CHECK(json["cameras"][1]["last_checkpoint"].get<std::string>().starts_with("6:"));

    const std::string csv = city::renderCsv(report, city::Lang::Ja);
    CHECK(csv.find("provisions,\"\",\"law\",\"1\"\n") != std::string::npos);
    CHECK(csv.find("refusals,\"\",\"disclosure\",\"1\"\n") != std::string::npos);
    CHECK(csv.find("summary,\"cam-c\",\"marked\",\"1\"\n") != std::string::npos);
    const std::string html = city::renderHtml(report, city::Lang::En);
    CHECK(html.find("FY2025 (Reiwa 7)") != std::string::npos);
    CHECK(html.find("data-month=\"2026-01\" data-ground=\"emergency\" data-count=\"1\"") != std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
}

TEST_CASE("FLEET.json: cameras with id, URL and key file; every finding named") {
    const auto fleet = city::parseFleet(
        R"({"format":"mimamori-fleet-1","cameras":[{"id":"kakogawa-0001","url":"https://10.20.1.1:8443","key":"keys/kakogawa-0001.pub"}]})",
        "/etc/mimamori");
    REQUIRE(fleet.size() == 1);
    CHECK(fleet[0].id == "kakogawa-0001");
    CHECK(fleet[0].url == "https://10.20.1.1:8443");
    CHECK(fleet[0].keyFile == "/etc/mimamori/keys/kakogawa-0001.pub");
    try {
        (void)city::parseFleet(R"({"format":"mimamori-fleet-1","cameras":[{"id":"../x","url":"ftp://a","key":"k"},)"
                               R"({"id":"a","url":"http://b","key":"k"},{"id":"a","url":"http://b","key":"k","extra":1}]})",
                               ".");
        FAIL("accepted");
    } catch (const std::invalid_argument& e) {
        const std::string message = e.what();
        CHECK(message.find("cameras[0].id: not a camera id") != std::string::npos);
        CHECK(message.find("cameras[0].url: not an http:// or https:// URL") != std::string::npos);
        CHECK(message.find("cameras[2].id: 'a' is listed twice") != std::string::npos);
        CHECK(message.find("cameras[2].extra: unknown member") != std::string::npos);
    }
    CHECK_THROWS_AS((void)city::parseFleet("[]", "."), std::invalid_argument);
    CHECK_THROWS_AS((void)city::parseFleet(R"({"format":"mimamori-fleet-1","cameras":[]})", "."), std::invalid_argument);
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The audit log: chain and checkpoints catch every edit, deletion, insertion, reordering and cut.
#include "mimamori/policy/audit_log.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

using namespace mimamori::policy;
using mimamori::common::kMicrosPerSecond;
using mimamori::common::ManualClock;
using mimamori::common::readFile;
using mimamori::common::writeFileAtomic;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> linesOf(const fs::path& p) {
    const std::string text = readFile(p);
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto nl = text.find('\n', pos);
        REQUIRE(nl != std::string::npos);
        out.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

void writeLines(const fs::path& p, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    writeFileAtomic(p, text);
}

bool isCheckpoint(const std::string& line) { return line.find("\"type\":\"checkpoint\"") != std::string::npos; }

// A closed log of 10 entries with a checkpoint after every 4: lines 5, 10 and 13 are checkpoints.
struct LogFixture {
    test::TempDir dir;
    SecretKey camera = generateKey(Role::Camera, "cam");
    ManualClock clock{*mimamori::common::parseUtc("2026-11-24T12:00:00Z")};
    fs::path path = dir / "audit";                 // the log's directory
    fs::path file = path / "audit-FY2026.log";    // its one file (2026-11-24 is in FY2026)

    LogFixture() {
        AuditLog log(path, camera, clock, AuditOptions{4, {}, {}});
        log.append(audit::kDaemonStart, {{"version", std::string("0.1.0")}});
        for (int i = 0; i < 9; ++i) {
            clock.advance(kMicrosPerSecond);
            log.append(audit::kRequestRefused, {{"request_id", fmt::format("r{}", i)}, {"reason", std::string("expired")}});
        }
        log.close();
    }

    AuditVerifyResult verifyNow(bool withState) const {
        std::optional<AuditCheckpoint> expected;
        if (withState) {
            std::string text = readFile(path / kAuditStateFile);
            expected = AuditCheckpoint::parse(text.substr(0, text.find('\n')));
            REQUIRE(expected);
        }
        return verifyAuditLog(path, camera.publicKey().signKey, expected);
    }
};

}  // namespace

TEST_CASE("a fresh log verifies, ends with a checkpoint, and checkpoints come every N entries") {
    LogFixture f;
    const auto lines = linesOf(f.file);
    REQUIRE(lines.size() == 13);
    CHECK(isCheckpoint(lines[4]));
    CHECK(isCheckpoint(lines[9]));
    CHECK(isCheckpoint(lines[12]));
    const auto r = f.verifyNow(true);
    CHECK_MESSAGE(r.ok, r.reason);
    CHECK(r.entries == 13);
    CHECK(r.endsWithCheckpoint);
    REQUIRE(r.lastCheckpoint);
    CHECK(r.lastCheckpoint->seq == 13);
    CHECK(lines[0].find("\"prev\":\"" + std::string(64, '0') + "\"") != std::string::npos);

    const auto entries = readAuditLog(f.path);
    REQUIRE(entries.size() == 13);
    CHECK(entries[0].type == "daemon_start");
    CHECK(entries[1].fieldsJson == R"({"request_id":"r0","reason":"expired"})");  // order kept
    CHECK(entries[1].time == entries[0].time + kMicrosPerSecond);
}

TEST_CASE("reopening continues the chain") {
    LogFixture f;
    {
        AuditLog log(f.path, f.camera, f.clock, AuditOptions{4, {}, {}});
        CHECK(log.lastSeq() == 13);
        CHECK(log.append(audit::kDaemonStart, {}) == 14);
    }
    const auto r = f.verifyNow(true);
    CHECK_MESSAGE(r.ok, r.reason);
    CHECK(r.entries == 15);
}

TEST_CASE("tampering is detected at the first entry it breaks") {
    LogFixture f;
    auto lines = linesOf(f.file);
    std::size_t expectedBadLine = 0;

    SUBCASE("edit of a field") {
        lines[2].replace(lines[2].find("expired"), 7, "granted");
        expectedBadLine = 4;  // the next line's prev no longer matches
    }
    SUBCASE("edit of the time") {
        lines[1].replace(lines[1].find("12:00:01Z"), 9, "12:00:02Z");
        expectedBadLine = 3;
    }
    SUBCASE("deletion") {
        lines.erase(lines.begin() + 2);
        expectedBadLine = 3;
    }
    SUBCASE("insertion of a copied line") {
        lines.insert(lines.begin() + 3, lines[2]);
        expectedBadLine = 4;
    }
    SUBCASE("reordering") {
        std::swap(lines[1], lines[2]);
        expectedBadLine = 2;
    }
    SUBCASE("edit with the whole chain re-hashed after it") {
        // The attacker recomputes every later prev; only the camera's signature stops them.
        lines[2].replace(lines[2].find("expired"), 7, "granted");
        for (std::size_t i = 3; i < lines.size(); ++i) {
            const auto at = lines[i].find("\"prev\":\"") + 8;
            lines[i].replace(at, 64, blake2b256Hex(lines[i - 1]));
        }
        expectedBadLine = 5;  // the first checkpoint after the edit
    }
    SUBCASE("a checkpoint's signature replaced") {
        const auto at = lines[4].find("\"signature\":\"") + 13;
        lines[4][at] = lines[4][at] == 'A' ? 'B' : 'A';
        expectedBadLine = 5;
    }
    writeLines(f.file, lines);
    const auto r = f.verifyNow(false);
    CHECK_FALSE(r.ok);
    CHECK(r.badLine == expectedBadLine);
    CHECK(r.badFile == f.file);
    CHECK_FALSE(r.reason.empty());
    // Verifying in full (no state file: a first start), the camera refuses to continue it.
    fs::remove(f.path / kAuditStateFile);
    CHECK_THROWS_AS(AuditLog(f.path, f.camera, f.clock), AuditError);
}

TEST_CASE("opening starts at the recorded checkpoint: a cut behind it or a changed checkpoint is refused") {
    LogFixture f;
    {
        AuditLog log(f.path, f.camera, f.clock, AuditOptions{4, {}, {}});
        CHECK(log.recovery().linesVerified == 1);  // the checkpoint line, and nothing after it
    }
    auto lines = linesOf(f.file);  // reopening and closing added nothing: the log ends with a checkpoint
    REQUIRE(lines.size() == 13);
    SUBCASE("cut back") {
        lines.resize(12);
        writeLines(f.file, lines);
        CHECK_THROWS_WITH_AS(AuditLog(f.path, f.camera, f.clock), doctest::Contains("cut back or rewritten"), AuditError);
    }
    SUBCASE("the checkpoint line edited in place") {
        const auto at = lines[12].find("\"signature\":\"") + 13;
        lines[12][at] = lines[12][at] == 'A' ? 'B' : 'A';
        writeLines(f.file, lines);
        CHECK_THROWS_WITH_AS(AuditLog(f.path, f.camera, f.clock), doctest::Contains("cut back or rewritten"), AuditError);
    }
    SUBCASE("a forged line after it") {
        lines.push_back(R"({"seq":14,"time":"2026-11-24T12:00:09Z","type":"daemon_stop","fields":{},"prev":")" +
                        std::string(64, 'a') + "\"}");
        writeLines(f.file, lines);
        CHECK_THROWS_WITH_AS(AuditLog(f.path, f.camera, f.clock), doctest::Contains("prev does not match"), AuditError);
    }
}

TEST_CASE("a new fiscal year starts a new file: the old one ends signed, the new one continues the chain") {
    test::TempDir dir;
    const SecretKey camera = generateKey(Role::Camera, "cam");
    ManualClock clock(*mimamori::common::parseUtc("2026-03-31T14:59:59Z"));  // 23:59:59 JST, FY2025
    {
        AuditLog log(dir / "audit", camera, clock);
        log.append(audit::kDaemonStart, {});
        clock.advance(kMicrosPerSecond);  // 2026-04-01T00:00:00 JST
        log.append(audit::kRequestReceived, {{"request_id", std::string("r1")}});
        CHECK(log.currentFile().filename() == "audit-FY2026.log");
    }
    const auto files = auditLogFiles(dir / "audit");
    REQUIRE(files.size() == 2);
    const auto old = linesOf(files[0]);
    const auto fresh = linesOf(files[1]);
    REQUIRE(old.size() == 2);
    CHECK(isCheckpoint(old[1]));
    CHECK(fresh[0].find("\"seq\":3,") != std::string::npos);
    CHECK(fresh[0].find("\"prev\":\"" + blake2b256Hex(old[1]) + "\"") != std::string::npos);
    const auto r = verifyAuditLog(dir / "audit", camera.publicKey().signKey);
    CHECK_MESSAGE(r.ok, r.reason);
    CHECK(r.entries == 4);
    // A year's file alone verifies from its first line; a cut in the middle of the chain does not.
    CHECK(verifyAuditLog(files[1], camera.publicKey().signKey).ok);
    fs::remove(files[0]);
    CHECK_FALSE(verifyAuditLog(dir / "audit", camera.publicKey().signKey).ok);
}

TEST_CASE("a single-file log of earlier versions is moved into the directory at start, unchanged, and continued") {
    test::TempDir dir;
    const SecretKey camera = generateKey(Role::Camera, "cam");
    ManualClock clock(*mimamori::common::parseUtc("2026-11-24T12:00:00Z"));
    // The old layout: state/audit.log and state/audit.log.checkpoint ("SEQ:HASH\n").
    {
        AuditLog log(dir / "build", camera, clock, AuditOptions{4, {}, {}});
        log.append(audit::kDaemonStart, {});
        log.append(audit::kRequestReceived, {{"request_id", std::string("r1")}});
    }
    fs::rename(dir / "build" / "audit-FY2026.log", dir / "audit.log");
    const std::string state = readFile(dir / "build" / kAuditStateFile);
    writeFileAtomic(dir / "audit.log.checkpoint", state.substr(0, state.find('\n') + 1));
    fs::remove_all(dir / "build");
    const std::string before = readFile(dir / "audit.log");

    SUBCASE("moved and continued") {
        {
            AuditLog log(dir / "audit", camera, clock, AuditOptions{4, {}, dir / "audit.log"});
            CHECK(log.recovery().migratedFrom == dir / "audit.log");
            CHECK(log.append(audit::kDaemonStop, {}) == 6);  // 3 old lines, audit_log_migrated, its checkpoint
        }
        CHECK_FALSE(fs::exists(dir / "audit.log"));
        CHECK_FALSE(fs::exists(dir / "audit.log.checkpoint"));
        const std::string after = readFile(dir / "audit" / "audit-FY2026.log");
        CHECK(after.starts_with(before));  // the old lines, byte for byte
        const auto entries = readAuditLog(dir / "audit");
        REQUIRE(entries.size() >= 4);
        CHECK(entries[3].type == "audit_log_migrated");
        CHECK(entries[3].fieldsJson == R"({"from":"audit.log","file":"audit-FY2026.log","entries":3})");
        const auto r = verifyAuditLog(dir / "audit", camera.publicKey().signKey);
        CHECK_MESSAGE(r.ok, r.reason);
        // The next start does not migrate again and starts at the recorded checkpoint.
        AuditLog again(dir / "audit", camera, clock, AuditOptions{4, {}, dir / "audit.log"});
        CHECK(again.recovery().migratedFrom.empty());
        CHECK(again.recovery().linesVerified == 1);
    }
    SUBCASE("a legacy log cut behind its recorded checkpoint is refused and left where it is") {
        auto lines = linesOf(dir / "audit.log");
        lines.resize(1);
        writeLines(dir / "audit.log", lines);
        CHECK_THROWS_WITH_AS(AuditLog(dir / "audit", camera, clock, AuditOptions{4, {}, dir / "audit.log"}),
                             doctest::Contains("truncated"), AuditError);
        CHECK(fs::exists(dir / "audit.log"));
        CHECK(auditLogFiles(dir / "audit").empty());
    }
}

TEST_CASE("truncation back past a checkpoint is detected with the recorded checkpoint") {
    LogFixture f;
    auto lines = linesOf(f.file);
    lines.resize(10);  // back to the second checkpoint: a valid-looking, shorter log
    writeLines(f.file, lines);
    // Without outside state the cut cannot be seen (docs/audit-log.md: the honest limit)...
    CHECK(f.verifyNow(false).ok);
    // ...with the checkpoint the camera (or an auditor) recorded, it is.
    const auto r = f.verifyNow(true);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("truncated") != std::string::npos);
    CHECK_THROWS_WITH_AS(AuditLog(f.path, f.camera, f.clock), doctest::Contains("cut back"), AuditError);
    fs::remove(f.file);
    CHECK_THROWS_WITH_AS(AuditLog(f.path, f.camera, f.clock), doctest::Contains("removed"), AuditError);
}

TEST_CASE("a checkpoint signed by another camera's key does not verify") {
    LogFixture f;
    const SecretKey other = generateKey(Role::Camera, "other");
    const auto r = verifyAuditLog(f.path, other.publicKey().signKey);
    CHECK_FALSE(r.ok);
    CHECK(r.badLine == 5);
}

TEST_CASE("a torn last line is set aside, cut, and recorded; the log then verifies") {
    LogFixture f;
    {
        AuditLog log(f.path, f.camera, f.clock, AuditOptions{4, {}, {}});
        log.append(audit::kRecordingGap, {{"seconds", std::int64_t{3}}});
        // No close(): the destructor would add a checkpoint; simulate the power cut instead
        // by writing a prefix of a line after this log is gone.
    }
    const std::string torn = R"({"seq":99,"time":"2026-11-24T12:00:)";
    {
        const int fd = ::open(f.file.c_str(), O_WRONLY | O_APPEND);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, torn.data(), torn.size()) == static_cast<ssize_t>(torn.size()));
        ::close(fd);
    }
    const auto before = verifyAuditLog(f.path, f.camera.publicKey().signKey);
    CHECK_FALSE(before.ok);
    CHECK(before.reason.find("torn") != std::string::npos);
    {
        AuditLog log(f.path, f.camera, f.clock, AuditOptions{4, {}, {}});
        CHECK(log.recovery().tornBytes == torn.size());
        CHECK(readFile(log.recovery().tornCopy) == torn);
    }
    const auto entries = readAuditLog(f.path);
    bool recorded = false;
    for (const auto& e : entries)
        if (e.type == "torn_tail_recovered") recorded = e.fieldsJson.find(std::to_string(torn.size())) != std::string::npos;
    CHECK(recorded);
    const auto r = f.verifyNow(true);
    CHECK_MESSAGE(r.ok, r.reason);
}

TEST_CASE("a complete garbage line is tampering, not a torn line, and a huge one does not exhaust memory") {
    LogFixture f;
    std::string text = readFile(f.file);
    writeFileAtomic(f.file, text + "not json\n");
    auto r = f.verifyNow(false);
    CHECK_FALSE(r.ok);
    CHECK(r.badLine == 14);
    CHECK_THROWS_AS(AuditLog(f.path, f.camera, f.clock), AuditError);

    writeFileAtomic(f.file, text + std::string(3 << 20, 'x'));  // 3 MiB, no newline
    r = f.verifyNow(false);
    CHECK_FALSE(r.ok);
    CHECK(r.badLine == 14);
    CHECK(r.reason.find("longer than") != std::string::npos);
    CHECK_THROWS_AS(AuditLog(f.path, f.camera, f.clock), AuditError);
}

TEST_CASE("appends from several threads form one valid chain") {
    test::TempDir dir;
    const SecretKey camera = generateKey(Role::Camera, "cam");
    ManualClock clock(0);
    {
        AuditLog log(dir / "audit.log", camera, clock, AuditOptions{7, {}, {}});
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&log, t] {
                for (int i = 0; i < 25; ++i) log.append(audit::kExtractDelivered, {{"thread", std::int64_t{t}}, {"i", std::int64_t{i}}});
            });
        for (auto& th : threads) th.join();
    }
    const auto r = verifyAuditLog(dir / "audit.log", camera.publicKey().signKey);
    CHECK_MESSAGE(r.ok, r.reason);
    std::size_t plain = 0, since = 0, maxSince = 0;
    for (const auto& e : readAuditLog(dir / "audit.log")) {
        if (e.type == "checkpoint") {
            since = 0;
        } else {
            ++plain;
            maxSince = std::max(maxSince, ++since);
        }
    }
    CHECK(plain == 100);
    CHECK(maxSince <= 7);
}

TEST_CASE("entry types and field names are checked, and reserved types refused") {
    test::TempDir dir;
    const SecretKey camera = generateKey(Role::Camera, "cam");
    ManualClock clock(0);
    AuditLog log(dir / "audit.log", camera, clock);
    CHECK_THROWS_AS(log.append("Bad Type", {}), std::invalid_argument);
    CHECK_THROWS_AS(log.append(audit::kCheckpoint, {}), std::invalid_argument);
    CHECK_THROWS_AS(log.append(audit::kMaskChanged, {{"a", std::string("x")}, {"a", std::string("y")}}), std::invalid_argument);
    CHECK(log.append(audit::kMaskChanged, {{"old_hash", std::string("aa")}, {"new_hash", std::string("bb")}, {"valid", true}}) == 1);
    log.close();
    CHECK_THROWS_AS(log.append(audit::kDaemonStop, {}), AuditError);
    const SecretKey police = generateKey(Role::Police, "p");
    CHECK_THROWS_AS(AuditLog(dir / "other.log", police, clock), AuditError);
}

TEST_CASE("verify enforces the field conventions of docs/audit-log.md, naming the line") {
    test::TempDir dir;
    const SecretKey camera = generateKey(Role::Camera, "cam");
    const std::string genesis(64, '0');
    auto verifyOne = [&](const std::string& type, const std::string& fields) {
        writeFileAtomic(dir / "audit.log", R"({"seq":1,"time":"2026-11-24T12:00:00Z","type":")" + type +
                                               R"(","fields":)" + fields + R"(,"prev":")" + genesis + "\"}\n");
        return verifyAuditLog(dir / "audit.log", camera.publicKey().signKey);
    };
    // The same line with conforming fields verifies: what fails below fails for its fields.
    CHECK(verifyOne("mask_changed", R"({"old_hash":"aa","count":3,"valid":true,"n":-1})").ok);
    CHECK(verifyOne("torn_tail_recovered", R"({"bytes":5,"blake2b":")" + genesis + R"(","saved_as":"audit.log.torn-2"})").ok);
    const std::vector<std::pair<std::string, std::string>> broken = {
        {"mask_changed", R"({"Old Hash":"aa"})"},
        {"mask_changed", R"({"":"aa"})"},
        {"mask_changed", R"({"ratio":1.5})"},
        {"mask_changed", R"({"list":[1,2]})"},
        {"mask_changed", R"({"nested":{"a":1}})"},
        {"mask_changed", R"({"nothing":null})"},
        {"torn_tail_recovered", R"({"bytes":5})"},
        {"torn_tail_recovered", R"({"bytes":0,"blake2b":")" + genesis + R"(","saved_as":"x"})"},
        {"torn_tail_recovered", R"({"bytes":5,"blake2b":"abc","saved_as":"x"})"},
        {"torn_tail_recovered", R"({"bytes":5,"blake2b":")" + genesis + R"(","saved_as":"x","more":1})"},
    };
    for (const auto& [type, fields] : broken) {
        CAPTURE(fields);
        const auto r = verifyOne(type, fields);
        CHECK_FALSE(r.ok);
        CHECK(r.badLine == 1);
        CHECK_FALSE(r.reason.empty());
        CHECK_THROWS_AS(readAuditLog(dir / "audit.log"), AuditError);
    }
    // A checkpoint key id from a forger is quoted only escaped.
    const auto forgedKey = verifyOne("checkpoint", R"({"key_id":"\u001b[2Jx","signature":"AA=="})");
    CHECK_FALSE(forgedKey.ok);
    CHECK(forgedKey.reason.find("\x1b") == std::string::npos);
    CHECK(forgedKey.reason.find("\\x1b[2Jx") != std::string::npos);
    // A field name from a forger is not quoted back in the reason.
    const auto named = verifyOne("mask_changed", "{\"\\u001b[2J\":\"x\"}");
    CHECK_FALSE(named.ok);
    CHECK(named.reason.find("[2J") == std::string::npos);
}

TEST_CASE("an entry longer than the readers' line limit is refused, and the log stays readable") {
    test::TempDir dir;
    const SecretKey camera = generateKey(Role::Camera, "cam");
    ManualClock clock(0);
    {
        AuditLog log(dir / "audit.log", camera, clock);
        log.append(audit::kDaemonStart, {});
        CHECK_THROWS_AS(log.append(audit::kRequestRefused, {{"text", std::string(kMaxAuditLineBytes, 'x')}}),
                        std::invalid_argument);
        // Just under the limit is written, and read back.
        log.append(audit::kRequestRefused, {{"text", std::string(kMaxAuditLineBytes - 200, 'y')}});
    }
    const auto r = verifyAuditLog(dir / "audit.log", camera.publicKey().signKey);
    CHECK_MESSAGE(r.ok, r.reason);
    CHECK(readAuditLog(dir / "audit.log").size() == 3);
}

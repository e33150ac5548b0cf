// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The built `mimamori` binary (keygen, trust, request, audit), and its files checked by an independent implementation.
#include "mimamori/common/file.hpp"
#include "../support/run_command.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/decision.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/request.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <string>

using namespace mimamori::policy;
using mimamori::common::readFile;
using mimamori::common::writeFileAtomic;
namespace fs = std::filesystem;

namespace {

struct Run {
    int status = -1;
    std::string output;  // stdout and stderr together
};

std::string quote(const std::string& s) {
    std::string out(1, '\'');
    for (char c : s) {
        if (c == '\'') out.append("'\\''");
        else out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

// Runs a shell command in `cwd` in a new session (setsid): no controlling terminal, like a
// script under cron.
Run runShell(const fs::path& cwd, const std::string& command) {
    const std::string line = fmt::format("cd {} && setsid -w {} </dev/null 2>&1", quote(cwd.string()), command);
    auto result = mimamori::testing::runCommand(line);
    return Run{result.status, std::move(result.output)};
}

Run runTool(const fs::path& cwd, const std::string& args) {
    return runShell(cwd, fmt::format("{}/apps/mimamori {}", MIMAMORI_BINARY_DIR, args));
}

// The independent Python implementation of docs/request-format.md and docs/audit-log.md.
Run runInterop(const fs::path& cwd, const std::string& args) {
    return runShell(cwd, fmt::format("python3 {}/tests/policy/interop_check.py {}", MIMAMORI_SOURCE_DIR, args));
}

unsigned modeOf(const fs::path& p) {
    struct stat st{};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

// Police, city and camera keys made by the tool, and a trust file listing police and city.
struct Keys {
    test::TempDir dir;
    Keys() {
        REQUIRE(runTool(dir.path(), "keygen --role police --name hyogo-pd --out keys").status == 0);
        REQUIRE(runTool(dir.path(), "keygen --role city --name kakogawa-city --out keys").status == 0);
        REQUIRE(runTool(dir.path(), "keygen --role camera --name cam-0412 --out keys").status == 0);
        const Run trust = runTool(dir.path(), "trust add trust.json keys/hyogo-pd.pub keys/kakogawa-city.pub");
        REQUIRE_MESSAGE(trust.status == 0, trust.output);
    }
    std::string create(const std::string& ground, const std::string& out) const {
        return "request create --camera kakogawa-0412 --from 2026-11-24T19:00:00+09:00 --to 2026-11-24T10:00:10Z"
               " --ground " + ground + " --reference '加古川署刑第1234号' --purpose 'bicycle theft'"
               " --body 'Hyogo Prefectural Police' --officer 'Sgt. Tanaka' --key keys/hyogo-pd.secret --out " + out;
    }
};

}  // namespace

TEST_CASE("keygen writes a 0600 secret and a public file, and never overwrites a secret") {
    Keys k;
    CHECK(modeOf(k.dir / "keys/hyogo-pd.secret") == 0600);
    CHECK(loadPublicKey(k.dir / "keys/hyogo-pd.pub").boxKey.has_value());
    CHECK(loadSecretKey(k.dir / "keys/cam-0412.secret").role() == Role::Camera);
    const std::string before = loadPublicKey(k.dir / "keys/hyogo-pd.pub").keyId();
    const Run again = runTool(k.dir.path(), "keygen --role police --name hyogo-pd --out keys");
    CHECK(again.status == 1);
    CHECK(again.output.find("already exists") != std::string::npos);
    CHECK(loadPublicKey(k.dir / "keys/hyogo-pd.pub").keyId() == before);
    CHECK(runTool(k.dir.path(), "keygen --role mayor --name x --out keys").status == 2);
    const Run shown = runTool(k.dir.path(), "trust show trust.json");
    CHECK(shown.output.find("hyogo-pd") != std::string::npos);
    CHECK(shown.output.find("kakogawa-city") != std::string::npos);
    CHECK(runTool(k.dir.path(), "trust add trust.json keys/cam-0412.pub").status == 1);
}

TEST_CASE("a request created, approved with --yes, and shown by the tool is granted by the camera") {
    Keys k;
    const Run created = runTool(k.dir.path(), k.create("criminal-investigation", "req.json"));
    REQUIRE_MESSAGE(created.status == 0, created.output);

    // No terminal and no --yes: nothing is approved.
    const Run refused = runTool(k.dir.path(), "request approve req.json --key keys/kakogawa-city.secret --out ok.json --trust trust.json");
    CHECK(refused.status == 1);
    CHECK(refused.output.find("no terminal") != std::string::npos);
    CHECK_FALSE(fs::exists(k.dir / "ok.json"));
    // The police key cannot approve.
    CHECK(runTool(k.dir.path(), "request approve req.json --key keys/hyogo-pd.secret --out ok.json --yes --trust trust.json").status == 1);

    const Run approved = runTool(k.dir.path(),
                                  "request approve req.json --key keys/kakogawa-city.secret --out ok.json --yes "
                                  "--trust trust.json");
    REQUIRE_MESSAGE(approved.status == 0, approved.output);
    const Run shown = runTool(k.dir.path(), "request show ok.json --trust trust.json");
    CHECK(shown.status == 0);
    CHECK(shown.output.find("2026-11-24T10:00:00Z") != std::string::npos);  // +09:00 read as UTC
    // and shown in the city's own time beside it
    CHECK(shown.output.find("2026-11-24T10:00:00Z (2026-11-24 19:00:00 JST)") != std::string::npos);
    CHECK(shown.output.find("city key 'kakogawa-city': valid") != std::string::npos);
    CHECK(shown.output.find("Art. 7(1)(3)") != std::string::npos);

    const Run interop = runInterop(k.dir.path(), "request ok.json keys/hyogo-pd.pub keys/kakogawa-city.pub");
    CHECK_MESSAGE(interop.status == 0, interop.output);
    CHECK(runInterop(k.dir.path(), "request req.json keys/hyogo-pd.pub keys/kakogawa-city.pub").status == 1);

    const TrustStore trust = TrustStore::load(k.dir / "trust.json");
    const std::string bytes = readFile(k.dir / "ok.json");
    DecisionInput in;
    in.requestBytes = bytes;
    in.trust = &trust;
    in.cameraId = "kakogawa-0412";
    in.now = *mimamori::common::parseUtc("2026-11-24T12:00:00Z");
    in.nonceSeen = [](std::span<const std::uint8_t>) { return false; };
    in.held = {{*mimamori::common::parseUtc("2026-11-24T09:00:00Z"), in.now}};
    in.clockSkew = 365 * mimamori::common::kMicrosPerDay;  // the tool stamps today's date as issued-at
    const Decision d = decide(in);
    CHECK_MESSAGE(d.granted, d.text);

    // A damaged file is reported, not shown.
    std::string damaged = bytes;
    damaged.resize(damaged.size() / 2);
    writeFileAtomic(k.dir / "bad.json", damaged);
    const Run bad = runTool(k.dir.path(), "request show bad.json");
    CHECK(bad.status == 1);
    CHECK(bad.output.find("bad.json") != std::string::npos);
}

TEST_CASE("approval asks on the terminal and approves only on 'yes'") {
    Keys k;
    REQUIRE(runTool(k.dir.path(), k.create("emergency", "req.json")).status == 0);
    // script(1) gives the command a pseudo-terminal; what is piped in is typed on it.
    auto onTerminal = [&k](const std::string& typed, const std::string& out) {
        return runShell(k.dir.path(),
                        fmt::format("sh -c \"echo {} | script -qec '{}/apps/mimamori request approve req.json "
                                    "--key keys/kakogawa-city.secret --trust trust.json --out {}' /dev/null\"",
                                    typed, MIMAMORI_BINARY_DIR, out));
    };
    const Run no = onTerminal("no", "no.json");
    CHECK(no.status == 1);
    CHECK(no.output.find("Type yes to approve") != std::string::npos);
    CHECK_FALSE(fs::exists(k.dir / "no.json"));
    const Run yes = onTerminal("yes", "yes.json");
    CHECK_MESSAGE(yes.status == 0, yes.output);
    CHECK(fs::exists(k.dir / "yes.json"));
}

TEST_CASE("a disclosure request can be written but the city tool will not approve it") {
    Keys k;
    const Run created = runTool(k.dir.path(), k.create("disclosure", "req.json"));
    CHECK(created.status == 0);
    CHECK(created.output.find("Art. 8") != std::string::npos);
    const Run approve = runTool(k.dir.path(), "request approve req.json --key keys/kakogawa-city.secret --out ok.json --yes --trust trust.json");
    CHECK(approve.status == 1);
    CHECK(approve.output.find("Art. 8") != std::string::npos);
    CHECK_FALSE(fs::exists(k.dir / "ok.json"));
    CHECK(runTool(k.dir.path(), "request create --camera c --from 2026-11-24T10:00:00 --to 2026-11-24T11:00:00Z "
                                 "--ground law --reference r --purpose p --body b --officer o "
                                 "--key keys/hyogo-pd.secret --out x.json")
              .status == 2);  // a time without a zone is never guessed
}

TEST_CASE("audit verify passes an intact log and names the first bad line of a tampered one") {
    Keys k;
    const fs::path log = k.dir / "audit";
    const fs::path file = log / "audit-FY2026.log";
    {
        const SecretKey camera = loadSecretKey(k.dir / "keys/cam-0412.secret");
        mimamori::common::ManualClock clock(*mimamori::common::parseUtc("2026-11-24T12:00:00Z"));
        AuditLog audit(log, camera, clock, AuditOptions{3, {}, {}});
        audit.append(audit::kDaemonStart, {});
        for (int i = 0; i < 5; ++i) {
            clock.advance(60 * mimamori::common::kMicrosPerSecond);
            audit.append(audit::kRequestRefused, {{"reason", std::string(i % 2 ? "expired" : "wrong_camera")}});
        }
        audit.append(audit::kDaemonStop, {});
    }
    const Run ok = runTool(k.dir.path(), "audit verify audit --camera-key keys/cam-0412.pub");
    CHECK_MESSAGE(ok.status == 0, ok.output);
    CHECK(ok.output.find("ok: 10 entries in 1 file") != std::string::npos);
    CHECK(ok.output.find("audit/audit.checkpoint") != std::string::npos);

    const Run shown = runTool(k.dir.path(), "audit show audit --type request_refused --from 2026-11-24T21:02:00+09:00");
    CHECK(shown.status == 0);
    CHECK(shown.output.find("reason=expired") != std::string::npos);
    CHECK(shown.output.find("12:01:00Z") == std::string::npos);  // before --from
    CHECK(shown.output.find("2026-11-24 21:03:00 JST request_refused") != std::string::npos);  // JST beside UTC
    CHECK(shown.output.find("daemon_start") == std::string::npos);

    const Run interop = runInterop(k.dir.path(), "audit audit/audit-FY2026.log keys/cam-0412.pub");
    CHECK_MESSAGE(interop.status == 0, interop.output);
    CHECK(interop.output.find("10 entries, 3 signed checkpoints") != std::string::npos);

    std::string text = readFile(file);
    text.replace(text.find("wrong_camera"), 12, "range_empty!");
    writeFileAtomic(file, text);
    const Run bad = runTool(k.dir.path(), "audit verify audit --camera-key keys/cam-0412.pub");
    CHECK(bad.status == 1);
    CHECK(bad.output.find("audit/audit-FY2026.log:3:") != std::string::npos);
    CHECK(runTool(k.dir.path(), "audit verify audit --camera-key keys/hyogo-pd.pub").status == 1);
    CHECK(runInterop(k.dir.path(), "audit audit/audit-FY2026.log keys/cam-0412.pub").status == 1);
}

TEST_CASE("audit show prints what came from the network escaped, and --json stays the same JSON without raw controls") {
    test::TempDir dir;  // no key files needed: `audit show` does not verify
    const fs::path log = dir / "audit.log";
    // ESC [2J erases the screen, CR returns to the line's start, U+202E reverses what follows,
    // U+0085 is a C1 line break, DEL, and a backslash that must not forge an escape.
    const std::string hostile = "x\x1b[2J\r\xe2\x80\xae" "detnarg\xc2\x85\x7f\\x1b";
    {
        const SecretKey camera = generateKey(Role::Camera, "cam-0412");
        mimamori::common::ManualClock clock(*mimamori::common::parseUtc("2026-11-24T12:00:00Z"));
        AuditLog audit(log, camera, clock);
        audit.append(audit::kRequestGranted, {{"request_id", std::string("case-42")}, {"purpose", hostile},
                                              {"officer", std::string("Sgt. \xe2\x81\xa6Tanaka")}});
    }
    const Run shown = runTool(dir.path(), "audit show audit.log");
    REQUIRE(shown.status == 0);
    for (const std::string raw : {"\x1b", "\r", "\x7f", "\xe2\x80\xae", "\xc2\x85", "\xe2\x81\xa6"})
        CHECK_MESSAGE(shown.output.find(raw) == std::string::npos, shown.output);
    CHECK(shown.output.find("purpose=x\\x1b[2J\\x0d\\u202edetnarg\\u0085\\x7f\\\\x1b") != std::string::npos);
    CHECK(shown.output.find("officer=Sgt. \\u2066Tanaka") != std::string::npos);
    // One line per entry: the granted entry and the closing checkpoint.
    CHECK(std::count(shown.output.begin(), shown.output.end(), '\n') == 2);

    const Run json = runTool(dir.path(), "audit show audit.log --json");
    REQUIRE(json.status == 0);
    for (const std::string raw : {"\x1b", "\r", "\x7f", "\xe2\x80\xae", "\xc2\x85", "\xe2\x81\xa6"})
        CHECK(json.output.find(raw) == std::string::npos);
    const std::string firstLine = json.output.substr(0, json.output.find('\n'));
    const std::string logText = readFile(log / "audit-FY2026.log");
    const std::string fileLine = logText.substr(0, logText.find('\n'));
    CHECK(nlohmann::json::parse(firstLine) == nlohmann::json::parse(fileLine));
    CHECK(nlohmann::json::parse(firstLine)["fields"]["purpose"] == hostile);
}

TEST_CASE("every missing option is named at once, from the command's usage line, with exit 2") {
    Keys k;
    const Run create = runTool(k.dir.path(), "request create");
    CHECK(create.status == 2);
    CHECK(create.output.find("missing --camera, --ground, --reference, --purpose, --body, --officer, --key, --out") !=
          std::string::npos);
    // The range is required of footage requests only (a mask-review still has none): both at once.
    const Run noRange = runTool(k.dir.path(), "request create --camera kakogawa-0412 --ground law --reference R "
                                              "--purpose P --body B --officer O --key keys/hyogo-pd.secret --out r.json");
    CHECK(noRange.status == 2);
    CHECK(noRange.output.find("missing --from, --to (a footage request names the range it asks for)") != std::string::npos);
    const Run preview = runTool(k.dir.path(), "mask preview masks.json --outline");
    CHECK(preview.status == 2);
    CHECK(preview.output.find("missing --input, --out") != std::string::npos);
    // Options in [brackets] are optional: their absence is never reported.
    CHECK(create.output.find("--expires-in") == std::string::npos);
}

TEST_CASE("request approve checks the police signature against a trust file, never without one") {
    Keys k;
    REQUIRE(runTool(k.dir.path(), k.create("law", "req.json")).status == 0);
    const Run noTrust = runTool(k.dir.path(), "request approve req.json --key keys/kakogawa-city.secret --out ok.json --yes");
    CHECK(noTrust.status == 2);
    CHECK(noTrust.output.find("missing --trust") != std::string::npos);
    // A trust file without this police key: the signature is vouched for by nobody.
    REQUIRE(runTool(k.dir.path(), "trust add city-only.json keys/kakogawa-city.pub").status == 0);
    const Run untrusted = runTool(k.dir.path(), "request approve req.json --key keys/kakogawa-city.secret --out ok.json "
                                                "--yes --trust city-only.json");
    CHECK(untrusted.status == 1);
    CHECK(untrusted.output.find("not approved") != std::string::npos);
    CHECK_FALSE(fs::exists(k.dir / "ok.json"));
    CHECK(runTool(k.dir.path(), "request approve req.json --key keys/kakogawa-city.secret --out ok.json --yes "
                                "--trust trust.json").status == 0);
}

TEST_CASE("a request on an unknown ground is refused before signing unless --force") {
    Keys k;
    const Run theft = runTool(k.dir.path(), k.create("theft", "theft.json"));
    CHECK(theft.status == 2);
    CHECK(theft.output.find("--ground 'theft' is none of law, emergency, criminal-investigation") != std::string::npos);
    CHECK_FALSE(fs::exists(k.dir / "theft.json"));
    const Run forced = runTool(k.dir.path(), k.create("theft", "theft.json") + " --force");
    CHECK(forced.status == 0);
    CHECK(forced.output.find("warning: ground 'theft'") != std::string::npos);
    CHECK(fs::exists(k.dir / "theft.json"));
}

TEST_CASE("a mask-review still request: made by one city key without a range, approved by another") {
    Keys k;
    REQUIRE(runTool(k.dir.path(), "keygen --role city --name kakogawa-manager --out keys").status == 0);
    REQUIRE(runTool(k.dir.path(), "trust add trust.json keys/kakogawa-manager.pub").status == 0);
    const Run made = runTool(k.dir.path(), "request create --camera kakogawa-0412 --ground mask-review --reference R "
                                           "--purpose 'annual review' --body 'Kakogawa City' --officer O "
                                           "--key keys/kakogawa-city.secret --out still.json");
    REQUIRE_MESSAGE(made.status == 0, made.output);
    const Run self = runTool(k.dir.path(), "request approve still.json --key keys/kakogawa-city.secret --trust trust.json "
                                           "--yes --out self.json");
    CHECK(self.status == 1);
    CHECK_FALSE(fs::exists(k.dir / "self.json"));
    const Run approved = runTool(k.dir.path(), "request approve still.json --key keys/kakogawa-manager.secret "
                                               "--trust trust.json --yes --out approved.json");
    CHECK_MESSAGE(approved.status == 0, approved.output);
}

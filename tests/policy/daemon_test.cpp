// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The real mimamorid: what only the daemon can show. Paths on the removable card are refused by
// --check-config and at start; hostile names and text in a request reach its log and
// `mimamori audit show` only escaped.
#include "../support/daemon_process.hpp"
#include "../support/run_command.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/request.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

using namespace mimamori;
using mimamori::testing::Daemon;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kCli = MIMAMORI_BINARY_DIR "/apps/mimamori";
const std::string kDaemonBinary = MIMAMORI_BINARY_DIR "/apps/mimamorid";
constexpr const char* kCamera = "cam-0042";

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

testing::CommandResult run(const std::string& command) {
    return testing::runCommand("setsid -w " + command + " </dev/null 2>&1");
}

// Keys made by the tool, a trust file, an empty mask list (written down, as required), a
// directory standing for the card, and a config writer: a small, light test source.
struct Camera {
    policy::test::TempDir tmp;
    fs::path dir = tmp.path();
    fs::path card = dir / "card";

    Camera() {
        REQUIRE(run(kCli + " keygen --role camera --name " + kCamera + " --out " + q(dir / "keys")).status == 0);
        REQUIRE(run(kCli + " keygen --role police --name station --out " + q(dir / "keys")).status == 0);
        REQUIRE(run(kCli + " keygen --role city --name city --out " + q(dir / "keys")).status == 0);
        REQUIRE(run(kCli + " trust add " + q(dir / "trust.json") + " " + q(dir / "keys/station.pub") + " " +
                    q(dir / "keys/city.pub")).status == 0);
        common::writeFileAtomic(dir / "masks.json",
                                fmt::format(R"({{"version": 1, "camera": "{}", "masks": []}})", kCamera));
        fs::create_directories(card);
    }

    // The config with `change` applied; written as dir/NAME.
    fs::path config(const std::string& name, const std::function<void(json&)>& change = [](json&) {}) const {
        json c = {
            {"camera_id", kCamera},
            {"source", {{"kind", "test"}, {"width", 320}, {"height", 240}, {"framerate", 10}}},
            {"segment_seconds", 1},
            {"storage", {{"path", "card"}, {"sync_interval_ms", 200}}},
            {"mask_file", "masks.json"},
            {"key_dir", "daykeys"},
            {"state_dir", "state"},
            {"retrieval", {{"address", "127.0.0.1"}, {"port", 0}, {"trust_file", "trust.json"},
                           {"camera_key", std::string("keys/") + kCamera + ".secret"},
                           {"insecure_http", true}}},  // post() speaks plain HTTP
        };
        change(c);
        const fs::path path = dir / name;
        common::writeFileAtomic(path, c.dump(2));
        return path;
    }
};

struct HttpAnswer {
    int status = 0;
    std::string body;
};

// One POST over a plain socket on 127.0.0.1 (the test needs nothing but the bytes on the wire).
HttpAnswer post(int port, const std::string& path, const std::string& body) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    const std::string request = fmt::format(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
        "Connection: close\r\n\r\n{}",
        path, body.size(), body);
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string answer;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, static_cast<std::size_t>(n));
    HttpAnswer result;
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_search(answer, m, std::regex("^HTTP/1\\.[01] ([0-9]{3})")), answer);
    result.status = std::stoi(m[1].str());
    const auto headersEnd = answer.find("\r\n\r\n");
    if (headersEnd != std::string::npos) result.body = answer.substr(headersEnd + 4);
    return result;
}

const std::vector<std::string> kRawControls = {"\x1b", "\r", "\xe2\x80\xae", "\xe2\x81\xa6", "\xc2\x85"};

void checkNoRawControls(const std::string& what, const std::string& text) {
    for (const std::string& raw : kRawControls) CHECK_MESSAGE(text.find(raw) == std::string::npos, what, ":\n", text);
}

}  // namespace

TEST_CASE("mask_file, state_dir, trust_file and camera_key that resolve into storage.path are refused by --check-config and at "
          "start") {
    Camera cam;
    const fs::path good = cam.config("good.json");
    const auto valid = run(kDaemonBinary + " --check-config " + q(good));
    REQUIRE_MESSAGE(valid.status == 0, valid.output);

    // Links from "internal" paths onto the card: only resolving them shows where they lead.
    fs::create_directories(cam.card / "state");
    fs::create_directory_symlink(cam.card / "state", cam.dir / "state-link");
    fs::copy_file(cam.dir / "masks.json", cam.card / "masks.json");
    fs::create_symlink(cam.card / "masks.json", cam.dir / "masks-link.json");
    fs::copy_file(cam.dir / "trust.json", cam.card / "trust.json");
    fs::create_symlink(cam.card / "trust.json", cam.dir / "trust-link.json");
    fs::create_directories(cam.card / "keys");
    fs::copy_file(cam.dir / "keys" / (std::string(kCamera) + ".secret"), cam.card / "keys" / (std::string(kCamera) + ".secret"));
    fs::create_directory_symlink(cam.card / "keys", cam.dir / "keys-link");

    struct Case {
        const char* name;
        const char* key;  // as the problem line names it
        std::function<void(json&)> change;
    };
    const std::vector<Case> cases = {
        {"mask_file through a symlink", "mask_file", [](json& c) { c["mask_file"] = "masks-link.json"; }},
        {"state_dir through a symlink", "state_dir", [](json& c) { c["state_dir"] = "state-link"; }},
        {"state_dir below a symlinked parent", "state_dir", [](json& c) { c["state_dir"] = "state-link/sub"; }},
        {"trust_file on the card", "retrieval.trust_file", [](json& c) { c["retrieval"]["trust_file"] = "card/trust.json"; }},
        {"trust_file through a symlink", "retrieval.trust_file",
         [](json& c) { c["retrieval"]["trust_file"] = "trust-link.json"; }},
        {"camera_key on the card", "retrieval.camera_key",
         [](json& c) { c["retrieval"]["camera_key"] = std::string("card/keys/") + kCamera + ".secret"; }},
        {"camera_key in a symlinked directory", "retrieval.camera_key",
         [](json& c) { c["retrieval"]["camera_key"] = std::string("keys-link/") + kCamera + ".secret"; }},
    };
    for (const Case& c : cases) {
        const std::string name = c.name;
        CAPTURE(name);
        const fs::path config = cam.config("bad.json", c.change);
        const auto checked = run(kDaemonBinary + " --check-config " + q(config));
        CHECK(checked.status == 1);
        CHECK_MESSAGE(checked.output.find(std::string(c.key) + ": must not be inside storage.path") != std::string::npos,
                      checked.output);

        Daemon daemon({"--config", config.string()}, cam.dir / "daemon.log");
        CHECK(daemon.wait(30) == 1);
        const std::string log = daemon.log();
        CHECK_MESSAGE(log.find(std::string(c.key) + ": must not be inside storage.path") != std::string::npos, log);
        CHECK(log.find("recording: first frame") == std::string::npos);
    }
    // Nothing was written through the links onto the card.
    CHECK(fs::is_empty(cam.card / "state"));
}

TEST_CASE("--check-config loads what the daemon loads: camera key and its role, trust file, each problem as FILE: key: "
          "message") {
    Camera cam;
    struct Case {
        const char* name;
        std::function<void(json&)> change;
        const char* expected;  // after "CONFIG: "
    };
    const std::vector<Case> cases = {
        {"a camera key that does not exist", [](json& c) { c["retrieval"]["camera_key"] = "keys/nobody.secret"; },
         "retrieval.camera_key: "},
        {"a trust file that does not exist", [](json& c) { c["retrieval"]["trust_file"] = "missing-trust.json"; },
         "retrieval.trust_file: "},
        {"a police key given as the camera key", [](json& c) { c["retrieval"]["camera_key"] = "keys/station.secret"; },
         "retrieval.camera_key: "},
    };
    for (const Case& c : cases) {
        const std::string name = c.name;
        CAPTURE(name);
        const fs::path config = cam.config("bad.json", c.change);
        const auto checked = run(kDaemonBinary + " --check-config " + q(config));
        CHECK(checked.status == 1);
        CHECK_MESSAGE(checked.output.find(config.string() + ": " + c.expected) != std::string::npos, checked.output);
        CHECK(checked.output.find("valid") == std::string::npos);
    }
    const auto police = run(kDaemonBinary + " --check-config " +
                            q(cam.config("bad.json", [](json& c) { c["retrieval"]["camera_key"] = "keys/station.secret"; })));
    CHECK_MESSAGE(police.output.find("a police key, not a camera key") != std::string::npos, police.output);
}

TEST_CASE("hostile member names and request text reach the daemon's log and audit show only escaped") {
    Camera cam;
    const fs::path config = cam.config("mimamorid.json");
    Daemon daemon({"--config", config.string()}, cam.dir / "daemon.log");
    const std::string started = daemon.waitForLog("retrieval endpoint on 127.0.0.1:");
    std::smatch m;
    REQUIRE(std::regex_search(started, m, std::regex("retrieval endpoint on 127\\.0\\.0\\.1:([0-9]+)")));
    const int port = std::stoi(m[1].str());
    daemon.waitForLog("recording: first frame at");
    const common::UtcMicros firstFrame = common::SystemClock().nowUtc();

    const policy::SecretKey police = policy::loadSecretKey(cam.dir / "keys/station.secret");
    const policy::SecretKey city = policy::loadSecretKey(cam.dir / "keys/city.secret");
    auto request = [&](common::UtcMicros from, common::UtcMicros to) {
        policy::Request r = policy::newRequest(common::SystemClock().nowUtc(), 3600 * common::kMicrosPerSecond);
        r.cameraId = kCamera;
        r.from = from;
        r.to = to;
        r.groundWord = "criminal-investigation";
        r.ground = policy::classifyGround(r.groundWord);
        // Bidi overrides are valid text in a request (no control characters); they must
        // still never reach a screen raw.
        r.reference = "K-\xe2\x80\xae" "2026-001";
        r.purpose = "hit and run \xe2\x81\xa6" "at the crossing";
        r.body = "Kakogawa Police Station";
        r.officer = "Sgt. \xe2\x80\xaeTanaka";
        r.recipient = police.boxPublic();
        return r;
    };
    auto approved = [&](const policy::Request& r) {
        policy::SignedRequest s = policy::signRequest(r, police);
        policy::approveRequest(s, city);
        return s;
    };

    // 1. An envelope with a member whose name erases the screen, returns the carriage,
    //    reverses the text and pretends to be a grant.
    const std::string forgedName = "\\u001b[2J\\r\\u202e FORGED-LINE 7 request_granted";
    std::string envelope = policy::serializeSignedRequest(approved(request(firstFrame - 10'000'000, firstFrame)));
    envelope.insert(1, "\"" + forgedName + "\": 1,");
    const HttpAnswer unknownMember = post(port, "/v1/requests", envelope);
    CHECK(unknownMember.status == 400);
    CHECK(unknownMember.body.find("unknown member with name hash") != std::string::npos);
    CHECK(unknownMember.body.find("FORGED-LINE") == std::string::npos);

    // 2. A body whose purpose carries ESC and CR, signed and approved: malformed, by line.
    policy::SignedRequest withControls = approved(request(firstFrame - 10'000'000, firstFrame));
    const auto purposeAt = withControls.body.find("purpose: ") + 9;
    withControls.body.insert(purposeAt, "\x1b[2J\rFORGED-LINE ");
    withControls.police.signature = policy::sign(police, withControls.body);
    withControls.approval->signature =
        policy::sign(city, policy::approvalMessage(withControls.body, withControls.police.signature));
    const HttpAnswer controls = post(port, "/v1/requests", policy::serializeSignedRequest(withControls));
    CHECK(controls.status == 400);
    CHECK(controls.body.find("purpose") != std::string::npos);
    CHECK(controls.body.find("FORGED-LINE") == std::string::npos);

    // 3. A proper request whose text carries bidi overrides, granted once the ring holds it.
    const common::UtcMicros from = firstFrame + common::kMicrosPerSecond;
    const common::UtcMicros to = from + common::kMicrosPerSecond;
    bool granted = false;
    for (int attempt = 0; attempt < 40 && !granted; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        if (common::SystemClock().nowUtc() < to + 2 * common::kMicrosPerSecond) continue;
        const HttpAnswer answer = post(port, "/v1/requests", policy::serializeSignedRequest(approved(request(from, to))));
        INFO(answer.body);
        granted = answer.status == 202;
        if (!granted) REQUIRE(answer.body.find("range_not_held") != std::string::npos);
    }
    REQUIRE(granted);

    daemon.signal(SIGTERM);
    CHECK(daemon.wait(30) == 0);

    const std::string log = daemon.log();
    checkNoRawControls("mimamorid's log", log);
    CHECK(log.find("FORGED-LINE") == std::string::npos);
    const fs::path audit = cam.dir / "state/audit";
    for (const auto& e : policy::readAuditLog(audit)) CHECK(e.line.find("FORGED-LINE") == std::string::npos);

    const auto shown = run(kCli + " audit show " + q(audit));
    REQUIRE(shown.status == 0);
    checkNoRawControls("audit show", shown.output);
    CHECK(shown.output.find("unknown member with name hash") != std::string::npos);
    CHECK(shown.output.find("reference=K-\\u202e2026-001") != std::string::npos);
    CHECK(shown.output.find("purpose=hit and run \\u2066at the crossing") != std::string::npos);
    CHECK(shown.output.find("officer=Sgt. \\u202eTanaka") != std::string::npos);
    const auto shownJson = run(kCli + " audit show " + q(audit) + " --json");
    REQUIRE(shownJson.status == 0);
    checkNoRawControls("audit show --json", shownJson.output);
}

TEST_CASE("the daemon refuses a request valid for longer than max_request_lifetime_days, and one that expires "
          "before it is issued, each by its own reason") {
    Camera cam;
    const fs::path config = cam.config("mimamorid.json", [](json& c) { c["retrieval"]["max_request_lifetime_days"] = 2; });
    Daemon daemon({"--config", config.string()}, cam.dir / "daemon.log");
    const std::string started = daemon.waitForLog("retrieval endpoint on 127.0.0.1:");
    std::smatch m;
    REQUIRE(std::regex_search(started, m, std::regex("retrieval endpoint on 127\\.0\\.0\\.1:([0-9]+)")));
    const int port = std::stoi(m[1].str());

    const policy::SecretKey police = policy::loadSecretKey(cam.dir / "keys/station.secret");
    const policy::SecretKey city = policy::loadSecretKey(cam.dir / "keys/city.secret");
    const common::UtcMicros now = common::SystemClock().nowUtc();
    auto send = [&](common::UtcMicros issuedAt, common::UtcMicros expiresAt) {
        policy::Request r = policy::newRequest(now, common::kMicrosPerDay);
        r.issuedAt = issuedAt;
        r.expiresAt = expiresAt;
        r.cameraId = kCamera;
        r.from = now - 20 * common::kMicrosPerSecond;
        r.to = now - 10 * common::kMicrosPerSecond;
        r.groundWord = "criminal-investigation";
        r.reference = "K-2026-001";
        r.purpose = "hit and run";
        r.body = "Kakogawa Police Station";
        r.officer = "Sgt. Tanaka";
        r.recipient = police.boxPublic();
        policy::SignedRequest s = policy::signRequest(r, police);
        policy::approveRequest(s, city);
        return post(port, "/v1/requests", policy::serializeSignedRequest(s));
    };
    const common::UtcMicros hour = 3600 * common::kMicrosPerSecond;
    const HttpAnswer tooLong = send(now - hour, now - hour + 3 * common::kMicrosPerDay);
    CHECK(tooLong.status == 403);
    CHECK_MESSAGE(tooLong.body.find("\"lifetime_too_long\"") != std::string::npos, tooLong.body);
    const HttpAnswer inverted = send(now - hour, now - 2 * hour);
    CHECK(inverted.status == 403);
    CHECK_MESSAGE(inverted.body.find("\"lifetime_inverted\"") != std::string::npos, inverted.body);
    // Within the configured 2 days it passes the lifetime checks (and is refused only because
    // nothing of the range was recorded).
    const HttpAnswer within = send(now - hour, now - hour + 2 * common::kMicrosPerDay);
    CHECK_MESSAGE(within.body.find("\"range_not_held\"") != std::string::npos, within.body);

    daemon.signal(SIGTERM);
    CHECK(daemon.wait(30) == 0);
    const auto refused = run(kCli + " audit show " + q(cam.dir / "state/audit") + " --type request_refused");
    CHECK(refused.output.find("reason=lifetime_too_long") != std::string::npos);
    CHECK(refused.output.find("reason=lifetime_inverted") != std::string::npos);
}

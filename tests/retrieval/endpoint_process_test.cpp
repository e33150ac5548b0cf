// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint in a process of its own (docs/endpoint-process.md), against the real mimamorid
// recording: killed or out of memory, it is restarted and answers again, and the recorder loses
// no frame; every restart is logged and audited.
#include "recording_camera.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;  // the endpoint runs without a memory limit (ASan's shadow)
#else
constexpr bool kSanitized = false;
#endif
// Any answer from the endpoint: an unknown extract is a 404 of its own.
bool answers(int port) {
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(2);
    cli.set_read_timeout(5);
    const auto res = cli.Get("/v1/extracts/00000000000000000000000000000000");
    return res && res->status == 404;
}

bool answersWithin(int port, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (answers(port)) return true;
        std::this_thread::sleep_for(milliseconds(200));
    }
    return false;
}

// A connection that sent a request head promising `bytes` of body, and all but the last byte.
int almostWholeRequest(int port, std::size_t bytes) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    const std::string head =
        fmt::format("POST /v1/requests HTTP/1.1\r\nHost: camera\r\nContent-Length: {}\r\n\r\n", bytes);
    const std::string body(bytes - 1, '{');
    if (::send(fd, head.data(), head.size(), MSG_NOSIGNAL) < 0 || ::send(fd, body.data(), body.size(), MSG_NOSIGNAL) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

TEST_CASE("the endpoint process killed, hung, then out of memory, while recording: restarted, answering, no frame lost, restarts audited") {
    // A small memory limit, and room for 64 bodies of 1 MiB from one peer: legitimate sizes that
    // together are more than the limit.
    Camera camera(Json{{"endpoint_memory_mb", 96}, {"http_threads", 2}, {"max_request_bytes", 1048576},
                       {"max_connections", 64}, {"max_connections_per_peer", 64}});
    camera.daemon->waitForLog("recorder: recording: first frame");
    REQUIRE(answers(camera.port));

    // SIGKILL: a crash. A new process serves, the recorder never noticed.
    const pid_t first = camera.endpointPid();
    REQUIRE(::kill(first, SIGKILL) == 0);
    const std::string log = camera.daemon->waitForLog("retrieval endpoint on 127.0.0.1:", 30, 2);
    CHECK(log.find(fmt::format("endpoint process {} killed by signal 9 (KILL)", first)) != std::string::npos);
    const pid_t second = camera.endpointPid();
    CHECK(second != first);
    CHECK(answersWithin(camera.port, std::chrono::seconds(10)));

    // SIGSTOP: a hang. No pong for 10 s, and mimamorid kills it and starts another.
    REQUIRE(::kill(second, SIGSTOP) == 0);
    camera.daemon->waitForLog("retrieval endpoint on 127.0.0.1:", 30, 3);
    CHECK(camera.daemon->log().find(fmt::format("endpoint process {} answered no ping for", second)) != std::string::npos);
    CHECK(answersWithin(camera.port, std::chrono::seconds(10)));

    // Memory: 64 request bodies of 1 MiB held at once, past a 96 MiB limit. The endpoint
    // refuses what it cannot allocate or dies of it and is restarted; either way it answers
    // again, and the recorder goes on.
    std::vector<int> held;
    for (int i = 0; i < 64; ++i)
        if (const int fd = almostWholeRequest(camera.port, 1048576); fd >= 0) held.push_back(fd);
    std::this_thread::sleep_for(milliseconds(1500));
    for (const int fd : held) ::close(fd);
    CHECK(answersWithin(camera.port, std::chrono::seconds(20)));
    const bool restarted = camera.endpointPids().size() >= 4;
    const bool refused = camera.daemon->log().find("bad_alloc") != std::string::npos;
    MESSAGE(fmt::format("out of memory: {} connections held; the endpoint was {}", held.size(),
                        restarted ? "restarted" : refused ? "refusing allocations" : "not exhausted"));
    if (!kSanitized) CHECK((restarted || refused));
    std::this_thread::sleep_for(milliseconds(2500));  // a segment after the restarts

    CHECK(camera.stopAndCheckRecorder() == 0);  // no frame dropped, no gap in health or `ring ls`
    std::string audit;
    for (const auto& e : policy::readAuditLog(camera.auditLog())) audit += e.line + "\n";
    CHECK(audit.find(fmt::format(R"x("type":"endpoint_restarted","fields":{{"pid":{},"exit":"killed by signal 9 (KILL)","cause":"","signal":9}})x",
                                 first)) != std::string::npos);
    CHECK(audit.find(fmt::format(R"x("type":"endpoint_restarted","fields":{{"pid":{},"exit":"killed by signal 9 (KILL)","cause":"answered no ping for)x",
                                 second)) != std::string::npos);
}

TEST_CASE("evidence holds cross the process boundary: a restarted daemon's retention keeps the footage its endpoint process holds") {
    Camera camera;
    std::this_thread::sleep_for(milliseconds(8000));  // four 2-s segments
    // A granted, undelivered extract of the first seconds: the endpoint process holds them.
    const UtcMicros now = common::SystemClock().nowUtc();
    const policy::Request r = investigationRequest("kakogawa-0042", now, 3600 * kMicrosPerSecond, camera.recording,
                                                   camera.recording + 2 * kMicrosPerSecond, camera.fixture.police);
    httplib::Client cli("127.0.0.1", camera.port);
    const auto res = cli.Post("/v1/requests", approvedRequest(r, camera.fixture.police, camera.fixture.city),
                              "application/json");
    REQUIRE(res);
    REQUIRE_MESSAGE(res->status == 202, res->body);
    // In force for mimamorid's retention before the grant was answered, not some time after.
    CHECK(camera.daemon->log().find("mimamorid: retention keeps") != std::string::npos);
    camera.daemon->waitForLog("nothing stored but its plan", 30);  // hashed in the endpoint process
    camera.daemon->signal(SIGTERM);
    REQUIRE_MESSAGE(camera.daemon->wait() == 0, camera.daemon->log());
    std::uint64_t firstHeld = 0, lastHeld = 0;
    for (const auto& e : policy::readAuditLog(camera.auditLog())) {
        if (e.type != "evidence_hold") continue;
        const Json fields = Json::parse(e.fieldsJson);
        firstHeld = fields["first_sequence"].get<std::uint64_t>();
        lastHeld = fields["last_sequence"].get<std::uint64_t>();
    }
    REQUIRE(firstHeld > 0);

    // Started again with room for little more than the held footage: retention at start deletes
    // for capacity, oldest first, but not what the new endpoint process reports held.
    const std::unique_ptr<store::SegmentStore> before = store::SegmentStore::openReadOnly(
        store::StoreConfig{"kakogawa-0042", camera.dir.path() / "ring", camera.dir.path() / "daykeys"},
        common::SystemClock());
    std::uint64_t heldBytes = 0;
    std::vector<std::uint64_t> unheld;
    for (const auto& s : before->all()) {
        if (s.sequence >= firstHeld && s.sequence <= lastHeld) heldBytes += s.bytesOnDisk;
        else unheld.push_back(s.sequence);
    }
    REQUIRE(!unheld.empty());
    Json config = Json::parse(common::readFile(camera.dir.path() / "mimamorid.json"));
    config["storage"]["byte_limit"] = heldBytes + 1024;
    common::writeFileAtomic(camera.dir.path() / "mimamorid.json", config.dump(2));
    camera.daemon = std::make_unique<mimamori::testing::Daemon>(
        std::vector<std::string>{"--config", (camera.dir.path() / "mimamorid.json").string()},
        camera.dir.path() / "daemon2.log");
    const std::string log = camera.daemon->waitForLog("deleted");
    CHECK(log.find("retrieval endpoint on 127.0.0.1:") < log.find("deleted"));  // the holds came first
    camera.daemon->signal(SIGTERM);
    REQUIRE_MESSAGE(camera.daemon->wait() == 0, camera.daemon->log());
    const std::unique_ptr<store::SegmentStore> after = store::SegmentStore::openReadOnly(
        store::StoreConfig{"kakogawa-0042", camera.dir.path() / "ring", camera.dir.path() / "daykeys"},
        common::SystemClock());
    std::set<std::uint64_t> left;
    for (const auto& s : after->all()) left.insert(s.sequence);
    for (std::uint64_t s = firstHeld; s <= lastHeld; ++s) CHECK_MESSAGE(left.count(s) == 1, "held segment " << s << " deleted");
    CHECK_MESSAGE(left.count(unheld.front()) == 0, "unheld segment " << unheld.front() << " kept");
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's HTTP endpoint under the security review's attacks, against the real mimamorid on
// 127.0.0.1 (descriptors, memory, slow clients, audit flood): each attack is refused within its
// budget, audited within the unauthenticated cap, and the recorder loses no frame.
#include "fixture.hpp"
#include "../support/daemon_process.hpp"
#include "recording_camera.hpp"

#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/http_server.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

using namespace mimamori;
using mimamori::testing::freePort;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr const char* kAttacker = "127.0.0.2";  // loopback has all of 127/8: a second peer address

// A TCP connection from `source` (any 127.x.y.z) to 127.0.0.1:port; -1 when refused.
int connectFrom(const std::string& source, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void sendAll(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) return;  // the server closed: that is the point of most of these tests
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Reads until the peer closes or `timeout` passes.
std::string readUntilClosed(int fd, milliseconds timeout) {
    std::string text;
    const auto end = Clock::now() + timeout;
    char buffer[4096];
    while (Clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now()).count();
        if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left))) <= 0) continue;
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
}

int statusOf(const std::string& answer) {
    if (answer.size() < 12 || !answer.starts_with("HTTP/1.1 ")) return 0;
    return std::stoi(answer.substr(9, 3));
}

// Sends `head` then `body` (on a thread of its own, ignoring a closed connection) while
// reading the answer; returns the answer and how long its first bytes took to arrive.
std::pair<std::string, milliseconds> attack(int port, const std::string& head, std::function<void(int)> body = {}) {
    const int fd = connectFrom("127.0.0.1", port);
    REQUIRE(fd >= 0);
    const auto started = Clock::now();
    std::thread sender([&] {
        sendAll(fd, head);
        if (body) body(fd);
    });
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 10'000);
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
    const std::string answer = readUntilClosed(fd, milliseconds(10'000));
    ::shutdown(fd, SHUT_RDWR);
    sender.join();
    ::close(fd);
    return {answer, took};
}

std::string oneRequest(int port, const std::string& bytes, const std::string& source = "127.0.0.1") {
    const int fd = connectFrom(source, port);
    REQUIRE(fd >= 0);
    sendAll(fd, bytes);
    std::string answer = readUntilClosed(fd, milliseconds(10'000));
    ::close(fd);
    return answer;
}

long rssKiB(pid_t pid) {
    const std::string status = common::readFile(fmt::format("/proc/{}/status", pid));
    const auto at = status.find("VmRSS:");
    REQUIRE(at != std::string::npos);
    return std::stol(status.substr(at + 6));
}

int openDescriptors(pid_t pid) {
    int n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", pid))) ++n;
    return n;
}

std::vector<Json> auditLines(const fs::path& log, std::size_t* longest = nullptr) {
    std::vector<Json> out;
    for (const auto& e : policy::readAuditLog(log)) {
        if (longest) *longest = std::max(*longest, e.line.size());
        out.push_back(Json::parse(e.line));
    }
    return out;
}

// Entries of this type whose fields hold `key` == `value`.
int countEntries(const std::vector<Json>& lines, std::string_view type, std::string_view key = {},
                 std::string_view value = {}) {
    int n = 0;
    for (const auto& l : lines)
        if (l["type"] == type && (key.empty() || l["fields"].value(std::string(key), "") == value)) ++n;
    return n;
}

std::int64_t suppressedCount(const std::vector<Json>& lines) {
    std::int64_t n = 0;
    for (const auto& l : lines)
        if (l["type"] == "unauthenticated_suppressed") n += l["fields"]["count"].get<std::int64_t>();
    return n;
}

}  // namespace

TEST_CASE("descriptors: 2,000 connection attempts and 200 held idle under RLIMIT_NOFILE 1024 cost no frame, and a police fetch is answered") {
    // The deadline is 3 s here (10 s by default) so that the 12 s hold sees the held
    // connections cut and reopened four times over. Served over HTTPS, as deployed: the police
    // fetch pins the camera's TLS key while the attacker holds connections open.
    Camera camera(Json{{"request_deadline_seconds", 3}, {"insecure_http", false}});
    const pid_t pid = camera.endpointPid();  // the process that holds the connections
    const int baseline = openDescriptors(pid);

    std::vector<int> held;
    for (int i = 0; i < 2000; ++i) {
        const int fd = connectFrom(kAttacker, camera.port);
        if (fd < 0) continue;
        if (held.size() < 200) held.push_back(fd);
        else ::close(fd);
    }
    CHECK(held.size() == 200);

    // Hold 200 for 12 s, reopening each one the camera cuts; meanwhile the police fetch.
    std::atomic<bool> holding{true};
    std::atomic<int> reopened{0};
    int mostDescriptors = 0;
    std::thread holder([&] {
        while (holding) {
            for (int& fd : held) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 0) == 1) {  // closed by the camera (or its 503)
                    ::close(fd);
                    fd = connectFrom(kAttacker, camera.port);
                    ++reopened;
                }
            }
            std::this_thread::sleep_for(milliseconds(100));
        }
    });
    std::this_thread::sleep_for(milliseconds(6000));
    const UtcMicros from = camera.recording + 1 * kMicrosPerSecond, to = camera.recording + 3 * kMicrosPerSecond;
    const auto fetchStarted = Clock::now();
    FetchResult fetched;
    CHECK_NOTHROW(fetched = camera.fixture.fetch(camera.dir.path() / "request.json", from, to,
                                                 fmt::format("https://127.0.0.1:{}", camera.port), camera.dir.path() / "case"));
    const auto fetchTook = std::chrono::duration_cast<milliseconds>(Clock::now() - fetchStarted);
    CHECK(verifyExtractDir(camera.dir.path() / "case", camera.fixture.camera.publicKey().signKey).ok);
    for (int i = 0; i < 60; ++i) {
        mostDescriptors = std::max(mostDescriptors, openDescriptors(pid));
        std::this_thread::sleep_for(milliseconds(100));
    }
    holding = false;
    holder.join();
    for (int fd : held)
        if (fd >= 0) ::close(fd);

    // The network side stayed within its budget: 8 from the attacker's address at most, each
    // with at most one file, far from the 1,024 descriptors and from the 200 held. (Seen: +19
    // and +20; the slack is for the recorder's own files, which come and go with segments.)
    CHECK(mostDescriptors - baseline <= 2 * 8 + 24);
    CHECK(reopened > 200);  // the held connections were cut (503 or deadline) and tried again
    const int dropped = camera.stopAndCheckRecorder();
    CHECK(dropped == 0);
    const auto lines = auditLines(camera.auditLog());
    CHECK(countEntries(lines, "request_granted") == 1);
    CHECK(countEntries(lines, "extract_delivered") == 1);
    CHECK(countEntries(lines, "http_refused", "reason", "connections_per_peer") >= 1);
    CHECK(suppressedCount(lines) > 0);
    MESSAGE(fmt::format("descriptors attack: fetch {} ms, daemon descriptors baseline {} max {}, {} reconnects, "
                        "recorder dropped {} frames",
                        fetchTook.count(), baseline, mostDescriptors, reopened.load(), dropped));
}

TEST_CASE("memory: chunked, Transfer-Encoding with Content-Length, bodies on PUT/PATCH/DELETE and 10,000 header lines get a quick 4xx each, audited, RSS within 64 MB") {
    Camera camera;
    const pid_t pid = camera.endpointPid();  // the process that reads the bodies
    std::this_thread::sleep_for(milliseconds(1000));
    const long rssBefore = rssKiB(pid);

    // 64 MB behind each head: what a reader that buffers whole bodies would have kept.
    const auto flood = [](int fd) {
        const std::string piece(64 * 1024, 'x');
        for (int i = 0; i < 1024; ++i) {
            if (::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) <= 0) return;
        }
    };
    const auto chunks = [](int fd) {
        const std::string chunk = fmt::format("10000\r\n{}\r\n", std::string(0x10000, 'x'));
        for (int i = 0; i < 1024; ++i)
            if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) return;
    };
    std::string manyHeaders = "GET /v1/extracts/00000000000000000000000000000000 HTTP/1.1\r\nHost: camera\r\n";
    for (int i = 0; i < 10'000; ++i) manyHeaders += fmt::format("X-Filler-{}: {}\r\n", i, std::string(16, 'a'));
    manyHeaders += "\r\n";
    std::string shortHeaders = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 100; ++i) shortHeaders += fmt::format("X{}: y\r\n", i);
    shortHeaders += "\r\n";
    std::string longHeader = "GET / HTTP/1.1\r\nHost: camera\r\nX-Long: " + std::string(1 << 20, 'b') + "\r\n\r\n";

    struct Case {
        std::string name;
        std::string head;
        std::function<void(int)> body;
        int status;
        std::string type;    // audit entry
        std::string reason;
    };
    const std::vector<Case> cases = {
        {"chunked POST", "POST /v1/requests HTTP/1.1\r\nHost: camera\r\nTransfer-Encoding: chunked\r\n\r\n", chunks, 411,
         "request_refused", "length_required"},
        {"Transfer-Encoding and Content-Length",
         "POST /v1/requests HTTP/1.1\r\nHost: camera\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n", chunks,
         411, "request_refused", "length_required"},
        {"PUT with a body", "PUT /v1/requests HTTP/1.1\r\nHost: camera\r\nContent-Length: 67108864\r\n\r\n", flood, 400,
         "http_refused", "body_not_allowed"},
        {"PATCH chunked", "PATCH /v1/requests HTTP/1.1\r\nHost: camera\r\nTransfer-Encoding: chunked\r\n\r\n", chunks, 411,
         "http_refused", "length_required"},
        {"DELETE with gzip coding", "DELETE /v1/extracts HTTP/1.1\r\nHost: camera\r\nTransfer-Encoding: gzip\r\n\r\n", flood,
         411, "http_refused", "length_required"},
        {"10,000 header lines", manyHeaders, {}, 431, "http_refused", "header_too_large"},
        {"100 short header lines", shortHeaders, {}, 431, "http_refused", "too_many_headers"},
        {"a 1 MB header line", longHeader, {}, 431, "http_refused", "header_too_large"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const auto [answer, took] = attack(camera.port, c.head, c.body);
        CHECK(statusOf(answer) == c.status);
        CHECK(took < milliseconds(1000));
        const auto lines = auditLines(camera.auditLog());
        CHECK(countEntries(lines, c.type, "reason", c.reason) >= 1);
        if (c.type == "request_refused") CHECK(lines[lines.size() - 2]["type"] == "request_received");
    }
    const long rssAfter = rssKiB(pid);
    CHECK(rssAfter - rssBefore < 64 * 1024);
    // And the endpoint still answers: an unknown route is a 404.
    CHECK(statusOf(oneRequest(camera.port, "GET /v1/live HTTP/1.1\r\nHost: camera\r\n\r\n")) == 404);
    const int dropped = camera.stopAndCheckRecorder();
    CHECK(dropped == 0);
    MESSAGE(fmt::format("memory attacks: RSS {} -> {} KiB, recorder dropped {} frames", rssBefore, rssAfter, dropped));
}

TEST_CASE("slow clients: 50 clients trickling a byte every 4 s are each cut at the deadline, and probes are answered within 2 s") {
    constexpr int kDeadlineMs = 6000;  // 10 s by default; 6 s lets each slow client send twice
    Camera camera(Json{{"request_deadline_seconds", kDeadlineMs / 1000}});
    struct Slow {
        int fd = -1;
        Clock::time_point opened;
        std::optional<milliseconds> cutAfter;
    };
    std::vector<Slow> slow(50);
    for (std::size_t i = 0; i < slow.size(); ++i) {
        slow[i].fd = connectFrom(fmt::format("127.0.0.{}", 10 + i), camera.port);  // 50 peers
        REQUIRE(slow[i].fd >= 0);
        slow[i].opened = Clock::now();
    }
    std::atomic<bool> done{false};
    std::thread trickler([&] {
        const std::string_view request = "POST /v1/requests HTTP/1.1\r\n";
        std::size_t sent = 0;
        auto nextByte = Clock::now();
        while (!done) {
            if (Clock::now() >= nextByte) {
                for (auto& s : slow)
                    if (!s.cutAfter) (void)::send(s.fd, request.data() + sent, 1, MSG_NOSIGNAL);
                ++sent;
                nextByte += milliseconds(4000);
            }
            for (auto& s : slow) {
                if (s.cutAfter) continue;
                pollfd p{s.fd, POLLIN, 0};
                if (::poll(&p, 1, 0) == 1) {
                    char c;
                    if (::recv(s.fd, &c, 1, MSG_DONTWAIT) <= 0)
                        s.cutAfter = std::chrono::duration_cast<milliseconds>(Clock::now() - s.opened);
                }
            }
            std::this_thread::sleep_for(milliseconds(20));
        }
    });
    // Probes from another address while the 50 are open: an unknown extract (404) and a
    // garbage request (400), each answered at once.
    milliseconds slowestProbe{0};
    for (int i = 0; i < 4; ++i) {
        std::this_thread::sleep_for(milliseconds(1000));
        const auto t0 = Clock::now();
        const std::string a = oneRequest(camera.port, "GET /v1/extracts/0123456789abcdef0123456789abcdef/manifest HTTP/1.1\r\n\r\n");
        const std::string b = oneRequest(camera.port, "POST /v1/requests HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        slowestProbe = std::max(slowestProbe, std::chrono::duration_cast<milliseconds>(Clock::now() - t0));
        CHECK(statusOf(a) == 404);
        CHECK(statusOf(b) == 400);
    }
    CHECK(slowestProbe < milliseconds(2000));
    std::this_thread::sleep_for(milliseconds(kDeadlineMs + 2000 - 4000));
    done = true;
    trickler.join();
    milliseconds earliest{1'000'000}, latest{0};
    for (const auto& s : slow) {
        CHECK(s.cutAfter.has_value());
        if (s.cutAfter) {
            earliest = std::min(earliest, *s.cutAfter);
            latest = std::max(latest, *s.cutAfter);
        }
        ::close(s.fd);
    }
    CHECK(earliest >= milliseconds(kDeadlineMs - 100));
    CHECK(latest <= milliseconds(kDeadlineMs + 1500));
    const int dropped = camera.stopAndCheckRecorder();
    CHECK(dropped == 0);
    const auto lines = auditLines(camera.auditLog());
    // Each cut is recorded, one by one within the budget and counted beyond it.
    CHECK(countEntries(lines, "http_refused", "reason", "deadline") + suppressedCount(lines) >= 50);
    MESSAGE(fmt::format("slow clients: cut after {}..{} ms (deadline {} ms), slowest probe {} ms, recorder dropped {} frames",
                        earliest.count(), latest.count(), kDeadlineMs, slowestProbe.count(), dropped));
}

TEST_CASE("audit flood: 1,000 unauthenticated garbage requests grow the audit log by at most the documented cap") {
    Camera camera;
    std::this_thread::sleep_for(milliseconds(500));
    const std::uintmax_t before = camera.auditBytes();
    std::mt19937 random(7);
    const auto t0 = Clock::now();
    for (int i = 0; i < 1000; ++i) {
        std::string request;
        if (i % 4 == 3) {
            // A route that does not exist, with a long target full of control characters.
            std::string target = "/";
            for (int k = 0; k < 2000; ++k) target += static_cast<char>('a' + random() % 26);
            request = fmt::format("GET {} HTTP/1.1\r\nHost: camera\r\n\r\n", target);
        } else {
            // A body that names thousands of unknown members: what once took 33 KB per entry.
            std::string body = "{";
            for (int k = 0; k < 1000; ++k) body += fmt::format("\"\\u001b[2Kfake{}\": 1,", random());
            body += "\"x\": 1}";
            if (body.size() > 32000) body.resize(32000);
            request = fmt::format("POST /v1/requests HTTP/1.1\r\nHost: camera\r\nContent-Length: {}\r\n\r\n{}", body.size(), body);
        }
        const std::string answer = oneRequest(camera.port, request);
        CHECK((statusOf(answer) == 400 || statusOf(answer) == 404));
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::uintmax_t during = camera.auditBytes() - before;
    const int dropped = camera.stopAndCheckRecorder();
    CHECK(dropped == 0);

    // docs/retrieval-http.md, "Audit budget": at most (burst + per_minute x minutes) admitted
    // requests of at most 3 lines of at most 1,024 bytes, plus a checkpoint (at most 512
    // bytes) per 64 entries. Defaults: burst 20, 6 per minute.
    const double admitted = 20 + 6 * seconds / 60 + 1;
    const double cap = admitted * 3 * 1024 * (1 + 512.0 / (64 * 1024));
    CHECK(static_cast<double>(during) <= cap);
    std::size_t longest = 0;
    const auto lines = auditLines(camera.auditLog(), &longest);
    CHECK(longest <= 1024);
    // Every request is accounted for: written one by one or counted as suppressed.
    const int written = countEntries(lines, "request_refused") + countEntries(lines, "http_refused");
    CHECK(written + suppressedCount(lines) >= 1000);
    CHECK(suppressedCount(lines) > 900);
    MESSAGE(fmt::format("audit flood: 1,000 requests in {:.1f} s grew the audit log by {} bytes (cap {:.0f}); "
                        "{} written, {} suppressed; recorder dropped {} frames",
                        seconds, during, cap, written, suppressedCount(lines), dropped));
}

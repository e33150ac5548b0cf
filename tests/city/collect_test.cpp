// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori fleet collect` and `mimamori report` against two real mimamorid on 127.0.0.1, a
// closed port and a camera that never finishes its answer.
#include "../retrieval/fixture.hpp"
#include "../support/daemon_process.hpp"
#include "../support/run_command.hpp"

#include "mimamori/city/archive.hpp"
#include "mimamori/city/fiscal_year.hpp"
#include "mimamori/common/file.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <thread>

namespace {

using namespace mimamori;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

const std::string kCli = MIMAMORI_BINARY_DIR "/apps/mimamori";

// One real camera: its folder, port and daemon; its keys are in the shared keys/ folder.
struct Camera {
    std::string id;
    fs::path dir;
    int port = 0;
    std::unique_ptr<mimamori::testing::Daemon> daemon;
    std::string url() const { return fmt::format("https://127.0.0.1:{}", port); }
};

void writeConfig(const Camera& cam) {
    fs::create_directories(cam.dir);
    common::writeFileAtomic(cam.dir / "masks.json",
                            fmt::format(R"({{"version": 1, "camera": "{}", "masks": [{{"name": "house",
                                "polygon": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]}}]}})",
                                        cam.id));
    common::writeFileAtomic(
        cam.dir / "mimamorid.json",
        fmt::format(R"({{"camera_id": "{0}", "source": {{"kind": "test", "width": 160, "height": 120, "framerate": 10}},
 "segment_seconds": 1, "storage": {{"path": "ring"}}, "mask_file": "masks.json", "key_dir": "daykeys",
 "state_dir": "state", "retrieval": {{"address": "127.0.0.1", "port": {1}, "trust_file": "../trust.json",
 "camera_key": "../keys/{0}.secret"}}}}
)",
                    cam.id, cam.port));
}

void start(Camera& cam) {
    cam.daemon = std::make_unique<mimamori::testing::Daemon>(
        std::vector<std::string>{"--config", (cam.dir / "mimamorid.json").string()}, cam.dir / "daemon.log");
    cam.daemon->waitForLog(fmt::format("127.0.0.1:{}", cam.port));
}

// A camera that accepts a connection, takes the request and then sends the start of an answer
// one byte every 200 ms, never finishing it: each read gets a byte long before a read timeout.
class TricklingCamera {
public:
    TricklingCamera() : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_.get(), 8) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::jthread([this](std::stop_token stop) { serve(stop); });
    }
    int port() const { return port_; }

private:
    void serve(const std::stop_token& stop) {
        while (!stop.stop_requested()) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            const common::UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (!client.valid()) continue;
            const std::string head = "HTTP/1.1 200 OK\r\nX-Slow: ";
            for (std::size_t sent = 0; !stop.stop_requested(); ++sent) {
                char sink[4096];
                while (::recv(client.get(), sink, sizeof sink, 0) > 0) {
                }
                const char byte = sent < head.size() ? head[sent] : 'a';
                if (::send(client.get(), &byte, 1, MSG_NOSIGNAL) != 1) break;  // the collector hung up
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        }
    }

    common::UniqueFd listener_;
    int port_ = 0;
    std::jthread thread_;  // last: stopped and joined before the socket closes
};

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// The summary table's row of `id` (the line starting with it), or "".
std::string rowOf(const std::string& table, const std::string& id) {
    for (std::size_t at = 0; at < table.size();) {
        const std::size_t nl = table.find('\n', at);
        const std::string line = table.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        if (line.starts_with(id + " ")) return line;
        if (nl == std::string::npos) break;
        at = nl + 1;
    }
    return "";
}

// Every archived byte of a camera, file by file.
std::map<fs::path, std::string> archivedBytes(const fs::path& cameraDir) {
    std::map<fs::path, std::string> bytes;
    for (const auto& e : fs::recursive_directory_iterator(cameraDir))
        if (e.is_regular_file()) bytes[e.path()] = common::readFile(e.path());
    return bytes;
}

}  // namespace

TEST_CASE("fleet collect over two real cameras, a closed port and a camera too slow to answer: each problem within "
          "the timeout, the report's figures what happened, nothing stored twice, a cut-back log flagged and the "
          "archive's lines kept") {
    TempDir dir;
    const fs::path keys = dir.path() / "keys";
    fs::create_directories(keys);
    const auto police = policy::generateKey(policy::Role::Police, "hyogo-kakogawa-1");
    const auto city = policy::generateKey(policy::Role::City, "kakogawa-city");
    policy::writeKeyFiles(police, keys);
    policy::writeKeyFiles(city, keys);
    policy::TrustStore trust;
    trust.add(police.publicKey());
    trust.add(city.publicKey());
    common::writeFileAtomic(dir.path() / "trust.json", trust.toJson());
    std::vector<Camera> cams(2);
    cams[0].id = "kakogawa-0101";
    cams[1].id = "kakogawa-0102";
    for (auto& cam : cams) {
        cam.dir = dir.path() / cam.id;
        cam.port = mimamori::testing::freePort();
        policy::writeKeyFiles(policy::generateKey(policy::Role::Camera, cam.id), keys);
        retrieval::writeTlsIdentity(keys, cam.id);
        writeConfig(cam);
        start(cam);
    }
    std::this_thread::sleep_for(std::chrono::seconds(4));  // footage to ask for

    // What happens: camera 1 provides one clip for a criminal investigation and refuses a
    // disclosure request; camera 2 provides one in an emergency and refuses a disclosure request
    // and an expired request.
    auto fetch = [&](const Camera& cam, const std::string& ground, common::UtcMicros issued, const std::string& name) {
        const auto now = common::SystemClock().nowUtc();
        policy::Request r = investigationRequest(cam.id, issued, 3600 * kMicrosPerSecond, now - 3 * kMicrosPerSecond,
                                                 now - 1 * kMicrosPerSecond, police);
        r.groundWord = ground;
        r.ground = policy::classifyGround(ground);
        const auto file = dir.path() / (name + ".request");
        common::writeFileAtomic(file, approvedRequest(r, police, city));
        retrieval::FetchOptions o;
        o.requestFile = file;
        o.cameraUrl = cam.url();
        o.policeKeyFile = keys / "hyogo-kakogawa-1.secret";
        o.cameraKeyFile = keys / (cam.id + ".pub");
        o.outDir = dir.path() / name;
        return retrieval::fetchExtract(o);
    };
    const auto now = common::SystemClock().nowUtc();
    CHECK(fetch(cams[0], "criminal-investigation", now, "c1-granted").manifest.mp4Bytes > 0);
    CHECK_THROWS_AS((void)fetch(cams[0], "disclosure", now, "c1-disclosure"), retrieval::FetchError);
    CHECK(fetch(cams[1], "emergency", now, "c2-granted").manifest.mp4Bytes > 0);
    CHECK_THROWS_AS((void)fetch(cams[1], "disclosure", now, "c2-disclosure"), retrieval::FetchError);
    CHECK_THROWS_AS((void)fetch(cams[1], "criminal-investigation", now - 7200 * kMicrosPerSecond, "c2-expired"),
                    retrieval::FetchError);

    // The fleet: a camera that never finishes its answer and a closed port first, so that with
    // two workers the real cameras wait behind them unless they are cut off in time.
    TricklingCamera slow;
    const int closedPort = mimamori::testing::freePort();
    auto entry = [](const std::string& id, const std::string& url) {
        return Json{{"id", id}, {"url", url}, {"key", "keys/" + id + ".pub"}};
    };
    Json fleet = {{"format", "mimamori-fleet-1"},
                  {"cameras", {entry("kakogawa-0900", fmt::format("http://127.0.0.1:{}", slow.port())),
                               entry("kakogawa-0901", fmt::format("http://127.0.0.1:{}", closedPort)),
                               entry(cams[0].id, cams[0].url()), entry(cams[1].id, cams[1].url())}}};
    for (const char* id : {"kakogawa-0900", "kakogawa-0901"})
        policy::writeKeyFiles(policy::generateKey(policy::Role::Camera, id), keys);
    common::writeFileAtomic(dir.path() / "FLEET-all.json", fleet.dump(2));
    fleet["cameras"].erase(fleet["cameras"].begin(), fleet["cameras"].begin() + 2);
    common::writeFileAtomic(dir.path() / "FLEET.json", fleet.dump(2));
    const fs::path archive = dir.path() / "archive";
    const auto command = [&](const std::string& fleetFile, const std::string& extra) {
        return fmt::format("{} fleet collect --fleet {} --key {} --archive {} --jobs 2 {}", kCli,
                           (dir.path() / fleetFile).string(), (keys / "kakogawa-city.secret").string(),
                           archive.string(), extra);
    };
    const auto collect = [&](const std::string& fleetFile, const std::string& extra = "") {
        return mimamori::testing::runCommand(
            fmt::format("{} 2>{}", command(fleetFile, extra), (dir.path() / "stderr.txt").string()));
    };

    const auto began = std::chrono::steady_clock::now();
    const auto first = collect("FLEET-all.json", "--timeout 3 --insecure-http");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    const std::string progress = common::readFile(dir.path() / "stderr.txt");
    INFO(first.output, progress);
    CHECK(first.status == 1);
    // Cut off at its 3 s, not after the 200 ms reads that each arrived in time (they would go on
    // for hours); the real cameras are collected meanwhile by the other worker.
    CHECK(seconds < 30);
    CHECK(rowOf(first.output, "kakogawa-0900").find("no complete answer within 3 s") != std::string::npos);
    CHECK(rowOf(first.output, "kakogawa-0901").find("cannot reach the camera") != std::string::npos);
    for (const auto& cam : cams) {
        const std::string row = rowOf(first.output, cam.id);
        CHECK(row.starts_with(cam.id + "  yes"));
        CHECK(row.ends_with("  -"));
    }
    CHECK(first.output.find("4 cameras: 2 reached") != std::string::npos);
    CHECK(count(progress, "fleet collect: ") == 4);  // stderr is not a terminal: one line per camera
    CHECK(progress.find("fleet collect: 4/4 ") != std::string::npos);
    // A network problem is this run's, not the camera log's: a camera never reached gets no
    // folder (no problems file, no place in the report).
    CHECK_FALSE(fs::exists(archive / "kakogawa-0900"));
    CHECK_FALSE(fs::exists(archive / "kakogawa-0901"));
    for (const auto& cam : cams) CHECK(fs::exists(archive / cam.id / "health" / (city::jstDay(now) + ".json")));

    const int year = city::fiscalYearOf(now);
    const fs::path out = dir.path() / "report";
    const std::string reportCommand = fmt::format("{} report --fiscal-year {} --archive {} --out {} --lang en", kCli,
                                                  year, archive.string(), out.string());
    const auto report = mimamori::testing::runCommand(reportCommand);
    INFO(report.output);
    REQUIRE(report.status == 0);
    const Json figures = Json::parse(common::readFile(out / "report.json"));
    CHECK(figures["cameras_archived"] == 2);
    CHECK(figures["cameras_in_operation"] == 2);
    CHECK(figures["provisions"]["total"] == 2);
    CHECK(figures["provisions"]["by_ground"]["criminal-investigation"] == 1);
    CHECK(figures["provisions"]["by_ground"]["emergency"] == 1);
    CHECK(figures["provisions"]["by_ground"]["law"] == 0);
    CHECK(figures["extracts"]["count"] == 2);
    CHECK(figures["refusals"]["disclosure"] == 2);
    CHECK(figures["refusals"]["by_reason"] == Json{{"expired", 1}});
    CHECK(figures["cameras_marked"].empty());

    // Again, on a terminal (script(1) gives it one; stdout and stderr both go to it): only what
    // the cameras wrote since (the first collection's own entries), nothing twice; a progress bar.
    const auto second = mimamori::testing::runCommand(
        fmt::format("script -qec '{}' /dev/null", command("FLEET.json", "")));
    INFO(second.output);
    CHECK(second.status == 0);
    CHECK(second.output.find("\r[########################################] 2/2 cameras\r\n") != std::string::npos);
    CHECK(second.output.find("fleet collect: ") == std::string::npos);
    std::vector<std::uint64_t> ends;
    for (std::size_t i = 0; i < cams.size(); ++i) {
        std::string joined;
        for (const int y : city::archivedYears(archive / cams[i].id))
            joined += common::readFile(archive / cams[i].id / "audit" / city::auditFileName(y));
        const fs::path copy = dir.path() / "joined.log";
        common::writeFileAtomic(copy, joined);
        const auto verified = policy::verifyAuditLog(copy, policy::loadPublicKey(keys / (cams[i].id + ".pub")).signKey);
        CHECK_MESSAGE(verified.ok, verified.reason);  // one chain: a line stored twice would break its seq
        CHECK(count(joined, "\"type\":\"request_granted\"") == 1);
        CHECK(count(joined, "\"type\":\"logs_collected\"") == 1);  // the second collection's is on the camera only
        ends.push_back(city::CameraArchive(archive, cams[i].id).end().seq);
        CHECK(rowOf(second.output, cams[i].id).find("  -") != std::string::npos);
    }

    // Camera 2's log cut back by someone with root (its last lines and its checkpoint state
    // removed) and re-extended past what the archive holds: the camera starts again on it.
    cams[1].daemon->signal(SIGTERM);
    CHECK(cams[1].daemon->wait() == 0);
    const fs::path cameraAudit = cams[1].dir / "state" / "audit";
    fs::path newest;
    for (const auto& e : fs::directory_iterator(cameraAudit))
        if (e.path().extension() == ".log" && e.path() > newest) newest = e.path();
    std::string log = common::readFile(newest);
    for (int cut = 0; cut < 6; ++cut) log.erase(log.rfind('\n', log.size() - 2) + 1);
    common::writeFileAtomic(newest, log);
    fs::remove(cameraAudit / "audit.checkpoint");
    const auto before = archivedBytes(archive / cams[1].id / "audit");
    start(cams[1]);
    for (int i = 0; i < 40 && policy::readAuditLog(cameraAudit).size() <= ends[1] + 2; ++i)
        CHECK_THROWS_AS((void)fetch(cams[1], "disclosure", common::SystemClock().nowUtc(), "again"),
                        retrieval::FetchError);

    REQUIRE(policy::readAuditLog(cameraAudit).size() > ends[1] + 2);
    const auto third = collect("FLEET.json");
    INFO(third.output);
    CHECK(third.status == 1);
    CHECK(rowOf(third.output, cams[0].id).ends_with("  -"));
    CHECK(rowOf(third.output, cams[1].id).find("no longer extends the archive") != std::string::npos);
    CHECK(archivedBytes(archive / cams[1].id / "audit") == before);
    CHECK(count(common::readFile(archive / cams[1].id / "problems"), "\n") == 1);
    const auto marked = mimamori::testing::runCommand(reportCommand + " 2>/dev/null");
    CHECK(marked.status == 1);
    CHECK(Json::parse(common::readFile(out / "report.json"))["cameras_marked"] == Json::array({cams[1].id}));
}

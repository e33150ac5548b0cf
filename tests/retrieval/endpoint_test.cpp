// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint over real HTTP on 127.0.0.1 with a real store: grants, the refusal matrix (each
// refused AND audited), 503 when busy, resumed downloads, and verify catching tampering.
#include "endpoint_http.hpp"
#include "fixture.hpp"
#include "../support/run_command.hpp"

#include "mimamori/common/config_error.hpp"
#include "mimamori/policy/decision.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/http_server.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <doctest/doctest.h>
#include <fmt/ranges.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <optional>
#include <random>
#include <sstream>

#include <sys/wait.h>
#include <mutex>
#include <thread>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

namespace {

constexpr UtcMicros kSec = kMicrosPerSecond;

struct Answer {
    int status = 0;
    std::string code;
    std::string body;
    std::string retryAfter;
};

Answer post(const World& w, const std::string& bytes) {
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    cli.set_read_timeout(30, 0);
    const auto res = cli.Post("/v1/requests", bytes, "application/json");
    REQUIRE(res);
    Answer a{res->status, "", res->body, res->get_header_value("Retry-After")};
    const Json j = Json::parse(res->body, nullptr, false);
    if (j.is_object() && j.contains("error")) a.code = j["error"].get<std::string>();
    if (j.is_object() && j.contains("extract_id")) a.code = "extract:" + j["extract_id"].get<std::string>();
    return a;
}

// The last two audit entries are "request_received" then "request_refused" with this reason.
void checkRefusalAudited(const World& w, const std::string& reason) {
    const auto entries = w.auditEntries();
    REQUIRE(entries.size() >= 2);
    const auto& refused = entries[entries.size() - 1].type == "checkpoint" ? entries[entries.size() - 2] : entries.back();
    const auto& received = entries[&refused - entries.data() - 1];
    CHECK(received.type == "request_received");
    CHECK(refused.type == "request_refused");
    const Json fields = Json::parse(refused.fieldsJson);
    CHECK(fields.value("reason", "") == reason);
}

// A store whose reads wait until released, so an extract can be held "in progress".
class GatedStore final : public store::SegmentStore {
public:
    explicit GatedStore(store::SegmentStore& inner) : inner_(inner) {}
    std::unique_ptr<store::SegmentWriter> beginSegment(UtcMicros start) override { return inner_.beginSegment(start); }
    std::vector<store::SegmentInfo> list(UtcMicros from, UtcMicros to) const override { return inner_.list(from, to); }
    common::Result<void> read(const store::SegmentInfo& s,
                              const std::function<void(std::span<const std::uint8_t>)>& sink) const override {
        std::unique_lock lock(mutex_);
        ++waiting_;
        cond_.notify_all();
        cond_.wait(lock, [this] { return open_; });
        lock.unlock();
        return inner_.read(s, sink);
    }
    void setHoldProvider(HoldProvider provider) override { inner_.setHoldProvider(std::move(provider)); }
    Enforcement enforce() override { return inner_.enforce(); }
    Usage usage() const override { return inner_.usage(); }
    std::vector<std::string> openFindings() const override { return inner_.openFindings(); }
    void waitForReader() {
        std::unique_lock lock(mutex_);
        cond_.wait(lock, [this] { return waiting_ > 0; });
    }
    void release() {
        std::lock_guard lock(mutex_);
        open_ = true;
        cond_.notify_all();
    }

private:
    store::SegmentStore& inner_;
    mutable std::mutex mutex_;
    mutable std::condition_variable cond_;
    mutable int waiting_ = 0;
    bool open_ = false;
};

}  // namespace

TEST_CASE("end to end: a granted request yields a verified clip that decodes and covers the range") {
    World w;
    const UtcMicros from = kT0 + 5 * kSec + 500'000, to = kT0 + 12 * kSec + 300'000;
    const fs::path requestFile = w.writeRequest(w.approved(w.request(from, to)));
    const fs::path out = w.dir.path() / "police";

    const FetchResult r = fetchExtract(fetchOptions(w, requestFile, out));
    const Manifest& m = r.manifest;
    CHECK(m.cameraId == w.cameraId);
    CHECK(m.requestedFrom == from);
    CHECK(m.requestedTo == to);
    // Whole 1 s GOPs: at most one GOP outside the range on each end.
    CHECK(m.actualFrom <= from);
    CHECK(m.actualFrom > from - kSec);
    CHECK(m.actualTo >= to);
    CHECK(m.actualTo < to + kSec);
    CHECK(m.actualFrom == kT0 + 5 * kSec);
    CHECK(m.actualTo == kT0 + 13 * kSec);
    CHECK(m.frames == 8 * kFps);
    CHECK(m.maskSha256 == std::string(64, 'a'));
    CHECK(m.software == std::string("mimamori ") + MIMAMORI_VERSION);

    const Decoded d = decodeMp4(out / kClipFile);
    CHECK(d.frames == 8 * kFps);
    CHECK(d.lastEnd - d.firstPts == doctest::Approx(8 * kSec).epsilon(0.001));

    const VerifyResult v = verifyExtractDir(out, w.camera->publicKey().signKey);
    CHECK_MESSAGE(v.ok, v.reason);

    // Audit: received, granted, the hold, delivered with the clip's hash, the hold released;
    // the plan is all that is at rest.
    waitForEntries(w, "evidence_hold_released", 1);
    const auto entries = w.auditEntries();
    std::vector<std::string> types;
    for (const auto& e : entries)
        if (e.type != "checkpoint") types.push_back(e.type);
    CHECK(types == std::vector<std::string>{"request_received", "request_granted", "evidence_hold", "extract_delivered",
                                            "evidence_hold_released"});
    // Grant and delivery name the request by its hash (ids need not be unique), the delivery
    // the range that actually left the camera and the peer that took it.
    const std::string requestSha = sha256Hex(common::readFile(requestFile));
    for (const auto& e : entries) {
        const Json f = Json::parse(e.fieldsJson);
        if (e.type == "request_received" || e.type == "request_granted") CHECK(f.value("request_sha256", "") == requestSha);
        if (e.type != "extract_delivered") continue;
        CHECK(f.value("sha256", "") == m.mp4Sha256);
        CHECK(f.value("request_sha256", "") == requestSha);
        CHECK(f.value("actual_from", "") == common::formatUtc(m.actualFrom));
        CHECK(f.value("actual_to", "") == common::formatUtc(m.actualTo));
        CHECK(f.value("remote", "") == "127.0.0.1");
    }
    for (const auto& f : fs::directory_iterator(w.config.extractDir)) {
        const std::string name = f.path().filename().string();
        CHECK((name.ends_with(".plan") || name.ends_with(".delivered")));
        CHECK(fs::file_size(f.path()) < 16 * 1024);  // no footage: segments, formats, manifest
        CHECK(name.find(".mp4") == std::string::npos);
    }

    // Nothing but the documented routes answers, and nothing returns footage without the id.
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    CHECK(cli.Get("/")->status == 404);
    CHECK(cli.Get("/v1/extracts")->status == 404);
    CHECK(cli.Get("/v1/extracts/00000000000000000000000000000000")->status == 404);
    CHECK(cli.Get("/v1/live")->status == 404);
}

TEST_CASE("the refusal matrix: each request is refused with its reason and audited before the answer") {
    World w;
    const UtcMicros now = w.clock.nowUtc();
    const UtcMicros from = kT0 + 2 * kSec, to = kT0 + 6 * kSec;

    struct Case {
        std::string name;
        std::string bytes;
        int status;
        std::string reason;
    };
    std::vector<Case> cases;
    auto signedBy = [&](const policy::Request& r, const policy::SecretKey& p, const policy::SecretKey* c) {
        policy::SignedRequest s = policy::signRequest(r, p);
        if (c) policy::approveRequest(s, *c);
        return s;
    };
    {
        policy::SignedRequest s = policy::signRequest(w.request(from, to), *w.police);
        s.police.signature[5] ^= 0x20;
        policy::approveRequest(s, *w.city);
        cases.push_back({"bad police signature", policy::serializeSignedRequest(s), 403, "bad_police_signature"});
    }
    cases.push_back({"unknown police key", policy::serializeSignedRequest(signedBy(w.request(from, to), *w.strangerPolice, w.city.get())),
                     403, "unknown_police_key"});
    cases.push_back({"no approval", policy::serializeSignedRequest(signedBy(w.request(from, to), *w.police, nullptr)), 403,
                     "no_approval"});
    cases.push_back({"approval by a city key the camera does not trust",
                     policy::serializeSignedRequest(signedBy(w.request(from, to), *w.police, w.strangerCity.get())), 403,
                     "approval_not_by_city"});
    {
        // The police approving their own request: a trusted key, but not a city key.
        policy::SignedRequest s = policy::signRequest(w.request(from, to), *w.police);
        s.approval = policy::SignatureBlock{w.police->keyId(),
                                            policy::sign(*w.police, policy::approvalMessage(s.body, s.police.signature))};
        cases.push_back({"approval by a police key", policy::serializeSignedRequest(s), 403, "approval_not_by_city"});
    }
    auto variant = [&](auto change) {
        policy::Request r = w.request(from, to);
        change(r);
        return w.approved(r);
    };
    cases.push_back({"wrong camera", variant([](policy::Request& r) { r.cameraId = "kakogawa-0043"; }), 403, "wrong_camera"});
    cases.push_back({"expired", variant([&](policy::Request& r) {
                         r.issuedAt = now - 7200 * kSec;
                         r.expiresAt = now - 3600 * kSec;
                     }), 403, "expired"});
    cases.push_back({"not yet valid", variant([&](policy::Request& r) {
                         r.issuedAt = now + 3600 * kSec;
                         r.expiresAt = now + 7200 * kSec;
                     }), 403, "not_yet_valid"});
    cases.push_back({"range too long", variant([&](policy::Request& r) {
                         r.from = now - 7 * 3600 * kSec;
                         r.to = now - kSec;
                     }), 403, "range_too_long"});
    cases.push_back({"outside what the ring holds", variant([&](policy::Request& r) {
                         r.from = kT0 - 100 * kSec;
                         r.to = kT0 - 50 * kSec;
                     }), 403, "range_not_held"});
    cases.push_back({"in the future", variant([&](policy::Request& r) {
                         r.from = now - 10 * kSec;
                         r.to = now + 60 * kSec;
                     }), 403, "range_in_future"});
    cases.push_back({"disclosure request (Art. 8)", variant([](policy::Request& r) {
                         r.groundWord = "disclosure";
                         r.ground = policy::classifyGround(r.groundWord);
                     }), 403, "disclosure_request"});
    cases.push_back({"unknown ground", variant([](policy::Request& r) {
                         r.groundWord = "curiosity";
                         r.ground = policy::classifyGround(r.groundWord);
                     }), 403, "unknown_ground"});
    const std::string good = w.approved(w.request(from, to));
    cases.push_back({"truncated body", good.substr(0, good.size() / 2), 400, "malformed"});
    std::string garbled = good;
    for (std::size_t i = 40; i < garbled.size(); i += 7) garbled[i] = static_cast<char>(garbled[i] ^ 0x5a);
    cases.push_back({"garbled body", garbled, 400, "malformed"});
    cases.push_back({"empty body", "", 400, "malformed"});
    cases.push_back({"oversized body", std::string(40 * 1024, '{'), 413, "oversized"});

    for (const Case& c : cases) {
        CAPTURE(c.name);
        const Answer a = post(w, c.bytes);
        CHECK(a.status == c.status);
        CHECK(a.code == c.reason);
        checkRefusalAudited(w, c.reason);
    }
    CHECK(countEntries(w, "request_granted") == 0);
    CHECK(fs::is_empty(w.config.extractDir));

    // The good request is still granted afterwards: nothing above crashed or spent its nonce.
    CHECK(post(w, good).status == 202);
}

TEST_CASE("a replayed request is refused, also after the endpoint restarts") {
    World w;
    const std::string bytes = w.approved(w.request(kT0 + 2 * kSec, kT0 + 4 * kSec));
    const Answer first = post(w, bytes);
    REQUIRE(first.status == 202);
    waitReady(w, first.code.substr(8));

    Answer again = post(w, bytes);
    CHECK(again.status == 403);
    CHECK(again.code == "replayed_nonce");
    checkRefusalAudited(w, "replayed_nonce");

    // Restart: a new endpoint and nonce store read back from disk.
    w.endpoint->stop();
    w.endpoint.reset();
    w.nonces = std::make_unique<policy::NonceStore>(w.dir.path() / "state" / "nonces");
    w.startEndpoint(*w.store);
    again = post(w, bytes);
    CHECK(again.status == 403);
    CHECK(again.code == "replayed_nonce");
    checkRefusalAudited(w, "replayed_nonce");
    // The extract built before the restart is still served.
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    CHECK(cli.Get("/v1/extracts/" + first.code.substr(8) + "/manifest")->status == 200);
}

TEST_CASE("with K extracts building, another request gets 503 with Retry-After and keeps its nonce") {
    World w;
    w.endpoint->stop();
    GatedStore gated(*w.store);
    w.startEndpoint(gated);

    const Answer first = post(w, w.approved(w.request(kT0 + 2 * kSec, kT0 + 4 * kSec)));
    REQUIRE(first.status == 202);
    gated.waitForReader();  // the first extract is now being built

    // Its threads (the builder, which muxes, and the extract's reading thread, blocked in the
    // store) run at nice +10. The reading thread names itself once it runs, so look until it has.
    int lowered = 0, readers = 0, readersLowered = 0;
    for (int attempt = 0; attempt < 250 && !(readers == 1 && lowered == 2); ++attempt) {
        if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        lowered = readers = readersLowered = 0;
        for (const auto& task : fs::directory_iterator("/proc/self/task")) {
            std::string stat, comm;
            try {
                stat = common::readFile(task.path() / "stat");
                comm = common::readFile(task.path() / "comm");
            } catch (const common::FileError&) {
                continue;  // the thread ended meanwhile
            }
            // Field 19 of /proc/.../stat is the nice value; fields after the ")" are space separated.
            std::istringstream rest(stat.substr(stat.rfind(')') + 2));
            std::string field;
            for (int i = 3; i <= 19; ++i) rest >> field;
            const bool low = field == "10";
            lowered += low;
            if (comm.rfind("extract-reader", 0) == 0) {
                ++readers;
                readersLowered += low;
            }
        }
    }
    CHECK(readers == 1);
    CHECK(readersLowered == 1);
    CHECK(lowered == 2);  // and the builder

    const std::string second = w.approved(w.request(kT0 + 6 * kSec, kT0 + 8 * kSec));
    const Answer busy = post(w, second);
    CHECK(busy.status == 503);
    CHECK(busy.code == "busy");
    CHECK(busy.retryAfter == "30");
    checkRefusalAudited(w, "busy");
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    CHECK(cli.Get("/v1/extracts/" + first.code.substr(8))->status == 202);

    gated.release();
    waitReady(w, first.code.substr(8));
    const Answer retried = post(w, second);
    CHECK(retried.status == 202);
    waitReady(w, retried.code.substr(8));
    w.endpoint->stop();
}

TEST_CASE("a download cut halfway resumes where it stopped and yields the same verified clip") {
    World w;
    const fs::path requestFile = w.writeRequest(w.approved(w.request(kT0 + kSec, kT0 + 19 * kSec)));
    const fs::path out = w.dir.path() / "police";

    FetchOptions o = fetchOptions(w, requestFile, out);
    std::uint64_t stoppedAt = 0;
    o.onProgress = [&](std::uint64_t done, std::uint64_t total) {
        if (done * 2 < total) return true;
        stoppedAt = done;
        return false;  // the link drops
    };
    CHECK_THROWS_AS(fetchExtract(o), FetchError);
    REQUIRE(fs::exists(out / kPartialFile));
    CHECK(fs::file_size(out / kPartialFile) == stoppedAt);
    CHECK(!fs::exists(out / kClipFile));

    std::optional<std::uint64_t> firstProgress;
    o.onProgress = [&](std::uint64_t done, std::uint64_t) {
        if (!firstProgress) firstProgress = done;
        return true;
    };
    const FetchResult r = fetchExtract(o);
    CHECK(r.resumed);
    // The transfer starts where the partial file ends (the client reports that start): it
    // continued, it did not start over.
    REQUIRE(firstProgress);
    CHECK(*firstProgress == stoppedAt);
    CHECK(verifyExtractDir(out, w.camera->publicKey().signKey).ok);
    std::uint64_t size = 0;
    CHECK(fs::file_size(out / kClipFile) == r.manifest.mp4Bytes);
    (void)size;
    CHECK(decodeMp4(out / kClipFile).frames == static_cast<int>(r.manifest.frames));
    CHECK(countEntries(w, "request_granted") == 1);
    waitForEntries(w, "extract_delivered", 1);
    CHECK(countEntries(w, "extract_delivered") == 1);
}

TEST_CASE("verify detects a changed clip, a changed manifest, a foreign signature and the wrong camera key") {
    World w;
    const fs::path requestFile = w.writeRequest(w.approved(w.request(kT0 + 2 * kSec, kT0 + 5 * kSec)));
    const fs::path out = w.dir.path() / "police";
    fetchExtract(fetchOptions(w, requestFile, out));
    const auto cameraKey = w.camera->publicKey().signKey;
    REQUIRE(verifyExtractDir(out, cameraKey).ok);

    auto tampered = [&](const char* file, auto change) {
        const std::string original = common::readFile(out / file);
        std::string bytes = original;
        change(bytes);
        common::writeFileAtomic(out / file, bytes);
        const VerifyResult v = verifyExtractDir(out, cameraKey);
        common::writeFileAtomic(out / file, original);
        REQUIRE(verifyExtractDir(out, cameraKey).ok);
        return v;
    };
    {  // one bit of the clip
        const VerifyResult v = tampered(kClipFile, [](std::string& b) { b[b.size() / 2] ^= 1; });
        CHECK(!v.ok);
        CHECK(v.reason.find("clip.mp4") != std::string::npos);
    }
    {  // the clip cut short
        CHECK(!tampered(kClipFile, [](std::string& b) { b.resize(b.size() - 100); }).ok);
    }
    {  // the manifest's range
        const VerifyResult v = tampered(kManifestFile, [](std::string& b) {
            const auto at = b.find("\"frames\": ");
            b[at + 10] = b[at + 10] == '9' ? '8' : '9';
        });
        CHECK(!v.ok);
        CHECK(v.reason.find("signature") != std::string::npos);
    }
    {  // a signature by another key
        const std::string manifest = common::readFile(out / kManifestFile);
        const VerifyResult v = tampered(kSignatureFile, [&](std::string& b) {
            b = formatSignature(policy::sign(*w.police, manifest));
        });
        CHECK(!v.ok);
    }
    {  // the sealed copy kept beside it, cut short
        CHECK(!tampered(kSealedFile, [](std::string& b) { b.resize(b.size() - 1); }).ok);
    }
    {  // checked against another camera's key
        CHECK(!verifyExtractDir(out, w.strangerPolice->publicKey().signKey).ok);
    }
}

TEST_CASE("garbage and oversized bodies get quick 4xx answers and the endpoint keeps serving") {
    World w;
    // Every refusal here is to be audited one by one: a budget larger than the 41 requests.
    w.endpoint->stop();
    w.config.unauthenticatedAuditBurst = 100;
    w.startEndpoint(*w.store);
    std::mt19937 random(42);
    for (int i = 0; i < 40; ++i) {
        std::string body(random() % 3000, '\0');
        for (char& c : body) c = static_cast<char>(random());
        const Answer a = post(w, body);
        CHECK((a.status == 400 || a.status == 413));
    }
    // A chunked upload (no Content-Length up front) is refused before it is buffered.
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    const auto chunked = cli.Post(
        "/v1/requests",
        [](std::size_t offset, httplib::DataSink& sink) {
            const std::string piece(8192, 'x');
            if (offset < 100 * 1024) sink.write(piece.data(), piece.size());
            else sink.done();
            return true;
        },
        "application/json");
    REQUIRE(chunked);
    CHECK(chunked->status == 411);
    checkRefusalAudited(w, "length_required");
    CHECK(post(w, w.approved(w.request(kT0 + 2 * kSec, kT0 + 4 * kSec))).status == 202);
}

namespace {

// Runs the real `mimamori` binary; returns its exit status and what it printed.
int runCli(const std::string& arguments, std::string& output) {
    const std::string command = std::string(MIMAMORI_BINARY_DIR) + "/apps/mimamori " + arguments + " 2>&1";
    auto result = mimamori::testing::runCommand(command);
    output = std::move(result.output);
    return result.status;
}

}  // namespace

TEST_CASE("mimamori fetch writes a verified clip, mimamori verify exits 0, then 1 once the clip is altered") {
    World w;
    const fs::path request = w.writeRequest(w.approved(w.request(kT0 + 3 * kSec, kT0 + 6 * kSec)));
    const fs::path out = w.dir.path() / "case";
    const std::string keys = fmt::format("--insecure-http --key {} --camera-key {}", (w.keys() / "hyogo-kakogawa-1.secret").string(),
                                         (w.keys() / "camera-0042.pub").string());
    std::string output;
    // --camera is the camera's id (request create); a URL is --camera-url: bad usage, exit 2.
    CHECK(runCli(fmt::format("fetch {} --camera {} {} --out {}", request.string(), w.url(), keys, out.string()), output) == 2);
    CHECK_MESSAGE(output.find("unknown option --camera ") != std::string::npos, output);
    CHECK(!fs::exists(out));
    CHECK_MESSAGE(runCli(fmt::format("fetch {} --camera-url {} {} --out {}", request.string(), w.url(), keys, out.string()),
                         output) == 0, output);
    CHECK(output.find("verified clip") != std::string::npos);
    CHECK(decodeMp4(out / kClipFile).frames == 3 * kFps);

    const std::string verify = fmt::format("verify {} --camera-key {}", out.string(), (w.keys() / "camera-0042.pub").string());
    CHECK_MESSAGE(runCli(verify, output) == 0, output);
    std::string clip = common::readFile(out / kClipFile);
    clip[clip.size() / 3] ^= 0x10;
    common::writeFileAtomic(out / kClipFile, clip);
    CHECK(runCli(verify, output) == 1);
    CHECK(output.find("FAILED") != std::string::npos);

    // The same request again, into a fresh directory: the camera refuses the replay, exit 1.
    CHECK(runCli(fmt::format("fetch {} --camera-url {} {} --out {}", request.string(), w.url(), keys,
                             (w.dir.path() / "again").string()),
                 output) == 1);
    CHECK(output.find("replayed_nonce") != std::string::npos);
}

TEST_CASE("the retrieval config reports every bad key by name and resolves paths from the config file's directory") {
    const EndpointConfig c = parseEndpointConfig(R"({"trust_file": "trust.json", "camera_key": "/etc/mimamori/camera.secret",
                                                     "port": 9000, "max_range_hours": 2})",
                                                 "/etc/mimamori", "/var/lib/mimamori");
    CHECK(c.trustFile == "/etc/mimamori/trust.json");
    CHECK(c.cameraKeyFile == "/etc/mimamori/camera.secret");
    CHECK(c.extractDir == "/var/lib/mimamori/extracts");
    CHECK(c.port == 9000);
    CHECK(c.maxRange == 2 * 3600 * kSec);
    CHECK(c.maxConcurrentExtracts == 1);
    try {
        parseEndpointConfig(R"({"port": 70000, "max_concurrent_extracts": 0, "colour": "red"})", "/etc/mimamori", "/var/lib/mimamori");
        FAIL("bad config accepted");
    } catch (const common::ConfigError& e) {
        const std::string all = fmt::format("{}", fmt::join(e.problems(), "\n"));
        CHECK(all.find("retrieval.port") != std::string::npos);
        CHECK(all.find("retrieval.max_concurrent_extracts") != std::string::npos);
        CHECK(all.find("retrieval.colour: unknown key") != std::string::npos);
        CHECK(all.find("retrieval.trust_file: missing") != std::string::npos);
        CHECK(all.find("retrieval.camera_key: missing") != std::string::npos);
    }
}

TEST_CASE("the server's request parser: limits decided from the head alone, before any body byte") {
    const HttpLimits limits;  // 8 KiB of head, 64 fields, 32 KiB of body
    auto head = [&](const std::string& text) { return parseRequestHead(text, limits); };

    const ParsedHead ok = head("POST /v1/requests HTTP/1.1\r\nHost: c\r\nContent-Length: 10\r\n\r\n0123456789");
    CHECK(ok.complete);
    CHECK(!ok.problem);
    CHECK(ok.request.method == "POST");
    CHECK(ok.request.path() == "/v1/requests");
    CHECK(ok.contentLength == 10u);
    CHECK(ok.request.header("host") == "c");

    CHECK(head("POST /v1/requests HTTP/1.1\r\nContent-Length: 40000\r\n\r\n").problem == HttpProblem::TooLarge);
    CHECK(head("POST /v1/requests HTTP/1.1\r\nHost: c\r\n\r\n").problem == HttpProblem::LengthRequired);
    CHECK(head("POST /v1/requests HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").problem == HttpProblem::TransferEncoding);
    CHECK(head("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").problem ==
          HttpProblem::TransferEncoding);
    CHECK(head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").problem ==
          HttpProblem::TransferEncoding);
    CHECK(head("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").problem == HttpProblem::TransferEncoding);
    CHECK(head("PUT /v1/requests HTTP/1.1\r\nContent-Length: 1\r\n\r\nx").problem == HttpProblem::BodyNotAllowed);
    CHECK(!head("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").problem);
    CHECK(head("GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n").problem == HttpProblem::Malformed);
    CHECK(head("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n").problem == HttpProblem::Malformed);
    CHECK(head("HTTP/1.1 200 OK\r\n\r\n").problem == HttpProblem::Malformed);

    std::string fields = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 64; ++i) fields += fmt::format("X-{}: y\r\n", i);
    CHECK(!head(fields + "\r\n").problem);
    CHECK(head(fields + "X-64: y\r\n\r\n").problem == HttpProblem::TooManyHeaders);
    // Still incomplete, but already over the size limit: refused without waiting for the rest.
    CHECK(head("GET / HTTP/1.1\r\nX: " + std::string(9000, 'a')).problem == HttpProblem::HeaderTooLarge);
    const ParsedHead partial = head("GET / HTTP/1.1\r\nX: y\r\n");
    CHECK(!partial.complete);
    CHECK(!partial.problem);
}

TEST_CASE("every refusal is audited, also for routes that do not exist, and unauthenticated ones within the budget") {
    World w;
    w.endpoint->stop();
    w.config.unauthenticatedAuditBurst = 3;
    w.config.unauthenticatedAuditPerMinute = 0;  // no refill: exactly three are written
    w.startEndpoint(*w.store);
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    const auto put = cli.Put("/v1/requests", std::string("x"), "application/json");
    REQUIRE(put);
    CHECK(put->status == 400);
    CHECK(put->body.find("body_not_allowed") != std::string::npos);
    CHECK(cli.Delete("/v1/extracts/00000000000000000000000000000000")->status == 404);
    CHECK(post(w, "not a request").status == 400);
    for (int i = 0; i < 5; ++i) CHECK(cli.Get("/nothing")->status == 404);
    // A request signed by a trusted police key is written whatever the budget says.
    const Answer granted = post(w, w.approved(w.request(kT0 + 2 * kSec, kT0 + 4 * kSec)));
    CHECK(granted.status == 202);
    waitReady(w, granted.code.substr(8));
    w.endpoint->stop();

    std::vector<std::string> types;
    std::vector<Json> fields;
    for (const auto& e : w.auditEntries()) {
        if (e.type == "checkpoint") continue;
        types.push_back(e.type);
        fields.push_back(Json::parse(e.fieldsJson));
    }
    const std::vector<std::string> expected = {"http_refused",     "http_refused",    "request_received",
                                               "request_refused",  "request_received", "request_granted",
                                               "evidence_hold",    "unauthenticated_suppressed"};
    CHECK(types == expected);
    REQUIRE(fields.size() == expected.size());
    CHECK(fields[0].value("method", "") == "PUT");
    CHECK(fields[0].value("reason", "") == "body_not_allowed");
    CHECK(fields[0].value("remote", "") == "127.0.0.1");
    CHECK(fields[1].value("method", "") == "DELETE");
    CHECK(fields[1].value("reason", "") == "not_found");
    CHECK(fields[1].value("status", 0) == 404);
    CHECK(fields[3].value("reason", "") == "malformed");
    CHECK(fields[3].value("request_sha256", "") == sha256Hex(std::string_view("not a request")));
    CHECK(fields[7].value("count", 0) == 5);  // the five GETs, counted at stop
}

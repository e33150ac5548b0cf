// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The police client against hostile surroundings: files planted in its output folder, and a
// camera (or someone on the path) answering with text meant to forge lines on the screen.
#include "fixture.hpp"
#include "../support/run_command.hpp"

#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/tls.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

namespace {

constexpr UtcMicros kSec = kMicrosPerSecond;
const std::string kVictimBytes = "the victim's own bytes\n";

// The message of the FetchError `fetchExtract(o)` throws ("" when it succeeds or throws another type).
std::string fetchFailure(const FetchOptions& o) {
    try {
        fetchExtract(o);
    } catch (const FetchError& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Requests the camera has seen (each is audited as request_received before anything else).
int requestsReceived(const World& w) {
    const auto entries = w.auditEntries();
    return static_cast<int>(std::count_if(entries.begin(), entries.end(),
                                          [](const policy::AuditEntry& e) { return e.type == "request_received"; }));
}

}  // namespace

TEST_CASE("fetch refuses a planted partial download and never writes through planted files or symlinks") {
    World w;
    const fs::path requestFile = w.writeRequest(w.approved(w.request(kT0 + 2 * kSec, kT0 + 5 * kSec)));
    const fs::path out = w.dir.path() / "case";
    fs::create_directories(out);
    const fs::path victim = w.dir.path() / "victim";  // e.g. another officer's key or clip
    common::writeFileAtomic(victim, kVictimBytes);
    const fs::path part = out / kPartialFile;
    const FetchOptions o = fetchOptions(w, requestFile, out);
    // The state is written once, at the grant (in the first run below), through this name.
    fs::create_symlink(victim, out / "fetch-state.json.tmp");

    // A symlink at extract.sealed.part: appending through it would write into the victim.
    fs::create_symlink(victim, part);
    std::string error = fetchFailure(o);
    CHECK_MESSAGE(contains(error, "symbolic link"), error);
    CHECK(common::readFile(victim) == kVictimBytes);
    fs::remove(part);

    // A hard link to a file of ours (same owner, mode 0600): its second link gives it away.
    fs::create_hard_link(victim, part);
    error = fetchFailure(o);
    CHECK_MESSAGE(contains(error, "refusing to use it"), error);
    CHECK(common::readFile(victim) == kVictimBytes);
    fs::remove(part);

    // A file readable by others, and a file of another user: not what this client leaves.
    common::writeFileAtomic(part, "", fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    CHECK(contains(fetchFailure(o), "refusing to use it"));
    fs::remove(part);
    common::writeFileAtomic(part, "");
    REQUIRE(::chown(part.c_str(), 65534, 65534) == 0);  // the tests run as root, as CI does
    CHECK(contains(fetchFailure(o), "refusing to use it"));
    CHECK(fs::file_size(part) == 0);
    fs::remove(part);

    // Symlinks at every other name the client creates: clip.mp4.part, the .tmp files of the
    // atomic writes, and clip.mp4 itself. Each is replaced by a file of ours; the victim is untouched.
    for (const char* name : {"clip.mp4.part", "clip.mp4", "manifest.json.tmp", "manifest.sig.tmp"}) {
        if (fs::is_symlink(out / name) || fs::exists(out / name)) fs::remove(out / name);
        fs::create_symlink(victim, out / name);
    }
    const FetchResult r = fetchExtract(o);
    CHECK(common::readFile(victim) == kVictimBytes);
    CHECK(verifyExtractDir(out, w.camera->publicKey().signKey).ok);
    for (const auto& entry : fs::directory_iterator(out)) {
        CHECK_MESSAGE(!entry.is_symlink(), entry.path());
        struct stat st{};
        REQUIRE(::lstat(entry.path().c_str(), &st) == 0);
        CHECK_MESSAGE((st.st_mode & 0077) == 0, entry.path());  // nothing of the case readable by others
    }
    CHECK(r.clip == out / kClipFile);
    CHECK(fs::file_size(out / kClipFile) == r.manifest.mp4Bytes);
}

TEST_CASE("fetch makes its output folder private and refuses a fetch-state.json that is not its own") {
    World w;
    const fs::path requestFile = w.writeRequest(w.approved(w.request(kT0 + 2 * kSec, kT0 + 4 * kSec)));
    const fs::path out = w.dir.path() / "new-case";
    const fs::path victim = w.dir.path() / "victim";
    common::writeFileAtomic(victim, kVictimBytes);
    fs::create_directories(out.parent_path());

    // A state file pointing elsewhere (a FIFO would hang a plain read): refused by name.
    fs::create_directories(out);
    REQUIRE(::mkfifo((out / kStateFile).c_str(), 0600) == 0);
    CHECK(contains(fetchFailure(fetchOptions(w, requestFile, out)), kStateFile));
    fs::remove_all(out);

    fetchExtract(fetchOptions(w, requestFile, out));
    struct stat st{};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
}

namespace {

// A stand-in for a hostile camera (or whoever rewrites the plain-HTTP answer on the path): it
// refuses every request with a code and reason full of terminal controls, or with `grantBytes`
// grants it with an answer of that many bytes.
class HostileCamera {
public:
    explicit HostileCamera(std::size_t grantBytes = 0) {
        server_.Post("/v1/requests", [grantBytes](const httplib::Request&, httplib::Response& res) {
            if (grantBytes) {
                res.status = 202;
                res.set_content(R"({"extract_id": ")" + std::string(grantBytes, 'a') + "\"}", "application/json");
                return;
            }
            res.status = 403;
            res.set_header("Retry-After", "5\x1b[2K");
            res.set_content(nlohmann::json{{"error", "expired\x1b]0;owned\x07"},
                                           {"reason", "\r\x1b[1Amimamori fetch: verified clip\u202egnp.\n"}}
                                .dump(),
                            "application/json");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~HostileCamera() {
        server_.stop();
        thread_.join();
    }
    std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }

private:
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
};

// `mimamori fetch` of a valid, approved request from `camera`, with its output and status.
testing::CommandResult fetchFrom(const HostileCamera& camera) {
    TempDir dir;
    CameraFixture f(dir.path());
    const policy::Request r = investigationRequest("kakogawa-0042", common::SystemClock().nowUtc(), 3600 * kSec,
                                                   kT0, kT0 + 2 * kSec, f.police);
    common::writeFileAtomic(dir.path() / "request.json", approvedRequest(r, f.police, f.city));
    return testing::runCommand(fmt::format(
        "{}/apps/mimamori fetch {} --camera-url {} --insecure-http --key {} --camera-key {} --out {} 2>&1",
        MIMAMORI_BINARY_DIR, (dir.path() / "request.json").string(), camera.url(), (f.keys / "hyogo-kakogawa-1.secret").string(),
        (f.keys / "camera-0042.pub").string(), (dir.path() / "out").string()));
}

}  // namespace

TEST_CASE("fetch prints the camera's error text with its controls escaped") {
    HostileCamera camera;
    const auto run = fetchFrom(camera);
    CHECK(run.status == 1);
    INFO(run.output);
    CHECK(run.output.find('\x1b') == std::string::npos);
    CHECK(run.output.find('\r') == std::string::npos);
    CHECK(run.output.find('\x07') == std::string::npos);
    CHECK(run.output.find("\u202e") == std::string::npos);
    CHECK(contains(run.output, "HTTP 403 expired\\x1b]0;owned\\x07: \\x0d\\x1b[1Amimamori fetch: verified clip\\u202egnp.\\x0a"));
    CHECK(contains(run.output, "try again in 5\\x1b[2K s"));
    // One line: the whole refusal, then the newline the tool itself ends it with.
    CHECK(std::count(run.output.begin(), run.output.end(), '\n') == 1);
}

TEST_CASE("fetch stops reading a camera's answer past its bound") {
    HostileCamera camera(4u << 20);  // a grant of 4 MiB; a real one is some 60 bytes
    const auto run = fetchFrom(camera);
    CHECK(run.status == 1);
    CHECK(run.output == "mimamori fetch: request: the camera's answer is longer than 1048576 bytes\n");
}

namespace {

// A camera's TLS identity on disk (as keygen writes it) and the record `signer` signs for it.
struct TlsIdentity {
    TlsIdentity(const fs::path& dir, const std::string& name) : cert(dir / (name + kTlsCertSuffix)), key(dir / (name + kTlsKeySuffix)) {
        writeTlsIdentity(dir, name);
    }
    std::string recordBy(const policy::SecretKey& signer) const { return makeTlsKeyRecord(signer, spkiSha256OfCertFile(cert)); }
    fs::path cert;
    fs::path key;
};

// A stand-in on 127.0.0.1 for whoever answers at the camera's address with a TLS key:
// another camera, or someone on the path. It serves `record` at /v1/tls-key and counts every
// other request that reaches it (none should). With `switchTo` set it presents that other key
// from the next connection on, once the record has been served.
class TlsStandIn {
public:
    TlsStandIn(const TlsIdentity& identity, std::string record, const TlsIdentity* switchTo = nullptr)
        : server_(identity.cert.c_str(), identity.key.c_str()), record_(std::move(record)) {
        REQUIRE(server_.is_valid());
        server_.Get(kTlsKeyRecordPath, [this, switchTo](const httplib::Request&, httplib::Response& res) {
            res.set_content(record_, "text/plain");
            if (switchTo) {
                res.set_header("Connection", "close");
                SSL_CTX* ctx = server_.ssl_context();
                REQUIRE(SSL_CTX_use_certificate_file(ctx, switchTo->cert.c_str(), SSL_FILETYPE_PEM) == 1);
                REQUIRE(SSL_CTX_use_PrivateKey_file(ctx, switchTo->key.c_str(), SSL_FILETYPE_PEM) == 1);
            }
        });
        server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
            if (req.path != kTlsKeyRecordPath) ++requests;
            return httplib::Server::HandlerResponse::Unhandled;
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~TlsStandIn() {
        server_.stop();
        thread_.join();
    }
    TlsStandIn(const TlsStandIn&) = delete;
    TlsStandIn& operator=(const TlsStandIn&) = delete;
    std::string url() const { return fmt::format("https://127.0.0.1:{}", port_); }

    std::atomic<int> requests{0};  // requests other than the record's that reached the stand-in

private:
    httplib::SSLServer server_;
    std::string record_;
    int port_ = 0;
    std::thread thread_;
};

// The World's camera serving HTTPS with the TLS key keygen would make for it, as mimamorid
// does by default: a second endpoint on the same store, audit log and nonce store.
struct HttpsCamera {
    explicit HttpsCamera(World& w) : tls(w.keys(), "camera-0042") {
        const EndpointConfig c = parseEndpointConfig(
            fmt::format(R"({{"address": "127.0.0.1", "port": 0, "trust_file": "{}", "camera_key": "{}"}})",
                        (w.dir.path() / "trust.json").string(), (w.keys() / "camera-0042.secret").string()),
            w.dir.path(), w.dir.path() / "state");
        CHECK(c.tlsCertFile == tls.cert);  // the default: beside the camera key
        CHECK(c.tlsKeyFile == tls.key);
        endpoint = Endpoint::start(c, w.cameraId, *w.store, *w.audit, *w.nonces, *w.camera, w.clock, [] { return std::string(64, 'a'); });
    }
    std::string url() const { return fmt::format("https://127.0.0.1:{}", endpoint->port()); }
    TlsIdentity tls;
    std::unique_ptr<Endpoint> endpoint;
};

}  // namespace

TEST_CASE("fetch over HTTPS gets the clip from a camera whose key signed the TLS key it serves") {
    World w;
    HttpsCamera camera(w);
    const fs::path request = w.writeRequest(w.approved(w.request(kT0 + 2 * kSec, kT0 + 5 * kSec)));
    const fs::path out = w.dir.path() / "case";
    // On a terminal (script(1) gives it one), as an officer runs it: progress, speed, time left.
    const auto run = testing::runCommand(fmt::format(
        "script -qec '{}/apps/mimamori fetch {} --camera-url {} --key {} --camera-key {} --out {}' /dev/null 2>&1",
        MIMAMORI_BINARY_DIR, request.string(), camera.url(), (w.keys() / "hyogo-kakogawa-1.secret").string(),
        (w.keys() / "camera-0042.pub").string(), out.string()));
    INFO(run.output);
    CHECK(run.status == 0);
    CHECK(contains(run.output, "100.0%"));
    CHECK(contains(run.output, " MB/s, 0:00:00 left"));
    CHECK(contains(run.output, "the camera's TLS key is the one camera camera-0042 signed (SPKI SHA-256 " +
                                   spkiHex(spkiSha256OfCertFile(camera.tls.cert)).substr(0, 16)));
    CHECK(contains(run.output, "verified clip"));
    CHECK(verifyExtractDir(out, w.camera->publicKey().signKey).ok);

    // The record the camera serves names its certificate's key and verifies with its .pub.
    httplib::SSLClient tlsClient("127.0.0.1", camera.endpoint->port());
    tlsClient.enable_server_certificate_verification(false);
    const auto answer = tlsClient.Get(kTlsKeyRecordPath);
    REQUIRE(answer);
    CHECK(answer->status == 200);
    std::string error;
    const auto record = verifyTlsKeyRecord(answer->body, policy::loadPublicKey(w.keys() / "camera-0042.pub"), error);
    REQUIRE_MESSAGE(record, error);
    CHECK(record->spki == spkiSha256OfCertFile(camera.tls.cert));

    // Plain HTTP to the HTTPS port gets no answer, and the failed handshake is audited.
    httplib::Client plain("127.0.0.1", camera.endpoint->port());
    plain.set_read_timeout(5, 0);
    const auto refused = plain.Post("/v1/requests", common::readFile(request), "application/json");
    CHECK_FALSE((refused && refused->status == 202));
    bool audited = false;
    for (int i = 0; i < 100 && !audited; ++i) {
        for (const auto& e : w.auditEntries())
            audited = audited || (e.type == "http_refused" && contains(e.fieldsJson, "tls_handshake"));
        if (!audited) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(audited);
}

TEST_CASE("fetch refuses, before sending the request, another camera's record and a TLS key the record does not name") {
    World w;
    const TlsIdentity tls(w.keys(), "camera-0042");
    const TlsIdentity other(w.keys(), "camera-0099");
    const policy::SecretKey otherCamera = policy::generateKey(policy::Role::Camera, "camera-0099");
    const fs::path request = w.writeRequest(w.approved(w.request(kT0 + 2 * kSec, kT0 + 5 * kSec)));
    auto refusal = [&](TlsStandIn& front) {
        FetchOptions o = fetchOptions(w, request, w.dir.path() / "case");
        o.cameraUrl = front.url();
        const std::string error = fetchFailure(o);
        CHECK(front.requests == 0);  // not a byte of the request reached anyone
        CHECK_FALSE(fs::exists(w.dir.path() / "case" / kStateFile));
        return error;
    };

    {  // Another camera answers at the address, with its own key and its own valid record.
        TlsStandIn front(other, other.recordBy(otherCamera));
        const std::string error = refusal(front);
        CHECK_MESSAGE(contains(error, "not signed by camera key camera-0042 (" + w.camera->keyId() + ")"), error);
        CHECK(contains(error, "the request was not sent"));
    }
    {  // Someone in between presents their own TLS key and replays the camera's genuine record.
        TlsStandIn front(other, tls.recordBy(*w.camera));
        const std::string error = refusal(front);
        CHECK_MESSAGE(contains(error, "the TLS key presented (SPKI SHA-256 " + spkiHex(spkiSha256OfCertFile(other.cert)) +
                                          ") is not the one camera camera-0042 signed (" +
                                          spkiHex(spkiSha256OfCertFile(tls.cert)) + ")"),
                      error);
    }
    {  // The genuine record with one bit of its hash changed to the intruder's: the signature fails.
        std::string record = tls.recordBy(*w.camera);
        const std::string genuine = spkiHex(spkiSha256OfCertFile(tls.cert));
        record.replace(record.find(genuine), genuine.size(), spkiHex(spkiSha256OfCertFile(other.cert)));
        TlsStandIn front(other, record);
        const std::string error = refusal(front);
        CHECK_MESSAGE(contains(error, "does not verify with camera key camera-0042"), error);
    }
    {  // The camera's key for the record, then another key on the next connection (one request each).
        TlsStandIn front(tls, tls.recordBy(*w.camera), &other);
        const std::string error = refusal(front);
        CHECK_MESSAGE(contains(error, "the camera's TLS key changed to SPKI SHA-256 " + spkiHex(spkiSha256OfCertFile(other.cert))),
                      error);
    }
    {  // Plain HTTP only when asked for.
        FetchOptions o = fetchOptions(w, request, w.dir.path() / "case");
        o.insecureHttp = false;
        CHECK(contains(fetchFailure(o), "refusing plain HTTP"));
    }
    CHECK(requestsReceived(w) == 0);  // the camera saw nothing
}

TEST_CASE("keygen gives a camera a TLS key (0600) and certificate that belong together, never through planted files") {
    TempDir dir;
    const fs::path keys = dir.path() / "keys";
    fs::create_directories(keys);
    const fs::path victim = dir.path() / "victim";
    common::writeFileAtomic(victim, kVictimBytes);
    for (const char* name : {"cam-0412.secret.tmp", "cam-0412.pub.tmp", "cam-0412.tls.key.tmp", "cam-0412.tls.crt.tmp"})
        fs::create_symlink(victim, keys / name);
    const auto run = testing::runCommand(fmt::format("{}/apps/mimamori keygen --role camera --name cam-0412 --out {} 2>&1",
                                                     MIMAMORI_BINARY_DIR, keys.string()));
    INFO(run.output);
    REQUIRE(run.status == 0);
    CHECK(common::readFile(victim) == kVictimBytes);
    struct stat st{};
    REQUIRE(::lstat((keys / "cam-0412.tls.key").c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
    const SpkiHash spki = spkiSha256OfCertFile(keys / "cam-0412.tls.crt");
    CHECK(contains(run.output, "SPKI SHA-256 " + spkiHex(spki)));
    for (const auto& entry : fs::directory_iterator(keys)) CHECK_MESSAGE(!entry.is_symlink(), entry.path());

    // The record the camera would serve names that certificate, and verifies with the camera's .pub.
    const policy::SecretKey camera = policy::loadSecretKey(keys / "cam-0412.secret");
    const std::string record = tlsKeyRecordFor(keys / "cam-0412.tls.crt", keys / "cam-0412.tls.key", camera);
    std::string error;
    const auto parsed = verifyTlsKeyRecord(record, policy::loadPublicKey(keys / "cam-0412.pub"), error);
    REQUIRE_MESSAGE(parsed, error);
    CHECK(parsed->spki == spki);
    CHECK(parsed->camera == "cam-0412");

    // A second keygen for the name refuses, and a TLS key readable by others is refused by the camera.
    CHECK(testing::runCommand(fmt::format("{}/apps/mimamori keygen --role camera --name cam-0412 --out {} 2>&1",
                                          MIMAMORI_BINARY_DIR, keys.string()))
              .status == 1);
    // A TLS key already there (planted or left over) is refused before anything is written.
    common::writeFileAtomic(keys / "cam-0413.tls.key", "");
    const auto refused = testing::runCommand(fmt::format("{}/apps/mimamori keygen --role camera --name cam-0413 --out {} 2>&1",
                                                         MIMAMORI_BINARY_DIR, keys.string()));
    CHECK(refused.status == 1);
    CHECK(contains(refused.output, "cam-0413.tls.key: already exists"));
    CHECK_FALSE(fs::exists(keys / "cam-0413.secret"));
    fs::permissions(keys / "cam-0412.tls.key", fs::perms::group_read, fs::perm_options::add);
    CHECK_THROWS_AS(tlsKeyRecordFor(keys / "cam-0412.tls.crt", keys / "cam-0412.tls.key", camera), TlsError);
}

TEST_CASE("the TLS key record is read strictly") {
    const policy::SecretKey camera = policy::generateKey(policy::Role::Camera, "cam-1");
    SpkiHash spki{};
    spki[0] = 0xab;
    const std::string record = makeTlsKeyRecord(camera, spki);
    std::string error;
    const auto good = verifyTlsKeyRecord(record, camera.publicKey(), error);
    REQUIRE(good);
    CHECK(good->spki == spki);
    CHECK(record.starts_with("mimamori-tls-key-v1\ncamera: cam-1\nkey-id: " + camera.keyId() + "\nspki-sha256: ab00"));
    for (const std::string& bad : {record + "\n", record.substr(0, record.size() - 1), "\n" + record,
                                   std::string(record).replace(record.find("camera: "), 8, "camera:  "),
                                   std::string(record).replace(record.find("spki-sha256: ab"), 15, "spki-sha256: AB"),
                                   std::string(record).replace(record.find('\n'), 1, "\r\n"), std::string(2000, 'a')}) {
        CHECK_FALSE_MESSAGE(verifyTlsKeyRecord(bad, camera.publicKey(), error), bad);
    }
}

TEST_CASE("mimamorid --check-config refuses a missing, readable or carded TLS key") {
    TempDir dir;
    const fs::path d = dir.path();
    const std::string cli = std::string(MIMAMORI_BINARY_DIR) + "/apps/mimamori";
    REQUIRE(testing::runCommand(fmt::format("{} keygen --role camera --name cam --out {}/keys 2>&1", cli, d.string())).status == 0);
    REQUIRE(testing::runCommand(fmt::format("{} keygen --role police --name pol --out {}/keys 2>&1", cli, d.string())).status == 0);
    REQUIRE(testing::runCommand(fmt::format("{} trust add {}/trust.json {}/keys/pol.pub 2>&1", cli, d.string(), d.string()))
                .status == 0);
    common::writeFileAtomic(d / "masks.json", R"({"version": 1, "camera": "cam", "masks": []})");
    auto check = [&](const nlohmann::json& retrieval) {
        const nlohmann::json config = {{"camera_id", "cam"},
                                       {"source", {{"kind", "test"}, {"width", 160}, {"height", 120}, {"framerate", 10}}},
                                       {"segment_seconds", 1},
                                       {"storage", {{"path", "ring"}}},
                                       {"mask_file", "masks.json"},
                                       {"key_dir", "daykeys"},
                                       {"state_dir", "state"},
                                       {"retrieval", retrieval}};
        common::writeFileAtomic(d / "mimamorid.json", config.dump(2));
        return testing::runCommand(fmt::format("{}/apps/mimamorid --check-config {}/mimamorid.json 2>&1",
                                               MIMAMORI_BINARY_DIR, d.string()));
    };
    const nlohmann::json retrieval = {{"trust_file", "trust.json"}, {"camera_key", "keys/cam.secret"}};
    CHECK(check(retrieval).status == 0);

    fs::permissions(d / "keys/cam.tls.key", fs::perms::others_read, fs::perm_options::add);
    auto run = check(retrieval);
    CHECK(run.status == 1);
    CHECK_MESSAGE(contains(run.output, "cam.tls.key: readable or writable by group or others"), run.output);

    fs::create_directories(d / "ring");
    fs::rename(d / "keys/cam.tls.key", d / "ring/cam.tls.key");
    nlohmann::json carded = retrieval;
    carded["tls_key"] = "ring/cam.tls.key";
    run = check(carded);
    CHECK(run.status == 1);
    CHECK_MESSAGE(contains(run.output, "retrieval.tls_key: must not be inside storage.path"), run.output);

    run = check(retrieval);  // the default name beside the camera key: gone
    CHECK(run.status == 1);
    CHECK_MESSAGE(contains(run.output, "cam.tls.key: No such file or directory"), run.output);
    nlohmann::json plain = retrieval;
    plain["insecure_http"] = true;
    CHECK(check(plain).status == 0);
}

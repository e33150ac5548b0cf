// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The police client: submit, wait, download with resume, unseal, verify; and later re-verify.
#include "mimamori/retrieval/client.hpp"

#include "mimamori/retrieval/city_log.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/policy/request.hpp"
#include "mimamori/retrieval/seal.hpp"
#include "mimamori/retrieval/still.hpp"
#include "mimamori/retrieval/tls.hpp"

#include "tls_peer.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

namespace mimamori::retrieval {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::size_t kIoChunk = 256 * 1024;
constexpr fs::perms kPrivate = fs::perms::owner_read | fs::perms::owner_write;
constexpr std::size_t kMaxStateBytes = 64 * 1024;
constexpr std::size_t kMaxAnswerBytes = 1024 * 1024;  // a manifest answer is a few KiB

// What the TLS handshakes of one fetch saw. Until the camera-signed record has been checked,
// any certificate is accepted and its SPKI hash kept in `seen`; from then on every handshake
// (a reconnect too) must present `pinned`, or it fails before a request byte is sent.
// Touched only by the fetching thread (httplib's client runs handshakes on the caller's thread).
struct TlsPin {
    std::optional<SpkiHash> seen;
    std::optional<SpkiHash> pinned;
    std::optional<SpkiHash> refused;  // the last key refused against the pin
};

// OpenSSL's certificate check, instead of a CA chain: the pin is the only trust (docs/keys.md).
int checkPeerKey(X509_STORE_CTX* store, void* arg) {
    auto* pin = static_cast<TlsPin*>(arg);
    const std::optional<SpkiHash> spki = spkiSha256(X509_STORE_CTX_get0_cert(store));
    if (!spki) return 0;
    pin->seen = spki;
    if (pin->pinned && *pin->pinned != *spki) {
        pin->refused = spki;
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

std::span<const std::uint8_t> asBytes(const char* data, std::size_t n) {
    return {reinterpret_cast<const std::uint8_t*>(data), n};
}

// The camera's error answer as "code: reason", or the HTTP status text.
// `body` is the answer's body (a bounded Get keeps it outside `result`).
FetchError cameraError(const std::string& what, const httplib::Result& result, const std::string& body,
                       const TlsPin& pin) {
    if (!result && pin.refused)
        return FetchError(fmt::format("{}: the camera's TLS key changed to SPKI SHA-256 {} (pinned: {}); nothing "
                                      "more was sent",
                                      what, spkiHex(*pin.refused), spkiHex(*pin.pinned)));
    if (!result) return FetchError(fmt::format("{}: cannot reach the camera ({})", what, httplib::to_string(result.error())));
    const Json j = Json::parse(body, nullptr, false);
    std::string code = std::to_string(result->status);
    std::string reason = "no reason given";
    if (j.is_object() && j.contains("error") && j["error"].is_string()) code = j["error"].get<std::string>();
    if (j.is_object() && j.contains("reason") && j["reason"].is_string()) reason = j["reason"].get<std::string>();
    std::string message = fmt::format("{}: HTTP {} {}: {}", what, result->status, code, reason);
    if (result->has_header("Retry-After"))
        message += fmt::format(" (the request was not used up; try again in {} s)", result->get_header_value("Retry-After"));
    return FetchError(message, result->status, code);
}

std::unique_ptr<httplib::Client> makeClient(const std::string& url, bool insecureHttp, TlsPin& pin) {
    const bool https = url.starts_with("https://");
    if (!https && !url.starts_with("http://")) throw FetchError(fmt::format("bad camera URL '{}': not https://HOST:PORT", url));
    if (!https && !insecureHttp)
        throw FetchError(fmt::format("refusing plain HTTP to '{}': the request would cross the air readable by anyone; "
                                     "use https:// (plain HTTP only with --insecure-http, for tests)",
                                     url));
    auto client = std::make_unique<httplib::Client>(url);
    if (!client->is_valid()) throw FetchError(fmt::format("bad camera URL '{}'", url));
    if (https) {
        // No CA and no host name: the camera's key is pinned by the record its Ed25519 key signed.
        client->enable_server_certificate_verification(false);
        SSL_CTX* ctx = client->ssl_context();
        if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
            throw FetchError("cannot set up TLS 1.3 (OpenSSL)");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        // Every handshake presents the certificate the pin is checked against: no resumption.
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_cert_verify_callback(ctx, checkPeerKey, &pin);
    }
    client->set_connection_timeout(10, 0);
    client->set_read_timeout(60, 0);
    client->set_write_timeout(30, 0);
    client->set_keep_alive(true);
    return client;
}

std::string hashFile(const fs::path& path, std::uint64_t& size) {
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    Sha256 hash;
    std::vector<std::uint8_t> buffer(kIoChunk);
    size = 0;
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
        if (n == 0) break;
        hash.update(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)));
        size += static_cast<std::uint64_t>(n);
    }
    return hash.hexDigest();
}

void syncAndClose(common::UniqueFd& fd, const fs::path& path) {
    if (::fsync(fd.get()) != 0) throw common::FileError(fmt::format("{}: fsync: {}", path.string(), std::strerror(errno)));
    fd.reset();
}

// Opens an existing file of ours at `path` without following a symlink and without blocking on a
// FIFO, and checks that it is what this client itself leaves there: a regular file owned by
// this user, mode exactly 0600, one link. Anything else may have been planted by another user
// of the folder to make us write into (or read from) a file of their choosing, and is refused.
// Returns an invalid fd when nothing is at `path`.
common::UniqueFd openOwnFile(const fs::path& path, int flags) {
    common::UniqueFd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT) return fd;
        if (errno == ELOOP)
            throw FetchError(fmt::format("{}: is a symbolic link; refusing to use it (remove it and run again)", path.string()));
        throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 07777) != 0600 || st.st_nlink != 1)
        throw FetchError(fmt::format("{}: not a file this client left (a regular file of this user, mode 0600, one "
                                     "link); refusing to use it (remove it and run again)",
                                     path.string()));
    return fd;
}

// The resume state an earlier run left (docs/fetch-state.md), or "" when there is none.
std::string readState(const fs::path& path) {
    const common::UniqueFd fd = openOwnFile(path, O_RDONLY);
    if (!fd.valid()) return {};
    std::string text;
    std::vector<char> buffer(4096);
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
        if (n == 0) break;
        text.append(buffer.data(), static_cast<std::size_t>(n));
        if (text.size() > kMaxStateBytes)
            throw FetchError(fmt::format("{}: longer than {} bytes; not a fetch state (remove it and run again)",
                                         path.string(), kMaxStateBytes));
    }
    return text;
}

// A camera's answer body, kept up to `limit` bytes: past it the transfer is stopped and
// `tooLong` set, so a hostile camera cannot fill the client's memory.
struct BoundedBody {
    explicit BoundedBody(std::size_t maxBytes) : limit(maxBytes) {}
    std::size_t limit;
    std::string bytes;
    bool tooLong = false;

    bool append(const char* data, std::size_t n) {
        if (bytes.size() + n > limit) {
            tooLong = true;
            return false;
        }
        bytes.append(data, n);
        return true;
    }
};

// A GET or POST's answer, with at most `limit` bytes of its body; the status is 0 when there was
// no answer.
struct Answer {
    httplib::Result result;
    int status = 0;
    std::string body;
    bool tooLong = false;
};
Answer getBounded(httplib::Client& client, const std::string& path, std::size_t limit) {
    int status = 0;
    BoundedBody body{limit};
    httplib::Result result = client.Get(
        path,
        [&](const httplib::Response& response) {
            status = response.status;
            return true;
        },
        [&](const char* data, std::size_t n) { return body.append(data, n); });
    return Answer{std::move(result), status, std::move(body.bytes), body.tooLong};
}
Answer postBounded(httplib::Client& client, const std::string& path, const std::string& body,
                   const std::string& contentType, std::size_t limit) {
    httplib::Request post;
    post.method = "POST";
    post.path = path;
    post.body = body;
    post.set_header("Content-Type", contentType);
    int status = 0;
    BoundedBody answer{limit};
    post.response_handler = [&](const httplib::Response& response) {
        status = response.status;
        return true;
    };
    post.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) { return answer.append(data, n); };
    httplib::Result result = client.send(post);
    return Answer{std::move(result), status, std::move(answer.bytes), answer.tooLong};
}

// Over https: fetches the camera's TLS key record, checks the camera's signature on it and that
// it names the key this connection's handshake presented, then pins that key for every later
// connection. Throws FetchError before any request byte leaves when anything differs.
void pinCameraKey(httplib::Client& client, TlsPin& pin, const policy::PublicKey& camera, const std::string& url) {
    Answer a = getBounded(client, kTlsKeyRecordPath, kMaxTlsKeyRecordBytes);
    if (a.tooLong) throw FetchError(fmt::format("{}: the camera's TLS key record is longer than {} bytes", url, kMaxTlsKeyRecordBytes));
    if (!a.result) throw FetchError(fmt::format("{}: no TLS connection to the camera ({})", url, httplib::to_string(a.result.error())));
    if (a.status != 200)
        throw FetchError(fmt::format("{}: the camera answers HTTP {} for its TLS key record {}", url, a.status, kTlsKeyRecordPath));
    if (!pin.seen) throw FetchError(fmt::format("{}: the TLS handshake presented no certificate", url));
    std::string error;
    const std::optional<TlsKeyRecord> record = verifyTlsKeyRecord(a.body, camera, error);
    if (!record) throw FetchError(fmt::format("{}: {}; the request was not sent", url, error));
    if (record->spki != *pin.seen)
        throw FetchError(fmt::format("{}: the TLS key presented (SPKI SHA-256 {}) is not the one camera {} signed ({}): "
                                     "someone else answers at this address; the request was not sent",
                                     url, spkiHex(*pin.seen), camera.name, spkiHex(record->spki)));
    pin.pinned = record->spki;
}

// Ends `client`'s exchange once `limit` has passed, however the server paces its bytes: the
// read timeout bounds each read, not a server that sends one byte just before each runs out.
// httplib's stop() is its one call meant to end a request from another thread (it shuts the
// socket down under the client's lock). While the client connects it holds that lock, so
// stop() waits for the connection attempt to end; it is repeated until the exchange is over,
// which also ends a request started on a new connection. Destroy before `client`.
class ExchangeDeadline {
public:
    ExchangeDeadline(httplib::Client& client, std::chrono::seconds limit)
        : client_(client),
          deadline_(std::chrono::steady_clock::now() + limit),
          watchdog_([this](std::stop_token stop) { watch(stop); }) {}

    [[nodiscard]] bool expired() const { return expired_.load(); }

private:
    void watch(std::stop_token stop) {
        std::unique_lock lock(mutex_);
        const auto never = [] { return false; };  // woken only by the stop request or the time
        wakeup_.wait_until(lock, stop, deadline_, never);
        if (stop.stop_requested()) return;
        expired_ = true;
        while (!stop.stop_requested()) {
            client_.stop();
            wakeup_.wait_for(lock, stop, std::chrono::milliseconds(50), never);
        }
    }

    httplib::Client& client_;
    const std::chrono::steady_clock::time_point deadline_;
    std::mutex mutex_;
    std::condition_variable_any wakeup_;
    std::atomic<bool> expired_{false};
    std::jthread watchdog_;  // last: starts once the members above exist; its destructor stops and joins it
};

// 32 lowercase hex characters: safe to put in a URL path.
bool isExtractId(const std::string& id) {
    return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Checks a manifest's signature and shape; returns the parsed manifest or throws FetchError.
Manifest checkedManifest(const std::string& text, const policy::Signature& sig, const policy::PublicKey& camera) {
    if (!policy::verify(camera.signKey, text, sig))
        throw FetchError("the manifest's signature does not verify with the camera key " + camera.name);
    const ParsedManifest parsed = parseManifest(text);
    if (!parsed.manifest) throw FetchError(parsed.error);
    return *parsed.manifest;
}

}  // namespace

FetchError::FetchError(const std::string& message, int httpStatus, std::string code)
    : std::runtime_error(common::escapeControls(message)), httpStatus_(httpStatus), code_(std::move(code)) {}

UnsealResult unsealFile(const fs::path& sealedFile, const fs::path& outFile, const policy::SecretKey& policeKey) {
    common::UniqueFd in(::open(sealedFile.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in.valid()) throw common::FileError(fmt::format("{}: {}", sealedFile.string(), std::strerror(errno)));
    // A new file, never one planted at that name: the plaintext clip must not land in a file
    // (or through a symlink) that someone else can read.
    common::UniqueFd out = common::createExclusive(outFile, kPrivate);
    Sha256 hash;
    UnsealResult result;
    Unsealer unsealer(policeKey.boxPublic(), policeKey.boxSecret(), [&](std::span<const std::uint8_t> plain) {
        hash.update(plain);
        common::writeAll(out.get(), plain, outFile.string());
        result.bytes += plain.size();
    });
    std::vector<std::uint8_t> buffer(kIoChunk);
    for (;;) {
        const ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw common::FileError(fmt::format("{}: {}", sealedFile.string(), std::strerror(errno)));
        if (n == 0) break;
        unsealer.write(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)));
    }
    unsealer.finish();
    syncAndClose(out, outFile);
    result.sha256 = hash.hexDigest();
    return result;
}

FetchResult fetchExtract(const FetchOptions& o) {
    auto note = [&](const std::string& s) {
        if (o.onNote) o.onNote(s);
    };
    const std::string requestBytes = common::readFile(o.requestFile);
    const std::string requestSha = sha256Hex(requestBytes);
    const policy::SecretKey police = policy::loadSecretKey(o.policeKeyFile);
    if (police.role() != policy::Role::Police)
        throw policy::KeyError(fmt::format("{}: not a police key", o.policeKeyFile.string()));
    const policy::PublicKey camera = policy::loadPublicKey(o.cameraKeyFile);
    if (camera.role != policy::Role::Camera)
        throw policy::KeyError(fmt::format("{}: not a camera key", o.cameraKeyFile.string()));

    if (!fs::exists(o.outDir)) {
        fs::create_directories(o.outDir);
        fs::permissions(o.outDir, fs::perms::owner_all);  // the clip is plaintext footage
    }
    const fs::path statePath = o.outDir / kStateFile;
    TlsPin pin;  // outlives `client`, whose TLS context points at it
    auto client = makeClient(o.cameraUrl, o.insecureHttp, pin);
    if (o.cameraUrl.starts_with("https://")) {
        pinCameraKey(*client, pin, camera, o.cameraUrl);
        note(fmt::format("the camera's TLS key is the one camera {} signed (SPKI SHA-256 {}...)", camera.name,
                         spkiHex(*pin.pinned).substr(0, 16)));
    }

    // 1. Submit, unless an earlier run already did (the camera grants a request only once).
    std::string extractId;
    if (const std::string stateText = readState(statePath); !stateText.empty()) {
        const Json state = Json::parse(stateText, nullptr, false);
        if (state.is_object() && state.contains("request_sha256") && state["request_sha256"] == requestSha &&
            state.contains("extract_id") && state["extract_id"].is_string() &&
            isExtractId(state["extract_id"].get<std::string>())) {
            extractId = state["extract_id"].get<std::string>();
            note(fmt::format("resuming extract {} from an earlier run", extractId.substr(0, 8)));
        }
    }
    if (extractId.empty()) {
        const Answer a = postBounded(*client, "/v1/requests", requestBytes, "application/json", kMaxAnswerBytes);
        if (a.tooLong) throw FetchError(fmt::format("request: the camera's answer is longer than {} bytes", kMaxAnswerBytes));
        if (!a.result || a.status != 202) throw cameraError("request", a.result, a.body, pin);
        const Json answer = Json::parse(a.body, nullptr, false);
        if (!answer.is_object() || !answer.contains("extract_id") || !answer["extract_id"].is_string())
            throw FetchError("request: the camera's answer has no extract_id");
        extractId = answer["extract_id"].get<std::string>();
        if (!isExtractId(extractId))
            throw FetchError("request: the camera's extract_id is malformed");
        common::writeFileAtomic(statePath, Json{{"request_sha256", requestSha},
                                                {"camera", o.cameraUrl},
                                                {"extract_id", extractId}}.dump(2) + "\n");
        note("request granted; the camera is building the extract");
    }

    // 2. Wait for the signed manifest, then check it belongs to this request and this key.
    std::string manifestText;
    policy::Signature signature{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.maxWaitSeconds);
    for (;;) {
        const Answer a = getBounded(*client, "/v1/extracts/" + extractId + "/manifest", kMaxAnswerBytes);
        if (a.tooLong) throw FetchError(fmt::format("manifest: the camera's answer is longer than {} bytes", kMaxAnswerBytes));
        const httplib::Result& result = a.result;
        if (result && a.status == 200) {
            std::string error;
            if (!unwrapSignedManifest(a.body, manifestText, signature, error)) throw FetchError(error);
            break;
        }
        if (!result || result->status != 202) throw cameraError("manifest", result, a.body, pin);
        if (std::chrono::steady_clock::now() > deadline)
            throw FetchError("the camera did not finish the extract in time; run again later to resume");
        int wait = 2;
        if (result->has_header("Retry-After")) wait = std::clamp(std::atoi(result->get_header_value("Retry-After").c_str()), 1, 60);
        std::this_thread::sleep_for(std::chrono::seconds(wait));
    }
    const Manifest manifest = checkedManifest(manifestText, signature, camera);
    const policy::Request request = [&] {
        const auto parsed = policy::parseSignedRequest(requestBytes);
        if (!parsed.request) throw FetchError(fmt::format("{}: {}", o.requestFile.string(), parsed.error));
        return parsed.request->request;
    }();
    if (manifest.requestSha256 != requestSha) throw FetchError("the manifest is for another request");
    if (manifest.cameraId != request.cameraId) throw FetchError("the manifest is from another camera");
    if (manifest.recipient != policy::toBase64(police.boxPublic()))
        throw FetchError("the extract is sealed to another key than this police key");
    if (manifest.cameraKeyId != camera.keyId()) throw FetchError("the manifest names another camera key");

    // 3. Download, continuing a partial file (HTTP Range).
    const fs::path partPath = o.outDir / kPartialFile;
    FetchResult out;
    // Appended to only when it is the file an earlier run of ours left (openOwnFile).
    common::UniqueFd fd = openOwnFile(partPath, O_WRONLY | O_APPEND);
    std::uint64_t have = 0;
    if (fd.valid()) {
        struct stat st{};
        if (::fstat(fd.get(), &st) != 0) throw common::FileError(fmt::format("{}: {}", partPath.string(), std::strerror(errno)));
        have = static_cast<std::uint64_t>(st.st_size);
    } else {
        fd = common::createExclusive(partPath, kPrivate);
    }
    if (have > manifest.sealedBytes) {
        if (::ftruncate(fd.get(), 0) != 0) throw common::FileError(fmt::format("{}: {}", partPath.string(), std::strerror(errno)));
        have = 0;
    }
    out.resumed = have > 0;
    if (have < manifest.sealedBytes) {
        if (have > 0) note(fmt::format("resuming the download at byte {} of {}", have, manifest.sealedBytes));
        httplib::Headers headers;
        if (have > 0) headers.emplace("Range", fmt::format("bytes={}-", have));
        int status = 0;
        bool stopped = false;
        const auto result = client->Get(
            "/v1/extracts/" + extractId, headers,
            [&](const httplib::Response& response) {
                status = response.status;
                if (have > 0 && status == 200) {
                    // The whole file came instead of the rest (a proxy dropped the Range): start over.
                    if (::ftruncate(fd.get(), 0) != 0) return false;
                    have = 0;
                    return true;
                }
                const bool accepted = (have == 0 && status == 200) || (have > 0 && status == 206);
                // The transfer starts now: a progress display times its speed from here.
                if (accepted && o.onProgress) (void)o.onProgress(have, manifest.sealedBytes);
                return accepted;
            },
            [&](const char* data, std::size_t n) {
                common::writeAll(fd.get(), asBytes(data, n), partPath.string());
                have += n;
                if (o.onProgress && !o.onProgress(have, manifest.sealedBytes)) {
                    stopped = true;
                    return false;
                }
                return true;
            });
        if (::fsync(fd.get()) != 0) throw common::FileError(fmt::format("{}: fsync: {}", partPath.string(), std::strerror(errno)));
        if (stopped) throw FetchError(fmt::format("download stopped at {} of {} bytes; run again to resume", have, manifest.sealedBytes));
        if (!result) {
            if (pin.refused) throw cameraError("download", result, {}, pin);
            if (status != 0 && status != 200 && status != 206)
                throw FetchError(fmt::format("download: the camera answered HTTP {}", status), status);
            throw FetchError(fmt::format("download interrupted at {} of {} bytes ({}); run again to resume", have,
                                         manifest.sealedBytes, httplib::to_string(result.error())));
        }
        if (have != manifest.sealedBytes)
            throw FetchError(fmt::format("download ended at {} of {} bytes; run again to resume", have, manifest.sealedBytes));
    }

    fd.reset();

    // 4. Unseal (every chunk authenticates), check the clip's hash, then publish the files.
    const fs::path clipTmp = o.outDir / "clip.mp4.part";
    UnsealResult clip;
    try {
        clip = unsealFile(partPath, clipTmp, police);
    } catch (const SealError& e) {
        // A resumed download mixed with other bytes, or damage in transit: start over next time.
        fs::remove(partPath);
        fs::remove(clipTmp);
        throw FetchError(fmt::format("the downloaded extract does not decrypt ({}); it was removed, run again", e.what()));
    }
    if (clip.sha256 != manifest.mp4Sha256 || clip.bytes != manifest.mp4Bytes) {
        fs::remove(clipTmp);
        throw FetchError("the decrypted clip does not match the manifest's SHA-256");
    }
    common::writeFileAtomic(o.outDir / kManifestFile, manifestText, fs::perms::owner_read | fs::perms::owner_write);
    common::writeFileAtomic(o.outDir / kSignatureFile, formatSignature(signature));
    fs::rename(clipTmp, o.outDir / kClipFile);
    fs::rename(partPath, o.outDir / kSealedFile);
    common::fsyncDirectory(o.outDir);
    out.manifest = manifest;
    out.clip = o.outDir / kClipFile;
    return out;
}

VerifyResult verifyExtractDir(const fs::path& dir, const policy::SignPublicKey& cameraKey) {
    VerifyResult r;
    try {
        const std::string text = common::readFile(dir / kManifestFile);
        const auto sig = parseSignature(common::readFile(dir / kSignatureFile));
        if (!sig) {
            r.reason = fmt::format("{}: not a base64 Ed25519 signature", (dir / kSignatureFile).string());
            return r;
        }
        if (!policy::verify(cameraKey, text, *sig)) {
            r.reason = fmt::format("{}: the camera's signature does not verify (manifest altered or another camera)",
                                   (dir / kManifestFile).string());
            return r;
        }
        ParsedManifest parsed = parseManifest(text);
        if (!parsed.manifest) {
            r.reason = fmt::format("{}: {}", (dir / kManifestFile).string(), parsed.error);
            return r;
        }
        r.manifest = parsed.manifest;
        std::uint64_t size = 0;
        const std::string clipSha = hashFile(dir / kClipFile, size);
        if (clipSha != parsed.manifest->mp4Sha256 || size != parsed.manifest->mp4Bytes) {
            r.reason = fmt::format("{}: SHA-256 {} ({} bytes) differs from the manifest's {} ({} bytes)",
                                   (dir / kClipFile).string(), clipSha, size, parsed.manifest->mp4Sha256,
                                   parsed.manifest->mp4Bytes);
            return r;
        }
        if (fs::exists(dir / kSealedFile) && fs::file_size(dir / kSealedFile) != parsed.manifest->sealedBytes) {
            r.reason = fmt::format("{}: size differs from the manifest's", (dir / kSealedFile).string());
            return r;
        }
        r.ok = true;
    } catch (const std::exception& e) {
        r.reason = e.what();
    }
    return r;
}

StillManifest fetchStill(const StillFetchOptions& o, const policy::BoxPublicKey& recipientPublic,
                         std::span<const std::uint8_t> recipientSecret) {
    // A still of a 4K frame is a few MiB of PNG; more than this is not a still.
    constexpr std::size_t kMaxStillAnswerBytes = 64u << 20;
    const std::string requestBytes = common::readFile(o.requestFile);
    const std::string requestSha = sha256Hex(requestBytes);
    const policy::PublicKey camera = policy::loadPublicKey(o.cameraKeyFile);
    if (camera.role != policy::Role::Camera)
        throw policy::KeyError(fmt::format("{}: not a camera key", o.cameraKeyFile.string()));
    if (!fs::exists(o.outDir)) {
        fs::create_directories(o.outDir);
        fs::permissions(o.outDir, fs::perms::owner_all);  // an unmasked still shows what masks hide
    }
    TlsPin pin;  // outlives `client`, whose TLS context points at it
    auto client = makeClient(o.cameraUrl, o.insecureHttp, pin);
    if (o.cameraUrl.starts_with("https://")) pinCameraKey(*client, pin, camera, o.cameraUrl);

    const Answer a = postBounded(*client, fmt::format("/v1/stills?form={}", policy::stillFormName(o.form)), requestBytes,
                                 "application/json", kMaxStillAnswerBytes);
    if (a.tooLong) throw FetchError(fmt::format("still: the camera's answer is longer than {} bytes", kMaxStillAnswerBytes));
    const std::string& body = a.body;
    if (!a.result || a.status != 200) throw cameraError("still", a.result, body, pin);

    const Json answer = Json::parse(body, nullptr, false);
    if (!answer.is_object() || !answer.contains("manifest") || !answer["manifest"].is_string() ||
        !answer.contains("signature") || !answer["signature"].is_string() || !answer.contains("sealed") ||
        !answer["sealed"].is_string())
        throw FetchError("still: the camera's answer is not {\"manifest\", \"signature\", \"sealed\"}");
    const std::string manifestText = answer["manifest"].get<std::string>();
    const std::optional<policy::Signature> signature = parseSignature(answer["signature"].get<std::string>());
    if (!signature || !policy::verify(camera.signKey, manifestText, *signature))
        throw FetchError("still: the manifest's signature does not verify with the camera key " + camera.name);
    const ParsedStillManifest parsed = parseStillManifest(manifestText);
    if (!parsed.manifest) throw FetchError("still: " + parsed.error);
    const StillManifest& m = *parsed.manifest;
    if (m.requestSha256 != requestSha) throw FetchError("still: the manifest is for another request");
    if (m.form != o.form) throw FetchError("still: the camera sent another form than the one asked for");
    if (m.recipient != policy::toBase64(recipientPublic))
        throw FetchError("still: the still is sealed to another key than this one");

    std::vector<std::uint8_t> sealed;
    if (!policy::fromBase64(answer["sealed"].get<std::string>(), sealed) || sealed.size() != m.sealedBytes)
        throw FetchError("still: the sealed still is not base64 of the size the manifest states");
    std::vector<std::uint8_t> png;
    Unsealer unsealer(recipientPublic, recipientSecret, [&](std::span<const std::uint8_t> plain) {
        if (png.size() + plain.size() > m.pngBytes) throw SealError("more plaintext than the manifest states");
        png.insert(png.end(), plain.begin(), plain.end());
    });
    try {
        unsealer.write(sealed);
        unsealer.finish();
    } catch (const SealError& e) {
        throw FetchError(fmt::format("still: {}", e.what()));
    }
    if (png.size() != m.pngBytes || sha256Hex(png) != m.pngSha256)
        throw FetchError("still: the PNG does not match the manifest's SHA-256 and size");

    const auto privateFile = fs::perms::owner_read | fs::perms::owner_write;
    common::writeFileAtomic(o.outDir / kStillFile, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()),
                            privateFile);
    common::writeFileAtomic(o.outDir / kStillManifestFile, manifestText, privateFile);
    common::writeFileAtomic(o.outDir / kStillSignatureFile, formatSignature(*signature), privateFile);
    return m;
}

// The city's collection shares the police client's connection: the same TLS pinning through
// the camera-signed record before the body is sent (docs/city-log-route.md §2).
CityLogAnswer collectCityLog(const std::string& cameraUrl, const std::string& cameraId, const policy::PublicKey& camera,
                             const policy::SecretKey& cityKey, std::uint64_t afterSeq, const common::Clock& clock,
                             const CityLogClientOptions& options) {
    if (camera.role != policy::Role::Camera)
        throw policy::KeyError(fmt::format("key '{}' is a {} key, not a camera key", camera.name,
                                           policy::roleName(camera.role)));
    const std::string body = buildCityLogRequest(cityKey, cameraId, afterSeq, clock.nowUtc());
    TlsPin pin;  // outlives `client`, whose TLS context points at it
    auto client = makeClient(cameraUrl, options.insecureHttp, pin);
    client->set_connection_timeout(options.connectTimeoutSeconds, 0);
    client->set_read_timeout(options.exchangeTimeoutSeconds, 0);
    client->set_write_timeout(options.exchangeTimeoutSeconds, 0);
    const std::string what = fmt::format("city log of {}", cameraUrl);
    const ExchangeDeadline deadline(*client, std::chrono::seconds(options.exchangeTimeoutSeconds));
    const auto tooSlow = [&] {
        return FetchError(fmt::format("{}: no complete answer within {} s", what, options.exchangeTimeoutSeconds));
    };
    if (cameraUrl.starts_with("https://")) {
        try {
            pinCameraKey(*client, pin, camera, cameraUrl);
        } catch (const FetchError&) {
            if (deadline.expired()) throw tooSlow();
            throw;
        }
    }

    // The answer is bounded: the sealed form of the largest plaintext the route may send.
    const std::uint64_t limit = sealedSize(kMaxCityLogLinesBytes + kMaxCityLogHealthBytes + 4096);
    Answer a = postBounded(*client, std::string(kCityLogPath), body, "text/plain", static_cast<std::size_t>(limit));
    if (deadline.expired() && (!a.result || a.status != 200)) throw tooSlow();  // cut off by the deadline
    if (a.tooLong) throw FetchError(fmt::format("{}: the answer is longer than {} bytes", what, limit));
    std::string& answer = a.body;
    if (!a.result || a.status != 200) {
        if (answer.size() > kMaxAnswerBytes) answer.resize(kMaxAnswerBytes);
        throw cameraError(what, a.result, answer, pin);
    }
    try {
        return openCityLogAnswer(asBytes(answer.data(), answer.size()), cityKey, camera, body);
    } catch (const FetchError& e) {
        throw FetchError(fmt::format("{}: {}", what, e.what()));
    }
}

}  // namespace mimamori::retrieval

// The retrieval endpoint: decide, audit, build the sealed extract, serve it with Range support.
#include "mimamori/retrieval/endpoint.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/policy/decision.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/request.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/http_server.hpp"
#include "mimamori/retrieval/manifest.hpp"
#include "mimamori/retrieval/seal.hpp"
#include "mimamori/retrieval/tls.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace mimamori::retrieval {
namespace {

namespace fs = std::filesystem;
using common::UtcMicros;
using Json = nlohmann::json;

constexpr std::string_view kComponent = "retrieval";
constexpr int kBuildingRetryAfterSeconds = 1;

// ---- configuration ------------------------------------------------------------------------

fs::path resolve(const fs::path& p, const fs::path& base) { return p.is_absolute() ? p : base / p; }

}  // namespace

EndpointConfig parseEndpointConfig(std::string_view retrievalJson, const fs::path& configDir, const fs::path& stateDir) {
    EndpointConfig c;
    c.extractDir = stateDir / "extracts";
    std::vector<std::string> problems;
    const Json j = Json::parse(retrievalJson.begin(), retrievalJson.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw recorder::ConfigError("retrieval", {"retrieval: must be a JSON object"});

    auto text = [&](const char* key, auto apply, bool required) {
        if (!j.contains(key)) {
            if (required) problems.push_back(fmt::format("retrieval.{}: missing", key));
            return;
        }
        if (!j[key].is_string() || j[key].get<std::string>().empty()) {
            problems.push_back(fmt::format("retrieval.{}: must be a non-empty string", key));
            return;
        }
        apply(j[key].get<std::string>());
    };
    auto number = [&](const char* key, double low, double high, auto apply) {
        if (!j.contains(key)) return;
        if (!j[key].is_number() || j[key].get<double>() < low || j[key].get<double>() > high) {
            problems.push_back(fmt::format("retrieval.{}: must be a number in {}..{}", key, low, high));
            return;
        }
        apply(j[key].get<double>());
    };
    static const std::vector<std::string> known = {"address", "port", "trust_file", "camera_key", "extract_dir",
                                                   "max_range_hours", "max_concurrent_extracts",
                                                   "max_request_bytes", "retry_after_seconds",
                                                   "extract_ttl_hours", "http_threads", "max_connections",
                                                   "max_connections_per_peer", "request_deadline_seconds",
                                                   "unauthenticated_audit_burst",
                                                   "unauthenticated_audit_per_minute", "max_request_lifetime_days",
                                                   "tls_cert", "tls_key", "insecure_http"};
    for (const auto& item : j.items())
        if (std::find(known.begin(), known.end(), item.key()) == known.end())
            problems.push_back(fmt::format("retrieval.{}: unknown key", item.key()));

    text("address", [&](const std::string& v) { c.address = v; }, false);
    number("port", 0, 65535, [&](double v) { c.port = static_cast<int>(v); });
    text("trust_file", [&](const std::string& v) { c.trustFile = resolve(v, configDir); }, true);
    text("camera_key", [&](const std::string& v) { c.cameraKeyFile = resolve(v, configDir); }, true);
    text("extract_dir", [&](const std::string& v) { c.extractDir = resolve(v, configDir); }, false);
    // The ordinance's minimal-extract spirit: a camera may allow less than 6 h, never more than a day.
    number("max_range_hours", 0.001, 24, [&](double v) {
        c.maxRange = static_cast<UtcMicros>(v * 3600.0 * common::kMicrosPerSecond);
    });
    // A request's validity window; it also bounds how long a granted nonce is kept.
    number("max_request_lifetime_days", 0.01, 90, [&](double v) {
        c.maxLifetime = static_cast<UtcMicros>(v * static_cast<double>(common::kMicrosPerDay));
    });
    number("max_concurrent_extracts", 1, 16, [&](double v) { c.maxConcurrentExtracts = static_cast<int>(v); });
    number("max_request_bytes", 1024, 1024 * 1024, [&](double v) { c.maxRequestBytes = static_cast<std::size_t>(v); });
    number("retry_after_seconds", 1, 3600, [&](double v) { c.retryAfterSeconds = static_cast<int>(v); });
    number("extract_ttl_hours", 0.01, 24 * 14, [&](double v) {
        c.extractTtl = static_cast<UtcMicros>(v * 3600.0 * common::kMicrosPerSecond);
    });
    number("http_threads", 2, 64, [&](double v) { c.httpThreads = static_cast<int>(v); });
    number("max_connections", 4, 1024, [&](double v) { c.maxConnections = static_cast<int>(v); });
    number("max_connections_per_peer", 1, 1024, [&](double v) { c.maxConnectionsPerPeer = static_cast<int>(v); });
    number("request_deadline_seconds", 0.1, 300, [&](double v) {
        c.requestDeadline = std::chrono::milliseconds(static_cast<std::int64_t>(v * 1000.0));
    });
    number("unauthenticated_audit_burst", 1, 10000, [&](double v) { c.unauthenticatedAuditBurst = static_cast<int>(v); });
    number("unauthenticated_audit_per_minute", 0, 6000, [&](double v) { c.unauthenticatedAuditPerMinute = v; });
    text("tls_cert", [&](const std::string& v) { c.tlsCertFile = resolve(v, configDir); }, false);
    text("tls_key", [&](const std::string& v) { c.tlsKeyFile = resolve(v, configDir); }, false);
    if (j.contains("insecure_http")) {
        if (j["insecure_http"].is_boolean()) c.insecureHttp = j["insecure_http"].get<bool>();
        else problems.push_back("retrieval.insecure_http: must be true or false");
    }
    if (c.tlsCertFile.empty() && !c.cameraKeyFile.empty())
        c.tlsCertFile = fs::path(c.cameraKeyFile).replace_extension(kTlsCertSuffix);
    if (c.tlsKeyFile.empty() && !c.cameraKeyFile.empty())
        c.tlsKeyFile = fs::path(c.cameraKeyFile).replace_extension(kTlsKeySuffix);
    if (!problems.empty()) throw recorder::ConfigError("retrieval", problems);
    return c;
}

namespace {

// ---- one extract --------------------------------------------------------------------------

enum class ExtractState { Building, Ready, Failed };

struct Extract {
    std::string id;
    std::string requestId;
    std::string requestSha256;
    ExtractState state = ExtractState::Building;
    std::string failure;
    std::string manifestText;
    policy::Signature signature{};
    std::uint64_t sealedBytes = 0;
    std::uint64_t mp4Bytes = 0;
    std::string mp4Sha256;
    UtcMicros actualFrom = 0;
    UtcMicros actualTo = 0;
    UtcMicros createdAt = 0;
    // Byte ranges [begin, end) of the sealed file sent so far, merged; complete when [0, size).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> sent;
    bool deliveryAudited = false;
};

void addRange(std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges, std::uint64_t begin, std::uint64_t end) {
    ranges.emplace_back(begin, end);
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> merged;
    for (const auto& r : ranges) {
        if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
        else merged.push_back(r);
    }
    ranges = std::move(merged);
}

std::string jsonError(std::string_view code, std::string_view reason) {
    return Json{{"error", code}, {"reason", reason}}.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

HttpResponse jsonAnswer(int status, std::string body) {
    HttpResponse res;
    res.status = status;
    res.body = std::move(body);
    return res;
}

HttpResponse errorAnswer(int status, std::string_view code, std::string_view reason) {
    return jsonAnswer(status, jsonError(code, reason));
}

std::string randomExtractId() {
    std::array<std::uint8_t, 16> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    return common::toHex(bytes);
}

// Text from the network, cut so that its JSON form in the audit log takes at most `maxJson`
// bytes (control characters grow sixfold when escaped; bad UTF-8 becomes U+FFFD).
std::string capped(std::string_view text, std::size_t maxJson) {
    std::string out(text.substr(0, maxJson));
    while (Json(out).dump(-1, ' ', false, Json::error_handler_t::replace).size() > maxJson)
        out.resize(out.size() * 3 / 4);
    return out;
}

constexpr std::size_t kMaxFieldJson = 160;  // one text field of an unauthenticated entry
constexpr std::size_t kMaxTargetJson = 128;

// Refusals decided before the police signature was verified: anyone can cause them.
bool unauthenticated(policy::RefusalReason reason) {
    using R = policy::RefusalReason;
    return reason == R::Malformed || reason == R::DisclosureRequest || reason == R::UnknownGround ||
           reason == R::UnknownPoliceKey || reason == R::BadPoliceSignature;
}

// "/v1/extracts/<32 hex>" or ".../manifest": the id, or empty.
std::string extractIdIn(std::string_view path, bool manifest) {
    constexpr std::string_view prefix = "/v1/extracts/";
    constexpr std::string_view suffix = "/manifest";
    if (!path.starts_with(prefix)) return {};
    path.remove_prefix(prefix.size());
    if (manifest) {
        if (!path.ends_with(suffix)) return {};
        path.remove_suffix(suffix.size());
    }
    if (path.size() != 32) return {};
    for (char c : path)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
    return std::string(path);
}

// A single "bytes=A-" or "bytes=A-B" range; anything else is ignored (the whole file is sent).
std::optional<std::pair<std::uint64_t, std::optional<std::uint64_t>>> parseRange(std::string_view value) {
    constexpr std::string_view unit = "bytes=";
    if (!value.starts_with(unit)) return std::nullopt;
    value.remove_prefix(unit.size());
    const auto dash = value.find('-');
    if (dash == std::string_view::npos || dash == 0) return std::nullopt;
    auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
        if (digits.empty() || digits.size() > 18) return std::nullopt;
        std::uint64_t v = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        return v;
    };
    const auto first = number(value.substr(0, dash));
    if (!first) return std::nullopt;
    const std::string_view rest = value.substr(dash + 1);
    if (rest.empty()) return std::pair{*first, std::optional<std::uint64_t>()};
    const auto last = number(rest);
    if (!last || *last < *first) return std::nullopt;
    return std::pair{*first, last};
}

// Each connection may hold its socket and one sealed file open; the rest of the daemon (the
// recorder first) keeps this many descriptors out of the network's reach.
constexpr rlim_t kReservedDescriptors = 256;

HttpLimits httpLimits(const EndpointConfig& c) {
    HttpLimits l;
    l.maxConnections = c.maxConnections;
    l.maxConnectionsPerPeer = c.maxConnectionsPerPeer;
    l.requestDeadline = c.requestDeadline;
    l.maxBodyBytes = c.maxRequestBytes;
    l.threads = c.httpThreads;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        const rlim_t wanted = 2 * static_cast<rlim_t>(l.maxConnections) + kReservedDescriptors;
        if (wanted > limit.rlim_cur) {
            const rlim_t room = limit.rlim_cur > kReservedDescriptors + 8 ? limit.rlim_cur - kReservedDescriptors : 8;
            l.maxConnections = static_cast<int>(std::max<rlim_t>(4, room / 2));
            l.maxConnectionsPerPeer = std::min(l.maxConnectionsPerPeer, l.maxConnections);
            common::logWarning(kComponent,
                               "RLIMIT_NOFILE {} leaves room for {} connections, not max_connections {}; serving {}",
                               limit.rlim_cur, l.maxConnections, c.maxConnections, l.maxConnections);
        }
    }
    return l;
}

class EndpointImpl final : public Endpoint, private HttpHandler {
public:
    EndpointImpl(const EndpointConfig& config, std::string cameraId, recorder::SegmentStore& store,
                 policy::AuditLog& audit, policy::NonceStore& nonces, const common::Clock& clock,
                 MaskHashProvider maskSha256)
        : config_(config),
          cameraId_(std::move(cameraId)),
          store_(store),
          audit_(audit),
          nonces_(nonces),
          clock_(clock),
          maskSha256_(std::move(maskSha256)),
          trust_(policy::TrustStore::load(config.trustFile)),
          cameraKey_(policy::loadSecretKey(config.cameraKeyFile)),
          tokens_(config.unauthenticatedAuditBurst),
          refilledAt_(std::chrono::steady_clock::now()) {
        if (cameraKey_.role() != policy::Role::Camera)
            throw policy::KeyError(fmt::format("{}: not a camera key", config.cameraKeyFile.string()));
        if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
        fs::create_directories(config_.extractDir);
        fs::permissions(config_.extractDir, fs::perms::owner_all, fs::perm_options::replace);
        reopenExtracts();
        std::optional<HttpTls> tls;
        if (!config_.insecureHttp) {
            tlsKeyRecord_ = tlsKeyRecordFor(config_.tlsCertFile, config_.tlsKeyFile, cameraKey_);
            tls = HttpTls{config_.tlsCertFile, config_.tlsKeyFile};
        }
        server_ = HttpServer::start(config_.address, config_.port, httpLimits(config_), *this, tls);
        flusher_ = std::thread([this] { flushLoop(); });
        if (tls)
            common::logInfo(kComponent, "serving retrieval requests on {}:{} over HTTPS (TLS key SPKI SHA-256 {})",
                            config_.address, server_->port(), spkiHex(spkiSha256OfCertFile(config_.tlsCertFile)));
        else
            common::logWarning(kComponent, "serving retrieval requests on {}:{} over plain HTTP (insecure_http: tests only)",
                               config_.address, server_->port());
    }

    ~EndpointImpl() override { stop(); }

    int port() const override { return server_->port(); }

    void stop() override {
        if (stopped_.exchange(true)) return;
        server_->stop();
        {
            std::lock_guard lock(flushMutex_);
            flushWake_.notify_all();
        }
        if (flusher_.joinable()) flusher_.join();
        try {
            flushSuppressed(true);
        } catch (const std::exception& e) {
            common::logError(kComponent, "audit log write failed: {}", e.what());
        }
        std::vector<Builder> builders;
        {
            std::lock_guard lock(mutex_);
            builders.swap(builders_);
        }
        for (auto& b : builders) b.thread.join();
    }

private:
    // ---- routes (HttpHandler, on the server's threads) --------------------------------------
    HttpResponse handle(const HttpRequest& req) override {
        const std::string_view path = req.path();
        if (req.method == "POST" && path == "/v1/requests") return onRequest(req);
        if (req.method == "GET") {
            if (path == kTlsKeyRecordPath && !tlsKeyRecord_.empty()) {
                HttpResponse res;
                res.contentType = "text/plain";
                res.body = tlsKeyRecord_;
                return res;
            }
            if (auto id = extractIdIn(path, false); !id.empty()) return onExtract(req, id);
            if (auto id = extractIdIn(path, true); !id.empty()) return onManifest(req, id);
        }
        return refuseRoute(req, 404, "not_found", "no such route");
    }

    HttpResponse refuse(const HttpRequest& req, HttpProblem problem) override {
        const int status = problemStatus(problem);
        const std::string code(problemCode(problem));
        std::string text;
        switch (problem) {
            case HttpProblem::Malformed: text = "not a well-formed HTTP/1.1 request"; break;
            case HttpProblem::HeaderTooLarge: text = "request header over 8192 bytes"; break;
            case HttpProblem::TooManyHeaders: text = "more than 64 header fields"; break;
            case HttpProblem::TransferEncoding:
                text = "Transfer-Encoding is not accepted (send the body with Content-Length)";
                break;
            case HttpProblem::BodyNotAllowed: text = fmt::format("a {} request may not carry a body", req.method); break;
            case HttpProblem::LengthRequired:
                text = "request without Content-Length (chunked bodies are not accepted)";
                break;
            case HttpProblem::TooLarge:
                text = fmt::format("request body of {} bytes exceeds the limit of {} bytes",
                                   req.header("content-length").value_or("?"), config_.maxRequestBytes);
                break;
        }
        if (req.method == "POST" && req.path() == "/v1/requests") {
            // The documented pair for the request route: received (what little is known), refused.
            policy::AuditFields received = {{"request_id", std::string()}, {"bytes", std::int64_t{0}}};
            if (const auto declared = req.header("content-length"))
                received.push_back({"declared_bytes", capped(*declared, 32)});
            received.push_back({"remote", req.peer});
            const bool written = auditUnauthenticated(
                {{policy::audit::kRequestReceived, std::move(received)},
                 {policy::audit::kRequestRefused, {{"request_id", std::string()}, {"reason", code}, {"text", capped(text, kMaxFieldJson)}}}});
            if (written) common::logInfo(kComponent, "request from {} refused: {} ({})", req.peer, code, text);
        } else {
            auditHttpRefused(req, code, status);
        }
        return errorAnswer(status, code, text);
    }

    void dropped(const HttpRequest& req, std::string_view reason) override {
        auditHttpRefused(req, std::string(reason), 0);
    }

    // A request outside the documented routes (or for an unknown extract), recorded within the
    // unauthenticated budget.
    HttpResponse refuseRoute(const HttpRequest& req, int status, std::string_view code, std::string_view reason) {
        auditHttpRefused(req, std::string(code), status);
        return errorAnswer(status, code, reason);
    }

    void auditHttpRefused(const HttpRequest& req, const std::string& reason, int status) {
        policy::AuditFields fields = {{"remote", req.peer},
                                      {"method", capped(req.method, 24)},
                                      {"target", capped(req.target, kMaxTargetJson)},
                                      {"reason", reason}};
        if (status != 0) fields.push_back({"status", std::int64_t{status}});
        try {
            auditUnauthenticated({{kHttpRefused, std::move(fields)}});
        } catch (const std::exception& e) {
            common::logError(kComponent, "audit log write failed: {}", e.what());
        }
    }

    // ---- the unauthenticated audit budget -------------------------------------------------
    static constexpr std::string_view kHttpRefused = "http_refused";
    static constexpr std::string_view kSuppressed = "unauthenticated_suppressed";

    // Takes one token for these entries (written in order, after a pending suppressed count);
    // without a token they are only counted. Returns whether they were written. Throws what
    // AuditLog::append throws.
    bool auditUnauthenticated(const std::vector<std::pair<std::string_view, policy::AuditFields>>& entries) {
        std::lock_guard lock(budgetMutex_);
        if (!takeToken()) {
            const UtcMicros now = clock_.nowUtc();
            if (suppressed_ == 0) suppressedFrom_ = now;
            suppressedTo_ = now;
            ++suppressed_;
            return false;
        }
        writeSuppressedLocked();
        for (const auto& [type, fields] : entries) audit_.append(type, fields);
        return true;
    }

    // Called with budgetMutex_ held.
    bool takeToken() {
        const auto now = std::chrono::steady_clock::now();
        const double minutes = std::chrono::duration<double, std::ratio<60>>(now - refilledAt_).count();
        refilledAt_ = now;
        tokens_ = std::min<double>(config_.unauthenticatedAuditBurst,
                                   tokens_ + minutes * config_.unauthenticatedAuditPerMinute);
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

    // Called with budgetMutex_ held.
    void writeSuppressedLocked() {
        if (suppressed_ == 0) return;
        audit_.append(kSuppressed, {{"count", static_cast<std::int64_t>(suppressed_)},
                                    {"from", common::formatUtc(suppressedFrom_)},
                                    {"to", common::formatUtc(suppressedTo_)}});
        common::logWarning(kComponent, "{} unauthenticated requests or connections not audited one by one (budget)",
                           suppressed_);
        suppressed_ = 0;
    }

    // Writes the suppressed count when a token allows (or `final`, at stop, regardless).
    void flushSuppressed(bool final) {
        std::lock_guard lock(budgetMutex_);
        if (suppressed_ == 0) return;
        if (final || takeToken()) writeSuppressedLocked();
    }

    void flushLoop() {
        std::unique_lock lock(flushMutex_);
        while (!stopped_) {
            flushWake_.wait_for(lock, std::chrono::seconds(10));
            if (stopped_) break;
            lock.unlock();
            try {
                flushSuppressed(false);
            } catch (const std::exception& e) {
                common::logError(kComponent, "audit log write failed: {}", e.what());
            }
            lock.lock();
        }
    }

    // ---- POST /v1/requests ----------------------------------------------------------------
    HttpResponse onRequest(const HttpRequest& req) {
        sweepExpired();
        const std::string& bytes = req.body;
        const std::string requestSha = sha256Hex(bytes);
        const policy::ParsedSignedRequest parsed = policy::parseSignedRequest(bytes);
        const std::string requestId = parsed.request ? parsed.request->request.requestId : std::string();

        policy::DecisionInput input;
        input.requestBytes = bytes;
        input.trust = &trust_;
        input.cameraId = cameraId_;
        input.maxRange = config_.maxRange;
        input.maxLifetime = config_.maxLifetime;
        if (parsed.request) {
            const auto& r = parsed.request->request;
            for (const auto& s : store_.list(r.from, r.to)) input.held.push_back({s.start, s.end});
        }
        input.nonceSeen = [this](std::span<const std::uint8_t> nonce) { return nonces_.seen(nonce); };
        input.now = clock_.nowUtc();

        // Anyone can send bytes that fail before the police signature: those are audited within
        // the unauthenticated budget, their text fields capped.
        const policy::Decision first = policy::decide(input);
        if (!first.granted && unauthenticated(first.reason)) {
            const std::string code(policy::reasonCode(first.reason));
            bool written = false;
            try {
                written = auditUnauthenticated(
                    {{policy::audit::kRequestReceived,
                      {{"request_id", capped(requestId, kMaxFieldJson)},
                       {"bytes", static_cast<std::int64_t>(bytes.size())},
                       {"request_sha256", requestSha},
                       {"remote", req.peer}}},
                     {policy::audit::kRequestRefused,
                      {{"request_id", capped(requestId, kMaxFieldJson)},
                       {"reason", code},
                       {"text", capped(first.text, kMaxFieldJson)},
                       {"request_sha256", requestSha}}}});
            } catch (const std::exception& e) {
                return auditFailure(e);
            }
            if (written)
                common::logInfo(kComponent, "request {} refused: {} ({})", requestId.empty() ? "(unparsed)" : requestId,
                                code, first.text);
            return errorAnswer(first.reason == policy::RefusalReason::Malformed ? 400 : 403, code, first.text);
        }

        try {
            audit_.append(policy::audit::kRequestReceived,
                          {{"request_id", requestId},
                           {"bytes", static_cast<std::int64_t>(bytes.size())},
                           {"request_sha256", requestSha},
                           {"remote", req.peer}});
        } catch (const std::exception& e) {
            return auditFailure(e);
        }

        // Decisions are taken one at a time, and a grant takes its build slot in the same step.
        // While K extracts are building, a request that would be granted is told to come back
        // (503) without spending its nonce; every other request is refused on its merits.
        bool busy = false;
        policy::Decision decision;
        {
            std::lock_guard decisionLock(decisionMutex_);
            bool full = false;
            {
                std::lock_guard lock(mutex_);
                full = building_ >= config_.maxConcurrentExtracts;
            }
            input.now = clock_.nowUtc();
            if (full) {
                decision = policy::decide(input);
                busy = decision.granted;
                decision.granted = false;
            } else {
                input.nonceSeen = nullptr;
                decision = policy::decideAndRecord(input, nonces_);
                if (decision.granted) {
                    std::lock_guard lock(mutex_);
                    ++building_;
                }
            }
        }
        if (busy) {
            const std::string text = fmt::format("{} extract(s) being built; retry after {} s",
                                                 config_.maxConcurrentExtracts, config_.retryAfterSeconds);
            if (auto failed = appendRefusal(requestId, requestSha, "busy", text)) return std::move(*failed);
            HttpResponse res = errorAnswer(503, "busy", text);
            res.headers.emplace_back("Retry-After", std::to_string(config_.retryAfterSeconds));
            return res;
        }
        struct SlotGuard {
            EndpointImpl* self;
            bool held;
            ~SlotGuard() {
                if (held) self->releaseSlot();
            }
        } guard{this, decision.granted};

        if (!decision.granted) {
            const std::string code(policy::reasonCode(decision.reason));
            if (auto failed = appendRefusal(requestId, requestSha, code, decision.text)) return std::move(*failed);
            return errorAnswer(decision.reason == policy::RefusalReason::Malformed ? 400 : 403, code, decision.text);
        }

        const policy::SignedRequest& signedRequest = *decision.request;
        const policy::Request& r = signedRequest.request;
        try {
            audit_.append(policy::audit::kRequestGranted,
                          {{"request_id", r.requestId},
                           {"request_sha256", requestSha},
                           {"ground", r.groundWord},
                           {"article", std::string(policy::groundArticle(r.ground))},
                           {"reference", r.reference},
                           {"purpose", r.purpose},
                           {"body", r.body},
                           {"officer", r.officer},
                           {"police_key", decision.policeName},
                           {"approver", decision.approverName},
                           {"from", common::formatUtc(r.from)},
                           {"to", common::formatUtc(r.to)}});
        } catch (const std::exception& e) {
            return auditFailure(e);
        }

        auto extract = std::make_shared<Extract>();
        extract->id = randomExtractId();
        extract->requestId = r.requestId;
        extract->requestSha256 = requestSha;
        extract->createdAt = clock_.nowUtc();
        {
            std::lock_guard lock(mutex_);
            extracts_[extract->id] = extract;
            guard.held = false;  // the builder releases the slot when done
            reapBuilders();
            auto done = std::make_shared<std::atomic<bool>>(false);
            builders_.push_back({std::thread([this, extract, signedRequest, bytes, done] {
                                     build(extract, signedRequest, bytes);
                                     *done = true;
                                 }),
                                 done});
        }
        common::logInfo(kComponent, "request {} granted; building extract", r.requestId);
        HttpResponse res = jsonAnswer(
            202, Json{{"status", "building"}, {"request_id", r.requestId}, {"extract_id", extract->id}}.dump() + "\n");
        res.headers.emplace_back("Location", "/v1/extracts/" + extract->id);
        return res;
    }

    // A refusal of a request whose police signature verified. Returns the 500 answer when the
    // audit log refuses the entry, nothing otherwise.
    std::optional<HttpResponse> appendRefusal(const std::string& requestId, const std::string& requestSha,
                                              const std::string& code, const std::string& text) {
        try {
            audit_.append(policy::audit::kRequestRefused,
                          {{"request_id", requestId}, {"reason", code}, {"text", text}, {"request_sha256", requestSha}});
        } catch (const std::exception& e) {
            return auditFailure(e);
        }
        common::logInfo(kComponent, "request {} refused: {} ({})", requestId, code, text);
        return std::nullopt;
    }

    HttpResponse auditFailure(const std::exception& e) {
        // Nothing is granted or sent without its audit entry on disk.
        common::logError(kComponent, "audit log write failed: {}", e.what());
        return errorAnswer(500, "audit_unavailable", "the camera cannot write its audit log");
    }

    // Joins builder threads that have finished. Called with mutex_ held.
    void reapBuilders() {
        for (auto it = builders_.begin(); it != builders_.end();) {
            if (*it->done) {
                it->thread.join();
                it = builders_.erase(it);
            } else {
                ++it;
            }
        }
    }

    void releaseSlot() {
        std::lock_guard lock(mutex_);
        --building_;
    }

    // ---- building -------------------------------------------------------------------------
    void build(std::shared_ptr<Extract> extract, policy::SignedRequest signedRequest, std::string requestBytes) {
        lowerThreadPriority();
        const policy::Request& r = signedRequest.request;
        const fs::path part = config_.extractDir / (extract->id + ".sealed.part");
        try {
            const SealedExtract sealed = writeSealedExtract(store_, r.from, r.to, r.recipient, part,
                                                            [this] { return stopped_.load(); });
            const ExtractResult& result = sealed.extract;

            Manifest m;
            m.requestId = r.requestId;
            m.cameraId = cameraId_;
            m.requestSha256 = sha256Hex(requestBytes);
            m.ground = r.groundWord;
            m.reference = r.reference;
            m.requestedFrom = r.from;
            m.requestedTo = r.to;
            m.actualFrom = result.actualFrom;
            m.actualTo = result.actualTo;
            m.frames = result.frames;
            m.timestampRepairs = result.timestampRepairs;
            m.gaps = result.gaps;
            m.mp4Sha256 = sealed.mp4Sha256;
            m.mp4Bytes = sealed.mp4Bytes;
            m.sealedBytes = sealed.sealedBytes;
            m.recipient = policy::toBase64(r.recipient);
            m.maskSha256 = maskSha256_ ? maskSha256_() : std::string();
            m.software = std::string("mimamori ") + MIMAMORI_VERSION;
            m.createdAt = clock_.nowUtc();
            m.cameraKeyId = cameraKey_.keyId();
            const std::string manifestText = serializeManifest(m);
            const policy::Signature signature = policy::sign(cameraKey_, manifestText);
            common::writeFileAtomic(config_.extractDir / (extract->id + ".manifest.json"), manifestText);
            common::writeFileAtomic(config_.extractDir / (extract->id + ".manifest.sig"), formatSignature(signature));
            fs::rename(part, config_.extractDir / (extract->id + ".sealed"));
            common::fsyncDirectory(config_.extractDir);
            {
                std::lock_guard lock(mutex_);
                extract->manifestText = manifestText;
                extract->signature = signature;
                extract->sealedBytes = m.sealedBytes;
                extract->mp4Bytes = m.mp4Bytes;
                extract->mp4Sha256 = m.mp4Sha256;
                extract->actualFrom = m.actualFrom;
                extract->actualTo = m.actualTo;
                extract->state = ExtractState::Ready;
            }
            common::logInfo(kComponent, "extract for request {} ready: {} frames, {} bytes sealed", r.requestId,
                            m.frames, m.sealedBytes);
        } catch (const std::exception& e) {
            std::error_code ignored;
            fs::remove(part, ignored);
            common::logError(kComponent, "extract for request {} failed: {}", r.requestId, e.what());
            try {
                audit_.append("extract_failed", {{"request_id", r.requestId},
                                                  {"request_sha256", extract->requestSha256},
                                                  {"text", std::string(e.what())}});
            } catch (const std::exception& auditError) {
                common::logError(kComponent, "audit log write failed: {}", auditError.what());
            }
            std::lock_guard lock(mutex_);
            extract->state = ExtractState::Failed;
            extract->failure = e.what();
        }
        releaseSlot();
    }

    // ---- GET ------------------------------------------------------------------------------
    std::shared_ptr<Extract> find(const std::string& id) {
        std::lock_guard lock(mutex_);
        const auto it = extracts_.find(id);
        return it == extracts_.end() ? nullptr : it->second;
    }

    // The answer for an extract that is not ready; nothing when it is ready.
    std::optional<HttpResponse> answerNotReady(const HttpRequest& req, const std::shared_ptr<Extract>& extract) {
        if (!extract) return refuseRoute(req, 404, "not_found", "no such extract");
        std::lock_guard lock(mutex_);
        if (extract->state == ExtractState::Building) {
            HttpResponse res = jsonAnswer(202, Json{{"status", "building"}, {"request_id", extract->requestId}}.dump() + "\n");
            res.headers.emplace_back("Retry-After", std::to_string(kBuildingRetryAfterSeconds));
            return res;
        }
        if (extract->state == ExtractState::Failed) return errorAnswer(500, "extract_failed", extract->failure);
        return std::nullopt;
    }

    HttpResponse onManifest(const HttpRequest& req, const std::string& id) {
        sweepExpired();
        const auto extract = find(id);
        if (auto notReady = answerNotReady(req, extract)) return std::move(*notReady);
        std::lock_guard lock(mutex_);
        return jsonAnswer(200, wrapSignedManifest(extract->manifestText, extract->signature));
    }

    HttpResponse onExtract(const HttpRequest& req, const std::string& id) {
        sweepExpired();
        const auto extract = find(id);
        if (auto notReady = answerNotReady(req, extract)) return std::move(*notReady);
        const fs::path path = config_.extractDir / (extract->id + ".sealed");
        auto fd = std::make_shared<common::UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd->valid()) return refuseRoute(req, 404, "not_found", "no such extract");
        const std::uint64_t size = extract->sealedBytes;
        HttpResponse res;
        res.contentType = "application/octet-stream";
        res.headers.emplace_back("Accept-Ranges", "bytes");
        res.streamBegin = 0;
        res.streamEnd = size;
        if (const auto rangeHeader = req.header("range")) {
            if (const auto range = parseRange(*rangeHeader)) {
                if (range->first >= size) {
                    HttpResponse unsatisfiable = errorAnswer(416, "range_not_satisfiable",
                                                             fmt::format("the extract has {} bytes", size));
                    unsatisfiable.headers.emplace_back("Content-Range", fmt::format("bytes */{}", size));
                    return unsatisfiable;
                }
                res.status = 206;
                res.streamBegin = range->first;
                res.streamEnd = range->second ? std::min(*range->second + 1, size) : size;
                res.headers.emplace_back("Content-Range",
                                         fmt::format("bytes {}-{}/{}", res.streamBegin, res.streamEnd - 1, size));
            }
        }
        res.stream = [fd](std::uint64_t offset, std::span<char> buffer) -> std::size_t {
            const ssize_t n = ::pread(fd->get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
            return n > 0 ? static_cast<std::size_t>(n) : 0;
        };
        res.onSent = [this, extract, size](std::uint64_t begin, std::uint64_t end, const std::string& peer) {
            noteSent(extract, begin, end, size, peer);
        };
        return res;
    }

    // Audits the delivery once every byte of the sealed file has gone out (in one or more
    // resumed downloads), naming the peer that took the last of them.
    void noteSent(const std::shared_ptr<Extract>& extract, std::uint64_t begin, std::uint64_t end, std::uint64_t size,
                  const std::string& peer) {
        std::unique_lock lock(mutex_);
        if (extract->deliveryAudited) return;
        addRange(extract->sent, begin, end);
        if (!(extract->sent.size() == 1 && extract->sent[0].first == 0 && extract->sent[0].second >= size)) return;
        extract->deliveryAudited = true;
        const Extract e = *extract;
        lock.unlock();
        try {
            audit_.append(policy::audit::kExtractDelivered,
                          {{"request_id", e.requestId},
                           {"request_sha256", e.requestSha256},
                           {"bytes", static_cast<std::int64_t>(e.mp4Bytes)},
                           {"sha256", e.mp4Sha256},
                           {"sealed_bytes", static_cast<std::int64_t>(size)},
                           {"actual_from", common::formatUtc(e.actualFrom)},
                           {"actual_to", common::formatUtc(e.actualTo)},
                           {"remote", peer}});
            common::writeFileAtomic(config_.extractDir / (e.id + ".delivered"), common::formatUtc(clock_.nowUtc()) + "\n");
        } catch (const std::exception& ex) {
            common::logError(kComponent, "audit log write failed: {}", ex.what());
        }
        common::logInfo(kComponent, "extract for request {} delivered to {} ({} bytes)", e.requestId, peer, size);
    }

    // ---- extracts on disk -----------------------------------------------------------------
    void reopenExtracts() {
        const UtcMicros now = clock_.nowUtc();
        for (const auto& entry : fs::directory_iterator(config_.extractDir)) {
            const std::string name = entry.path().filename().string();
            if (name.ends_with(".part") || name.ends_with(".tmp")) {
                fs::remove(entry.path());  // an extract cut short by a stop or power cut
                continue;
            }
            if (!name.ends_with(".manifest.json")) continue;
            const std::string id = name.substr(0, name.size() - std::string_view(".manifest.json").size());
            try {
                const std::string text = common::readFile(entry.path());
                const auto parsed = parseManifest(text);
                const auto sig = parseSignature(common::readFile(config_.extractDir / (id + ".manifest.sig")));
                const fs::path sealed = config_.extractDir / (id + ".sealed");
                if (!parsed.manifest || !sig || !fs::exists(sealed) ||
                    fs::file_size(sealed) != parsed.manifest->sealedBytes ||
                    parsed.manifest->createdAt + config_.extractTtl < now) {
                    removeExtractFiles(id);
                    continue;
                }
                auto e = std::make_shared<Extract>();
                e->id = id;
                e->requestId = parsed.manifest->requestId;
                e->state = ExtractState::Ready;
                e->manifestText = text;
                e->signature = *sig;
                e->sealedBytes = parsed.manifest->sealedBytes;
                e->mp4Bytes = parsed.manifest->mp4Bytes;
                e->mp4Sha256 = parsed.manifest->mp4Sha256;
                e->requestSha256 = parsed.manifest->requestSha256;
                e->actualFrom = parsed.manifest->actualFrom;
                e->actualTo = parsed.manifest->actualTo;
                e->createdAt = parsed.manifest->createdAt;
                e->deliveryAudited = fs::exists(config_.extractDir / (id + ".delivered"));
                extracts_[id] = e;
            } catch (const std::exception& ex) {
                common::logWarning(kComponent, "dropping extract {}: {}", id, ex.what());
                removeExtractFiles(id);
            }
        }
    }

    void removeExtractFiles(const std::string& id) {
        std::error_code ignored;
        for (const char* suffix : {".sealed", ".manifest.json", ".manifest.sig", ".delivered"})
            fs::remove(config_.extractDir / (id + suffix), ignored);
    }

    // Sealed extracts are kept for extractTtl, then deleted: footage does not outlive its purpose.
    void sweepExpired() {
        const UtcMicros now = clock_.nowUtc();
        std::vector<std::string> expired;
        {
            std::lock_guard lock(mutex_);
            for (auto it = extracts_.begin(); it != extracts_.end();) {
                if (it->second->state != ExtractState::Building && it->second->createdAt + config_.extractTtl < now) {
                    expired.push_back(it->first);
                    it = extracts_.erase(it);
                } else {
                    ++it;
                }
            }
        }
        for (const auto& id : expired) {
            removeExtractFiles(id);
            common::logInfo(kComponent, "extract {} expired and deleted", id.substr(0, 8));
        }
    }

    EndpointConfig config_;
    std::string cameraId_;
    recorder::SegmentStore& store_;
    policy::AuditLog& audit_;
    policy::NonceStore& nonces_;
    const common::Clock& clock_;
    MaskHashProvider maskSha256_;
    policy::TrustStore trust_;
    policy::SecretKey cameraKey_;
    std::string tlsKeyRecord_;  // GET /v1/tls-key; empty over plain HTTP. Immutable once serving.
    std::atomic<bool> stopped_{false};

    std::mutex decisionMutex_;  // one decision at a time (taken before mutex_, never inside it)
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Extract>> extracts_;
    struct Builder {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    std::vector<Builder> builders_;
    int building_ = 0;

    std::mutex budgetMutex_;  // the unauthenticated audit budget; taken before the audit log's own
    double tokens_;
    std::chrono::steady_clock::time_point refilledAt_;
    std::uint64_t suppressed_ = 0;
    UtcMicros suppressedFrom_ = 0;
    UtcMicros suppressedTo_ = 0;
    std::mutex flushMutex_;
    std::condition_variable flushWake_;
    std::thread flusher_;

    // Last: the server's threads call into everything above, and stop() ends them first.
    std::unique_ptr<HttpServer> server_;
};

}  // namespace

std::unique_ptr<Endpoint> Endpoint::start(const EndpointConfig& config, const std::string& cameraId,
                                          recorder::SegmentStore& store, policy::AuditLog& audit,
                                          policy::NonceStore& nonces, const common::Clock& clock,
                                          MaskHashProvider maskSha256) {
    return std::make_unique<EndpointImpl>(config, cameraId, store, audit, nonces, clock, std::move(maskSha256));
}

}  // namespace mimamori::retrieval

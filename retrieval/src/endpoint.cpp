// The retrieval endpoint: decide, audit, build the sealed extract, serve it with Range support.
#include "mimamori/retrieval/endpoint.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/policy/decision.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/request.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/manifest.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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
                                                   "extract_ttl_hours", "http_threads"};
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
    number("max_concurrent_extracts", 1, 16, [&](double v) { c.maxConcurrentExtracts = static_cast<int>(v); });
    number("max_request_bytes", 1024, 1024 * 1024, [&](double v) { c.maxRequestBytes = static_cast<std::size_t>(v); });
    number("retry_after_seconds", 1, 3600, [&](double v) { c.retryAfterSeconds = static_cast<int>(v); });
    number("extract_ttl_hours", 0.01, 24 * 14, [&](double v) {
        c.extractTtl = static_cast<UtcMicros>(v * 3600.0 * common::kMicrosPerSecond);
    });
    number("http_threads", 2, 64, [&](double v) { c.httpThreads = static_cast<int>(v); });
    if (!problems.empty()) throw recorder::ConfigError("retrieval", problems);
    return c;
}

namespace {

// ---- one extract --------------------------------------------------------------------------

enum class ExtractState { Building, Ready, Failed };

struct Extract {
    std::string id;
    std::string requestId;
    ExtractState state = ExtractState::Building;
    std::string failure;
    std::string manifestText;
    policy::Signature signature{};
    std::uint64_t sealedBytes = 0;
    std::uint64_t mp4Bytes = 0;
    std::string mp4Sha256;
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
    return Json{{"error", code}, {"reason", reason}}.dump() + "\n";
}

std::string randomExtractId() {
    std::array<std::uint8_t, 16> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    return common::toHex(bytes);
}

class EndpointImpl final : public Endpoint {
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
          cameraKey_(policy::loadSecretKey(config.cameraKeyFile)) {
        if (cameraKey_.role() != policy::Role::Camera)
            throw policy::KeyError(fmt::format("{}: not a camera key", config.cameraKeyFile.string()));
        if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
        fs::create_directories(config_.extractDir);
        fs::permissions(config_.extractDir, fs::perms::owner_all, fs::perm_options::replace);
        reopenExtracts();
        setupRoutes();
        const int threads = config_.httpThreads;
        server_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
        if (config_.port == 0) {
            port_ = server_.bind_to_any_port(config_.address);
            if (port_ < 0) throw std::runtime_error(fmt::format("retrieval: cannot listen on {}", config_.address));
        } else {
            if (!server_.bind_to_port(config_.address, config_.port))
                throw std::runtime_error(fmt::format("retrieval: cannot listen on {}:{}", config_.address, config_.port));
            port_ = config_.port;
        }
        listener_ = std::thread([this] { server_.listen_after_bind(); });
        // httplib's stop() does nothing until the accept loop runs: wait for it, so a quick
        // stop() after start() cannot leave the listener running forever.
        while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        common::logInfo(kComponent, "serving retrieval requests on {}:{}", config_.address, port_);
    }

    ~EndpointImpl() override { stop(); }

    int port() const override { return port_; }

    void stop() override {
        if (stopped_.exchange(true)) return;
        server_.stop();
        if (listener_.joinable()) listener_.join();
        std::vector<Builder> builders;
        {
            std::lock_guard lock(mutex_);
            builders.swap(builders_);
        }
        for (auto& b : builders) b.thread.join();
    }

private:
    // ---- routes ---------------------------------------------------------------------------
    void setupRoutes() {
        server_.set_payload_max_length(config_.maxRequestBytes);
        server_.set_read_timeout(10, 0);
        server_.set_write_timeout(30, 0);
        // A declared body over the limit is refused before it is read.
        server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            if (req.method == "POST" && !req.has_header("Content-Length")) {
                // A chunked body has no size up front and httplib would buffer all of it.
                refuseUnsized(req, res);
                return httplib::Server::HandlerResponse::Handled;
            }
            if (req.method == "POST") {
                const std::string len = req.get_header_value("Content-Length");
                const bool tooLong = len.size() > 12 || std::stoull("0" + len) > config_.maxRequestBytes;
                if (tooLong) {
                    refuseOversized(req, res, len);
                    return httplib::Server::HandlerResponse::Handled;
                }
            }
            return httplib::Server::HandlerResponse::Unhandled;
        });
        server_.Post("/v1/requests", [this](const httplib::Request& req, httplib::Response& res) { onRequest(req, res); });
        server_.Get(R"(/v1/extracts/([0-9a-f]{32}))",
                    [this](const httplib::Request& req, httplib::Response& res) { onExtract(req, res); });
        server_.Get(R"(/v1/extracts/([0-9a-f]{32})/manifest)",
                    [this](const httplib::Request& req, httplib::Response& res) { onManifest(req, res); });
        // Every other error, including httplib's own 413 for a chunked body over the limit.
        server_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty() || res.content_length_ > 0) return httplib::Server::HandlerResponse::Unhandled;
            if (res.status == 413 && req.path == "/v1/requests") {
                refuseOversized(req, res, req.get_header_value("Content-Length"));
            } else {
                const char* code = res.status == 404 ? "not_found" : res.status == 413 ? "oversized" : "bad_request";
                res.set_content(jsonError(code, fmt::format("HTTP {}", res.status)), "application/json");
            }
            return httplib::Server::HandlerResponse::Handled;
        }));
        server_.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown error";
            try {
                if (ep) std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            common::logError(kComponent, "{} {}: {}", req.method, req.path, what);
            res.status = 500;
            res.set_content(jsonError("internal", "the camera could not handle this request"), "application/json");
        });
    }

    // ---- POST /v1/requests ----------------------------------------------------------------
    void onRequest(const httplib::Request& req, httplib::Response& res) {
        sweepExpired();
        const std::string& bytes = req.body;
        const policy::ParsedSignedRequest parsed = policy::parseSignedRequest(bytes);
        const std::string requestId = parsed.request ? parsed.request->request.requestId : std::string();

        try {
            audit_.append(policy::audit::kRequestReceived,
                          {{"request_id", requestId},
                           {"bytes", static_cast<std::int64_t>(bytes.size())},
                           {"request_sha256", sha256Hex(bytes)},
                           {"remote", req.remote_addr}});
        } catch (const std::exception& e) {
            return auditFailure(res, e);
        }

        policy::DecisionInput input;
        input.requestBytes = bytes;
        input.trust = &trust_;
        input.cameraId = cameraId_;
        input.maxRange = config_.maxRange;
        if (parsed.request) {
            const auto& r = parsed.request->request;
            for (const auto& s : store_.list(r.from, r.to)) input.held.push_back({s.start, s.end});
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
                input.nonceSeen = [this](std::span<const std::uint8_t> nonce) { return nonces_.seen(nonce); };
                decision = policy::decide(input);
                busy = decision.granted;
                decision.granted = false;
            } else {
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
            if (!appendRefusal(res, requestId, "busy", text)) return;
            res.status = 503;
            res.set_header("Retry-After", std::to_string(config_.retryAfterSeconds));
            res.set_content(jsonError("busy", text), "application/json");
            return;
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
            if (!appendRefusal(res, requestId, code, decision.text)) return;
            res.status = decision.reason == policy::RefusalReason::Malformed ? 400 : 403;
            res.set_content(jsonError(code, decision.text), "application/json");
            return;
        }

        const policy::SignedRequest& signedRequest = *decision.request;
        const policy::Request& r = signedRequest.request;
        try {
            audit_.append(policy::audit::kRequestGranted,
                          {{"request_id", r.requestId},
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
            return auditFailure(res, e);
        }

        auto extract = std::make_shared<Extract>();
        extract->id = randomExtractId();
        extract->requestId = r.requestId;
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
        res.status = 202;
        res.set_header("Location", "/v1/extracts/" + extract->id);
        res.set_content(Json{{"status", "building"}, {"request_id", r.requestId}, {"extract_id", extract->id}}.dump() + "\n",
                        "application/json");
    }

    // Returns false (and answers 500) when the audit log refuses the entry.
    bool appendRefusal(httplib::Response& res, const std::string& requestId, const std::string& code,
                       const std::string& text) {
        try {
            audit_.append(policy::audit::kRequestRefused, {{"request_id", requestId}, {"reason", code}, {"text", text}});
        } catch (const std::exception& e) {
            auditFailure(res, e);
            return false;
        }
        common::logInfo(kComponent, "request {} refused: {} ({})", requestId.empty() ? "(unparsed)" : requestId, code, text);
        return true;
    }

    void auditFailure(httplib::Response& res, const std::exception& e) {
        // Nothing is granted or sent without its audit entry on disk.
        common::logError(kComponent, "audit log write failed: {}", e.what());
        res.status = 500;
        res.set_content(jsonError("audit_unavailable", "the camera cannot write its audit log"), "application/json");
    }

    // `declared`: the Content-Length as sent (digits only, possibly huge).
    void refuseOversized(const httplib::Request& req, httplib::Response& res, const std::string& declared) {
        const std::string text = fmt::format("request body of {} bytes exceeds the limit of {} bytes", declared,
                                             config_.maxRequestBytes);
        try {
            audit_.append(policy::audit::kRequestReceived,
                          {{"request_id", std::string()}, {"declared_bytes", declared}, {"remote", req.remote_addr}});
        } catch (const std::exception& e) {
            return auditFailure(res, e);
        }
        if (!appendRefusal(res, "", "oversized", text)) return;
        res.status = 413;
        res.set_header("Connection", "close");
        res.set_content(jsonError("oversized", text), "application/json");
    }

    void refuseUnsized(const httplib::Request& req, httplib::Response& res) {
        const std::string text = "request without Content-Length (chunked bodies are not accepted)";
        try {
            audit_.append(policy::audit::kRequestReceived,
                          {{"request_id", std::string()}, {"bytes", std::int64_t{0}}, {"remote", req.remote_addr}});
        } catch (const std::exception& e) {
            return auditFailure(res, e);
        }
        if (!appendRefusal(res, "", "length_required", text)) return;
        res.status = 411;
        res.set_header("Connection", "close");
        res.set_content(jsonError("length_required", text), "application/json");
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
                extract->state = ExtractState::Ready;
            }
            common::logInfo(kComponent, "extract for request {} ready: {} frames, {} bytes sealed", r.requestId,
                            m.frames, m.sealedBytes);
        } catch (const std::exception& e) {
            std::error_code ignored;
            fs::remove(part, ignored);
            common::logError(kComponent, "extract for request {} failed: {}", r.requestId, e.what());
            try {
                audit_.append("extract_failed", {{"request_id", r.requestId}, {"text", std::string(e.what())}});
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

    // Answers for an extract that is not ready; returns false when it is ready.
    bool answerNotReady(const std::shared_ptr<Extract>& extract, httplib::Response& res) {
        std::lock_guard lock(mutex_);
        if (!extract) {
            res.status = 404;
            res.set_content(jsonError("not_found", "no such extract"), "application/json");
            return true;
        }
        if (extract->state == ExtractState::Building) {
            res.status = 202;
            res.set_header("Retry-After", std::to_string(kBuildingRetryAfterSeconds));
            res.set_content(Json{{"status", "building"}, {"request_id", extract->requestId}}.dump() + "\n",
                            "application/json");
            return true;
        }
        if (extract->state == ExtractState::Failed) {
            res.status = 500;
            res.set_content(jsonError("extract_failed", extract->failure), "application/json");
            return true;
        }
        return false;
    }

    void onManifest(const httplib::Request& req, httplib::Response& res) {
        sweepExpired();
        const auto extract = find(req.matches[1]);
        if (answerNotReady(extract, res)) return;
        std::lock_guard lock(mutex_);
        res.set_content(wrapSignedManifest(extract->manifestText, extract->signature), "application/json");
    }

    void onExtract(const httplib::Request& req, httplib::Response& res) {
        sweepExpired();
        const auto extract = find(req.matches[1]);
        if (answerNotReady(extract, res)) return;
        const fs::path path = config_.extractDir / (extract->id + ".sealed");
        auto fd = std::make_shared<common::UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd->valid()) {
            res.status = 404;
            res.set_content(jsonError("not_found", "no such extract"), "application/json");
            return;
        }
        const std::uint64_t size = extract->sealedBytes;
        res.set_header("Accept-Ranges", "bytes");
        res.set_content_provider(
            static_cast<std::size_t>(size), "application/octet-stream",
            [this, fd, extract, size](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                std::vector<char> buffer(std::min<std::size_t>(length, 64 * 1024));
                const ssize_t n = ::pread(fd->get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
                if (n <= 0) return false;
                if (!sink.write(buffer.data(), static_cast<std::size_t>(n))) return false;
                noteSent(extract, offset, offset + static_cast<std::size_t>(n), size);
                return true;
            });
    }

    // Audits the delivery once every byte of the sealed file has gone out (in one or more
    // resumed downloads).
    void noteSent(const std::shared_ptr<Extract>& extract, std::uint64_t begin, std::uint64_t end, std::uint64_t size) {
        std::unique_lock lock(mutex_);
        if (extract->deliveryAudited) return;
        addRange(extract->sent, begin, end);
        if (!(extract->sent.size() == 1 && extract->sent[0].first == 0 && extract->sent[0].second >= size)) return;
        extract->deliveryAudited = true;
        const std::string requestId = extract->requestId;
        const std::string sha = extract->mp4Sha256;
        const std::uint64_t mp4Bytes = extract->mp4Bytes;
        lock.unlock();
        try {
            audit_.append(policy::audit::kExtractDelivered,
                          {{"request_id", requestId},
                           {"bytes", static_cast<std::int64_t>(mp4Bytes)},
                           {"sha256", sha},
                           {"sealed_bytes", static_cast<std::int64_t>(size)}});
            common::writeFileAtomic(config_.extractDir / (extract->id + ".delivered"), common::formatUtc(clock_.nowUtc()) + "\n");
        } catch (const std::exception& e) {
            common::logError(kComponent, "audit log write failed: {}", e.what());
        }
        common::logInfo(kComponent, "extract for request {} delivered ({} bytes)", requestId, size);
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
    httplib::Server server_;
    std::thread listener_;
    int port_ = 0;
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
};

}  // namespace

std::unique_ptr<Endpoint> Endpoint::start(const EndpointConfig& config, const std::string& cameraId,
                                          recorder::SegmentStore& store, policy::AuditLog& audit,
                                          policy::NonceStore& nonces, const common::Clock& clock,
                                          MaskHashProvider maskSha256) {
    return std::make_unique<EndpointImpl>(config, cameraId, store, audit, nonces, clock, std::move(maskSha256));
}

}  // namespace mimamori::retrieval

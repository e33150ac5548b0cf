// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The retrieval endpoint: its configuration, and the composition of the HTTP layer with the request
// and extract services.
#include "mimamori/retrieval/endpoint.hpp"

#include "city_log_service.hpp"
#include "extract_service.hpp"
#include "request_service.hpp"
#include "still_service.hpp"
#include "router.hpp"
#include "unauthenticated_audit.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/common/config_error.hpp"
#include "mimamori/retrieval/http_server.hpp"
#include "mimamori/retrieval/tls.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace mimamori::retrieval {
namespace {

namespace fs = std::filesystem;
using common::UtcMicros;
using Json = nlohmann::json;

constexpr std::string_view kComponent = "retrieval";

// ---- configuration ------------------------------------------------------------------------

fs::path resolve(const fs::path& p, const fs::path& base) { return p.is_absolute() ? p : base / p; }

}  // namespace

EndpointConfig parseEndpointConfig(std::string_view retrievalJson, const fs::path& configDir, const fs::path& stateDir) {
    EndpointConfig c;
    c.extractDir = stateDir / "extracts";
    c.healthFile = stateDir / "health.json";
    c.ownStateDir = stateDir / "endpoint";
    c.cityLogNonceFile = c.ownStateDir / "city-log-nonces";
    std::vector<std::string> problems;
    const Json j = Json::parse(retrievalJson.begin(), retrievalJson.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw common::ConfigError("retrieval", {"retrieval: must be a JSON object"});

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
                                                   "tls_cert", "tls_key", "insecure_http", "endpoint_memory_mb",
                                                   "endpoint_max_files"};
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
    number("endpoint_memory_mb", 64, 65536, [&](double v) {
        c.processMemoryBytes = static_cast<std::uint64_t>(v) << 20;
    });
    number("endpoint_max_files", 64, 1 << 20, [&](double v) { c.processMaxFiles = static_cast<std::uint64_t>(v); });
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
    if (!problems.empty()) throw common::ConfigError("retrieval", problems);
    return c;
}

namespace {

// Each connection holds its socket; the rest of the daemon (the recorder first) keeps this many
// descriptors out of the network's reach.
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

// The composition: the services register their routes with the router, which the server
// calls. Members are built in this order and destroyed in reverse; stop() ends the server
// first, so no handler runs while the services go.
class EndpointImpl final : public Endpoint {
public:
    EndpointImpl(const EndpointConfig& config, const std::string& cameraId, store::SegmentStore& store,
                 policy::AuditTrail& audit, policy::NonceStore& nonces, const policy::SecretKey& cameraKey,
                 const common::Clock& clock, MaskHashProvider maskSha256, StillSource* stills)
        : config_(config),
          cameraKey_(cameraKey),
          trust_(policy::TrustStore::load(config.trustFile)),
          unauthenticated_(audit, clock, config.unauthenticatedAuditBurst, config.unauthenticatedAuditPerMinute),
          router_(unauthenticated_, config.maxRequestBytes),
          extracts_({config.extractDir, config.extractTtl, config.maxConcurrentExtracts, 2 * config.maxConcurrentExtracts},
                    cameraId, store, audit, clock, cameraKey_, std::move(maskSha256), unauthenticated_),
          requests_({config.maxRange, config.maxLifetime, config.maxConcurrentExtracts, config.retryAfterSeconds},
                    cameraId, trust_, store, audit, nonces, clock, unauthenticated_, extracts_),
          cityLogNonces_(config.cityLogNonceFile),
          cityLog_(cameraId, trust_, cameraKey_, config.healthFile, audit, cityLogNonces_, clock, unauthenticated_) {
        requests_.addRoutes(router_);
        extracts_.addRoutes(router_);
        cityLog_.addRoutes(router_);
        if (stills) {
            stills_.emplace(StillServiceConfig{config.maxLifetime}, cameraId, trust_, audit, nonces, clock, cameraKey_,
                            unauthenticated_, *stills);
            stills_->addRoutes(router_);
        }
        std::optional<HttpTls> tls;
        if (!config_.insecureHttp) {
            tlsKeyRecord_ = tlsKeyRecordFor(config_.tlsCertFile, config_.tlsKeyFile, cameraKey_);
            router_.add({"GET", exactPath(std::string(kTlsKeyRecordPath)), [this](const HttpRequest&, const std::string&) {
                             HttpResponse res;
                             res.contentType = "text/plain";
                             res.body = tlsKeyRecord_;
                             return res;
                         }, nullptr});
            tls = HttpTls{config_.tlsCertFile, config_.tlsKeyFile};
        }
        server_ = HttpServer::start(config_.address, config_.port, httpLimits(config_), router_, tls);
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
        if (stopped_) return;
        stopped_ = true;
        if (server_) server_->stop();
        extracts_.stop();
        unauthenticated_.stop();
    }

private:
    EndpointConfig config_;
    const policy::SecretKey& cameraKey_;  // the composition root's; outlives the endpoint
    policy::TrustStore trust_;  // loaded once, a copy to each service
    std::string tlsKeyRecord_;  // GET /v1/tls-key; empty over plain HTTP. Immutable once serving.
    UnauthenticatedAudit unauthenticated_;
    Router router_;
    ExtractService extracts_;
    RequestService requests_;
    policy::NonceStore cityLogNonces_;
    CityLogService cityLog_;
    std::optional<StillService> stills_;  // only with a StillSource
    bool stopped_ = false;
    // Last: the server's threads call into everything above, and stop() ends them first.
    std::unique_ptr<HttpServer> server_;
};

}  // namespace

std::unique_ptr<Endpoint> Endpoint::start(const EndpointConfig& config, const std::string& cameraId,
                                          store::SegmentStore& store, policy::AuditTrail& audit,
                                          policy::NonceStore& nonces, const policy::SecretKey& cameraKey,
                                          const common::Clock& clock, MaskHashProvider maskSha256,
                                          StillSource* stills) {
    if (cameraKey.role() != policy::Role::Camera)
        throw policy::KeyError(fmt::format("{}: not a camera key", config.cameraKeyFile.string()));
    // Its own state (the city log route's nonces): mimamorid makes it before the endpoint
    // process starts; a caller in-process (tests) may not have.
    if (!config.cityLogNonceFile.empty()) fs::create_directories(config.cityLogNonceFile.parent_path());
    return std::make_unique<EndpointImpl>(config, cameraId, store, audit, nonces, cameraKey, clock,
                                          std::move(maskSha256), stills);
}

}  // namespace mimamori::retrieval

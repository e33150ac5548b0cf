// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's retrieval endpoint over HTTP (docs/retrieval-http.md): requests in, sealed extracts out.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/nonce_store.hpp"
#include "mimamori/retrieval/still.hpp"
#include "mimamori/store/segment_store.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace mimamori::retrieval {

// The "retrieval" object of mimamorid's config file (docs/retrieval-http.md, "Configuration").
struct EndpointConfig {
    std::string address = "127.0.0.1";     // listen address
    int port = 8750;                       // 0: any free port (tests)
    std::filesystem::path trustFile;       // police and city keys the camera accepts
    std::filesystem::path cameraKeyFile;   // the camera's secret key (signs manifests)
    std::filesystem::path extractDir;      // plans of granted extracts (docs/extract-plan.md)
    // The city log route (docs/city-log-route.md): the health record it hands out and where it
    // remembers used nonces; <state_dir>/health.json and <state_dir>/city-log-nonces.
    std::filesystem::path healthFile;
    std::filesystem::path cityLogNonceFile;
    // What the endpoint process may write besides extract_dir (docs/endpoint-process.md):
    // <state_dir>/endpoint, holding the request nonces and the city log route's nonces.
    std::filesystem::path ownStateDir;
    // The endpoint process's limits: RLIMIT_DATA and RLIMIT_NOFILE.
    std::uint64_t processMemoryBytes = std::uint64_t{512} << 20;
    std::uint64_t processMaxFiles = 1024;
    common::UtcMicros maxRange = 6 * 3600 * common::kMicrosPerSecond;
    common::UtcMicros maxLifetime = 30 * common::kMicrosPerDay;  // expires-at - issued-at, at most
    int maxConcurrentExtracts = 1;         // K: more requests while K extracts are hashed get 503
    std::size_t maxRequestBytes = 32 * 1024;
    int retryAfterSeconds = 30;            // Retry-After of a 503
    common::UtcMicros extractTtl = 24 * 3600 * common::kMicrosPerSecond;  // then the plan and its hold go
    int httpThreads = 8;
    // The network side's budget (docs/retrieval-http.md, "Budgets").
    int maxConnections = 64;               // open connections, all peers together
    int maxConnectionsPerPeer = 8;         // open connections from one IP address
    std::chrono::milliseconds requestDeadline{10'000};  // whole request, accept to last byte
    // What requests that are not signed by a trusted police key may write to the audit log:
    // a bucket of `burst` requests, refilled at `perMinute`; the rest are counted in an
    // unauthenticated_suppressed entry.
    int unauthenticatedAuditBurst = 20;
    double unauthenticatedAuditPerMinute = 6;
    // HTTPS (docs/keys.md): the camera's TLS certificate and key, by default NAME.tls.crt and
    // NAME.tls.key beside camera_key's NAME.secret. insecureHttp serves plain HTTP (tests only).
    std::filesystem::path tlsCertFile;
    std::filesystem::path tlsKeyFile;
    bool insecureHttp = false;
};

// Parses the daemon config's "retrieval" object, as JSON text. Relative paths are
// taken from `configDir` (the config file's directory, as for every other path in it);
// extract_dir defaults to stateDir/extracts; healthFile is in stateDir, cityLogNonceFile in ownStateDir (stateDir/endpoint). Throws common::ConfigError listing every problem
// ("retrieval.port: must be a number in 0..65535").
EndpointConfig parseEndpointConfig(std::string_view retrievalJson, const std::filesystem::path& configDir,
                                   const std::filesystem::path& stateDir);

// Answers the hash of the mask file in force (hex), asked once per extract.
using MaskHashProvider = std::function<std::string()>;

// The running endpoint: an HTTP layer (routes to handlers) in front of the request service
// (decide, audit, grant a build slot) and the extract service (plan, hash, hold, stream, expire).
// The store, audit log, nonce store, camera key (which signs the manifests and proves the TLS
// key), clock and provider are borrowed and must outlive it; the
// store's hold provider is set while it runs. Handlers run on the HTTP server's threads;
// extracts are hashed and streamed on threads of their own at lower CPU priority. stop() (or
// destruction) ends all of them.
class Endpoint {
public:
    // Loads the trust file, reopens the plans in extractDir (hashing again those
    // not yet hashed, holding their footage), binds and starts serving. Throws std::runtime_error (bind failure,
    // policy::KeyError, common::FileError) naming what failed.
    // With `stills` (borrowed, may be null), it also answers POST /v1/stills (docs/review-still.md).
    static std::unique_ptr<Endpoint> start(const EndpointConfig& config, const std::string& cameraId,
                                           store::SegmentStore& store, policy::AuditTrail& audit,
                                           policy::NonceStore& nonces, const policy::SecretKey& cameraKey,
                                           const common::Clock& clock, MaskHashProvider maskSha256,
                                           StillSource* stills = nullptr);
    virtual ~Endpoint() = default;
    // The port actually bound (useful with port 0).
    virtual int port() const = 0;
    // Stops accepting, aborts extracts being built, waits for all threads. Idempotent.
    virtual void stop() = 0;
};

}  // namespace mimamori::retrieval

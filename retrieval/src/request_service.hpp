// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The request service: decides POST /v1/requests under the ordinance, records every step in
// the audit log before answering, and hands a grant to the extract side with a build slot.
#pragma once

#include "grants.hpp"
#include "router.hpp"
#include "unauthenticated_audit.hpp"

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/nonce_store.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/store/segment_store.hpp"

#include <mutex>
#include <optional>
#include <string>

namespace mimamori::retrieval {

struct RequestServiceConfig {
    common::UtcMicros maxRange = 0;
    common::UtcMicros maxLifetime = 0;
    int maxConcurrentExtracts = 1;  // named in the busy answer
    int retryAfterSeconds = 30;     // Retry-After of a busy answer
};

// Everything borrowed must outlive it; handlers run on the server's threads, decisions one at
// a time.
class RequestService {
public:
    RequestService(RequestServiceConfig config, std::string cameraId, policy::TrustStore trust,
                   const store::SegmentStore& store, policy::AuditTrail& audit, policy::NonceStore& nonces,
                   const common::Clock& clock, UnauthenticatedAudit& unauthenticated, Grants& grants);

    // POST /v1/requests.
    void addRoutes(Router& router);

private:
    HttpResponse onRequest(const HttpRequest& request);
    HttpResponse onRefusedByServer(const HttpRequest& request, int status, const std::string& code,
                                   const std::string& text);
    std::optional<HttpResponse> appendRefusal(const std::string& requestId, const std::string& requestSha,
                                              const std::string& code, const std::string& text);

    const RequestServiceConfig config_;
    const std::string cameraId_;
    const policy::TrustStore trust_;
    const store::SegmentStore& store_;
    policy::AuditTrail& audit_;
    policy::NonceStore& nonces_;
    const common::Clock& clock_;
    UnauthenticatedAudit& unauthenticated_;
    Grants& grants_;
    std::mutex decisionMutex_;  // one decision (and its slot) at a time
};

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The still service: decides POST /v1/stills (docs/review-still.md), takes one frame from the
// StillSource, seals it to the requester, signs its manifest, and audits every step first.
#pragma once

#include "router.hpp"
#include "unauthenticated_audit.hpp"

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/nonce_store.hpp"
#include "mimamori/retrieval/still.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace mimamori::retrieval {

struct StillServiceConfig {
    common::UtcMicros maxLifetime = 0;
    std::chrono::milliseconds frameTimeout{5000};  // for the next frame at the mask stage
};

// Everything borrowed must outlive it; handlers run on the server's threads, several at once.
class StillService {
public:
    StillService(StillServiceConfig config, std::string cameraId, policy::TrustStore trust,
                 policy::AuditTrail& audit, policy::NonceStore& nonces, const common::Clock& clock,
                 const policy::SecretKey& cameraKey, UnauthenticatedAudit& unauthenticated, StillSource& stills);

    // POST /v1/stills.
    void addRoutes(Router& router);

private:
    HttpResponse onStill(const HttpRequest& request);
    HttpResponse refuseUnauthenticated(const HttpRequest& request, const std::string& requestId,
                                       const std::string& requestSha, int status, const std::string& code,
                                       const std::string& text);

    const StillServiceConfig config_;
    const std::string cameraId_;
    const policy::TrustStore trust_;
    policy::AuditTrail& audit_;
    policy::NonceStore& nonces_;
    const common::Clock& clock_;
    const policy::SecretKey& cameraKey_;
    UnauthenticatedAudit& unauthenticated_;
    StillSource& stills_;
};

}  // namespace mimamori::retrieval

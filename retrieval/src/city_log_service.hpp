// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The city log service: POST /v1/city/log answers a trusted city key with the audit log's lines
// after a seq, health.json and a fresh checkpoint, sealed to that key (docs/city-log-route.md).
#pragma once

#include "router.hpp"
#include "unauthenticated_audit.hpp"

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/nonce_store.hpp"

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

namespace mimamori::retrieval {

// Everything borrowed must outlive it; handlers run on the server's threads, one collection
// at a time.
class CityLogService {
public:
    CityLogService(std::string cameraId, policy::TrustStore trust, const policy::SecretKey& cameraKey,
                   std::filesystem::path healthFile, policy::AuditTrail& audit, policy::NonceStore& nonces,
                   const common::Clock& clock, UnauthenticatedAudit& unauthenticated);

    // POST /v1/city/log.
    void addRoutes(Router& router);

private:
    HttpResponse onCollect(const HttpRequest& request);
    // A refusal of §3, audited (checks 1-3 within the unauthenticated budget).
    HttpResponse refuse(const HttpRequest& request, const std::string& requestSha, int status, std::string_view code,
                        const std::string& text, const std::string& keyId, const std::string* cityKey);
    std::string readHealth() const;

    const std::string cameraId_;
    const policy::TrustStore trust_;
    const policy::SecretKey& cameraKey_;
    const std::filesystem::path healthFile_;
    policy::AuditTrail& audit_;
    policy::NonceStore& nonces_;
    const common::Clock& clock_;
    UnauthenticatedAudit& unauthenticated_;
    std::mutex collectMutex_;  // one collection at a time: its answer is held in memory
};

}  // namespace mimamori::retrieval

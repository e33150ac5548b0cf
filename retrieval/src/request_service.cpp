// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// POST /v1/requests: the ordinance's decision, audited before every answer
// (docs/retrieval-http.md, "POST /v1/requests").
#include "request_service.hpp"

#include "answers.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/policy/decision.hpp"
#include "mimamori/policy/request.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mimamori::retrieval {
namespace {

using Json = nlohmann::json;
constexpr std::string_view kComponent = "retrieval";
constexpr std::string_view kRequestsPath = "/v1/requests";

// Refusals decided before the police signature was verified: anyone can cause them.
bool unauthenticated(policy::RefusalReason reason) {
    using R = policy::RefusalReason;
    return reason == R::Malformed || reason == R::DisclosureRequest || reason == R::UnknownGround ||
           reason == R::UnknownPoliceKey || reason == R::BadPoliceSignature;
}

HttpResponse auditFailure(const std::exception& e) {
    // Nothing is granted or sent without its audit entry on disk.
    common::logError(kComponent, "audit log write failed: {}", e.what());
    return errorAnswer(500, "audit_unavailable", "the camera cannot write its audit log");
}

}  // namespace

RequestService::RequestService(RequestServiceConfig config, std::string cameraId, policy::TrustStore trust,
                               const store::SegmentStore& store, policy::AuditTrail& audit,
                               policy::NonceStore& nonces, const common::Clock& clock,
                               UnauthenticatedAudit& unauthenticated, Grants& grants)
    : config_(config),
      cameraId_(std::move(cameraId)),
      trust_(std::move(trust)),
      store_(store),
      audit_(audit),
      nonces_(nonces),
      clock_(clock),
      unauthenticated_(unauthenticated),
      grants_(grants) {}

void RequestService::addRoutes(Router& router) {
    router.add({"POST", exactPath(std::string(kRequestsPath)),
                [this](const HttpRequest& req, const std::string&) { return onRequest(req); },
                [this](const HttpRequest& req, int status, const std::string& code, const std::string& text) {
                    return onRefusedByServer(req, status, code, text);
                }});
}

// The documented pair for the request route when the server refused it before its body:
// received (what little is known), refused.
HttpResponse RequestService::onRefusedByServer(const HttpRequest& req, int status, const std::string& code,
                                               const std::string& text) {
    policy::AuditFields received = {{"request_id", std::string()}, {"bytes", std::int64_t{0}}};
    if (const auto declared = req.header("content-length")) received.push_back({"declared_bytes", capped(*declared, 32)});
    received.push_back({"remote", req.peer});
    bool written = false;
    try {
        written = unauthenticated_.write(
            {{policy::audit::kRequestReceived, std::move(received)},
             {policy::audit::kRequestRefused,
              {{"request_id", std::string()}, {"reason", code}, {"text", capped(text, kMaxFieldJson)}}}});
    } catch (const std::exception& e) {
        common::logError(kComponent, "audit log write failed: {}", e.what());
    }
    if (written) common::logInfo(kComponent, "request from {} refused: {} ({})", req.peer, code, text);
    return errorAnswer(status, code, text);
}

HttpResponse RequestService::onRequest(const HttpRequest& req) {
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
            written = unauthenticated_.write({{policy::audit::kRequestReceived,
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
        audit_.append(policy::audit::kRequestReceived, {{"request_id", requestId},
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
    std::optional<BuildSlot> slot;
    {
        std::lock_guard decisionLock(decisionMutex_);
        slot = grants_.reserveBuild();
        input.now = clock_.nowUtc();
        if (!slot) {
            decision = policy::decide(input);
            busy = decision.granted;
            decision.granted = false;
        } else {
            input.nonceSeen = nullptr;
            decision = policy::decideAndRecord(input, nonces_);
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
    if (!decision.granted) {
        const std::string code(policy::reasonCode(decision.reason));
        if (auto failed = appendRefusal(requestId, requestSha, code, decision.text)) return std::move(*failed);
        return errorAnswer(decision.reason == policy::RefusalReason::Malformed ? 400 : 403, code, decision.text);
    }

    const policy::SignedRequest& signedRequest = *decision.request;
    const policy::Request& r = signedRequest.request;
    try {
        audit_.append(policy::audit::kRequestGranted, {{"request_id", r.requestId},
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

    std::string extractId;
    try {
        extractId = grants_.grant(std::move(*slot), signedRequest, requestSha);
    } catch (const std::exception& e) {
        common::logError(kComponent, "extract for request {} cannot be planned: {}", r.requestId, e.what());
        try {
            audit_.append("extract_failed",
                          {{"request_id", r.requestId}, {"request_sha256", requestSha}, {"text", std::string(e.what())}});
        } catch (const std::exception& auditError) {
            return auditFailure(auditError);
        }
        return errorAnswer(500, "extract_failed", e.what());
    }
    common::logInfo(kComponent, "request {} granted; hashing the extract", r.requestId);
    HttpResponse res =
        jsonAnswer(202, Json{{"status", "building"}, {"request_id", r.requestId}, {"extract_id", extractId}}.dump() + "\n");
    res.headers.emplace_back("Location", "/v1/extracts/" + extractId);
    return res;
}

// A refusal of a request whose police signature verified. Returns the 500 answer when the
// audit log refuses the entry, nothing otherwise.
std::optional<HttpResponse> RequestService::appendRefusal(const std::string& requestId, const std::string& requestSha,
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

}  // namespace mimamori::retrieval

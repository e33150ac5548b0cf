// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// POST /v1/stills: the review still, decided, audited before every answer, sealed and signed
// (docs/review-still.md).
#include "still_service.hpp"

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
using policy::RefusalReason;
constexpr std::string_view kComponent = "retrieval";
constexpr std::string_view kStillsPath = "/v1/stills";

// Refusals decided before the requester's signature verified: anyone can cause them.
bool unauthenticated(RefusalReason reason) {
    return reason == RefusalReason::Malformed || reason == RefusalReason::DisclosureRequest ||
           reason == RefusalReason::UnknownGround || reason == RefusalReason::UnknownRequesterKey ||
           reason == RefusalReason::BadRequesterSignature;
}

std::optional<policy::StillForm> formOf(const HttpRequest& req) {
    const std::string_view target = req.target;
    const auto q = target.find('?');
    const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    if (query == "form=masked") return policy::StillForm::Masked;
    if (query == "form=unmasked") return policy::StillForm::Unmasked;
    return std::nullopt;
}

HttpResponse auditFailure(const std::exception& e) {
    // Nothing is given without its audit entry on disk.
    common::logError(kComponent, "audit log write failed: {}", e.what());
    return errorAnswer(500, "audit_unavailable", "the camera cannot write its audit log");
}

}  // namespace

StillService::StillService(StillServiceConfig config, std::string cameraId, policy::TrustStore trust,
                           policy::AuditTrail& audit, policy::NonceStore& nonces, const common::Clock& clock,
                           const policy::SecretKey& cameraKey, UnauthenticatedAudit& unauthenticated,
                           StillSource& stills)
    : config_(config),
      cameraId_(std::move(cameraId)),
      trust_(std::move(trust)),
      audit_(audit),
      nonces_(nonces),
      clock_(clock),
      cameraKey_(cameraKey),
      unauthenticated_(unauthenticated),
      stills_(stills) {}

void StillService::addRoutes(Router& router) {
    router.add({"POST", exactPath(std::string(kStillsPath)),
                [this](const HttpRequest& req, const std::string&) { return onStill(req); }, nullptr});
}

HttpResponse StillService::refuseUnauthenticated(const HttpRequest& req, const std::string& requestId,
                                                 const std::string& requestSha, int status, const std::string& code,
                                                 const std::string& text) {
    bool written = false;
    try {
        written = unauthenticated_.write({{policy::audit::kRequestReceived,
                                           {{"request_id", capped(requestId, kMaxFieldJson)},
                                            {"bytes", static_cast<std::int64_t>(req.body.size())},
                                            {"request_sha256", requestSha},
                                            {"remote", req.peer}}},
                                          {policy::audit::kRequestRefused,
                                           {{"request_id", capped(requestId, kMaxFieldJson)},
                                            {"reason", code},
                                            {"text", capped(text, kMaxFieldJson)},
                                            {"request_sha256", requestSha},
                                            {"form", capped(formOf(req) ? policy::stillFormName(*formOf(req)) : "",
                                                            kMaxFieldJson)}}}});
    } catch (const std::exception& e) {
        return auditFailure(e);
    }
    if (written) common::logInfo(kComponent, "still request from {} refused: {} ({})", req.peer, code, text);
    return errorAnswer(status, code, text);
}

HttpResponse StillService::onStill(const HttpRequest& req) {
    const std::string& bytes = req.body;
    const std::string requestSha = sha256Hex(bytes);
    const policy::ParsedSignedRequest parsed = policy::parseSignedRequest(bytes);
    const std::string requestId = parsed.request ? parsed.request->request.requestId : std::string();
    const std::optional<policy::StillForm> form = formOf(req);
    if (!form)
        return refuseUnauthenticated(req, requestId, requestSha, 400, "bad_form",
                                     "the query must be form=masked or form=unmasked");

    policy::StillDecisionInput input;
    input.requestBytes = bytes;
    input.trust = &trust_;
    input.cameraId = cameraId_;
    input.now = clock_.nowUtc();
    input.form = *form;
    input.maxLifetime = config_.maxLifetime;
    const policy::Decision decision = policy::decideStillAndRecord(input, nonces_);
    const std::string code(policy::reasonCode(decision.reason));
    const int refusedStatus = decision.reason == RefusalReason::Malformed ? 400 : 403;
    if (!decision.granted && unauthenticated(decision.reason))
        return refuseUnauthenticated(req, requestId, requestSha, refusedStatus, code, decision.text);

    const std::string formName(policy::stillFormName(*form));
    try {
        audit_.append(policy::audit::kRequestReceived, {{"request_id", requestId},
                                                        {"bytes", static_cast<std::int64_t>(bytes.size())},
                                                        {"request_sha256", requestSha},
                                                        {"remote", req.peer}});
        if (!decision.granted) {
            audit_.append(policy::audit::kRequestRefused, {{"request_id", requestId},
                                                           {"reason", code},
                                                           {"text", decision.text},
                                                           {"request_sha256", requestSha},
                                                           {"form", formName}});
        }
    } catch (const std::exception& e) {
        return auditFailure(e);
    }
    if (!decision.granted) {
        common::logInfo(kComponent, "still request {} refused: {} ({})", requestId, code, decision.text);
        return errorAnswer(refusedStatus, code, decision.text);
    }

    const policy::Request& r = decision.request->request;
    auto failed = [&](int status, const std::string& failCode, const std::string& text) {
        common::logError(kComponent, "still for request {}: {}", r.requestId, text);
        try {
            audit_.append("still_failed",
                          {{"request_id", r.requestId}, {"request_sha256", requestSha}, {"form", formName}, {"text", text}});
        } catch (const std::exception& e) {
            return auditFailure(e);
        }
        return errorAnswer(status, failCode, text);
    };

    common::Result<Still> still = stills_.nextStill(*form, config_.frameTimeout);
    if (!still) return failed(503, "no_frame", still.error());
    const common::UtcMicros takenAt = clock_.nowUtc();

    std::vector<std::uint8_t> sealed;
    try {
        Sealer sealer(r.recipient, [&](std::span<const std::uint8_t> out) { sealed.insert(sealed.end(), out.begin(), out.end()); });
        sealer.write(still.value().png);
        sealer.finish();
    } catch (const std::exception& e) {
        return failed(500, "still_failed", fmt::format("cannot seal the still: {}", e.what()));
    }

    StillManifest m;
    m.requestId = r.requestId;
    m.cameraId = cameraId_;
    m.requestSha256 = requestSha;
    m.ground = r.groundWord;
    m.form = *form;
    m.takenAt = takenAt;
    m.width = static_cast<std::uint64_t>(still.value().width);
    m.height = static_cast<std::uint64_t>(still.value().height);
    m.maskSha256 = still.value().maskSha256;
    m.pngSha256 = sha256Hex(still.value().png);
    m.pngBytes = still.value().png.size();
    m.sealedBytes = sealed.size();
    m.recipient = policy::toBase64(r.recipient);
    m.software = std::string("mimamori ") + MIMAMORI_VERSION;
    m.cameraKeyId = cameraKey_.keyId();
    const std::string manifest = serializeStillManifest(m);
    const policy::Signature signature = policy::sign(cameraKey_, manifest);

    try {
        audit_.append(policy::audit::kMaskReviewStill, {{"request_id", r.requestId},
                                                        {"request_sha256", requestSha},
                                                        {"form", formName},
                                                        {"ground", r.groundWord},
                                                        {"article", std::string(policy::groundArticle(r.ground))},
                                                        {"reference", r.reference},
                                                        {"purpose", r.purpose},
                                                        {"requester", decision.policeName},
                                                        {"approver", decision.approverName},
                                                        {"mask_sha256", m.maskSha256},
                                                        {"taken_at", common::formatUtc(takenAt)},
                                                        {"png_sha256", m.pngSha256},
                                                        {"png_bytes", static_cast<std::int64_t>(m.pngBytes)}});
    } catch (const std::exception& e) {
        return auditFailure(e);
    }
    common::logInfo(kComponent, "{} still for request {} given to {} (approved by {})", formName, r.requestId,
                    decision.policeName, decision.approverName);
    return jsonAnswer(200, Json{{"manifest", manifest},
                                {"signature", policy::toBase64(signature)},
                                {"sealed", policy::toBase64(sealed)}}
                               .dump() +
                               "\n");
}

}  // namespace mimamori::retrieval

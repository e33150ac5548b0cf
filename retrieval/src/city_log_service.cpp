// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// POST /v1/city/log: checks a city-signed body, audits every refusal and every collection, and
// answers the audit lines, health.json and a fresh checkpoint sealed to the city key
// (docs/city-log-route.md).
#include "city_log_service.hpp"

#include "answers.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/retrieval/city_log.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mimamori::retrieval {
namespace {

constexpr std::string_view kComponent = "retrieval";
// As for footage requests (docs/request-format.md §4): a collector's clock may run ahead.
constexpr common::UtcMicros kClockSkew = 5 * 60 * common::kMicrosPerSecond;

HttpResponse auditFailure(const std::exception& e) {
    // Nothing leaves the camera without its audit entry on disk.
    common::logError(kComponent, "audit log write failed: {}", e.what());
    return errorAnswer(500, "audit_unavailable", "the camera cannot write its audit log");
}

}  // namespace

CityLogService::CityLogService(std::string cameraId, policy::TrustStore trust, const policy::SecretKey& cameraKey,
                               std::filesystem::path healthFile, policy::AuditTrail& audit, policy::NonceStore& nonces,
                               const common::Clock& clock, UnauthenticatedAudit& unauthenticated)
    : cameraId_(std::move(cameraId)),
      trust_(std::move(trust)),
      cameraKey_(cameraKey),
      healthFile_(std::move(healthFile)),
      audit_(audit),
      nonces_(nonces),
      clock_(clock),
      unauthenticated_(unauthenticated) {}

void CityLogService::addRoutes(Router& router) {
    router.add({"POST", exactPath(std::string(kCityLogPath)),
                [this](const HttpRequest& req, const std::string&) { return onCollect(req); }, nullptr});
}

HttpResponse CityLogService::refuse(const HttpRequest& req, const std::string& requestSha, int status,
                                    std::string_view code, const std::string& text, const std::string& keyId,
                                    const std::string* cityKey) {
    try {
        if (cityKey) {
            // Signed by a key the camera trusts: always written, in full.
            audit_.append(policy::audit::kCityLogRefused, {{"reason", std::string(code)},
                                                           {"text", text},
                                                           {"key_id", keyId},
                                                           {"city_key", *cityKey},
                                                           {"request_sha256", requestSha},
                                                           {"remote", req.peer}});
        } else if (!unauthenticated_.write({{policy::audit::kCityLogRefused,
                                             {{"reason", std::string(code)},
                                              {"text", capped(text, kMaxFieldJson)},
                                              {"key_id", capped(keyId, kMaxFieldJson)},
                                              {"request_sha256", requestSha},
                                              {"remote", req.peer}}}})) {
            return errorAnswer(status, code, text);  // over the budget: counted, not logged
        }
    } catch (const std::exception& e) {
        return auditFailure(e);
    }
    common::logInfo(kComponent, "city log request from {} refused: {} ({})", req.peer, code, text);
    return errorAnswer(status, code, text);
}

std::string CityLogService::readHealth() const {
    // health.json is replaced by rename, so an open descriptor sees one whole record.
    common::UniqueFd fd(::open(healthFile_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
        if (errno != ENOENT)
            common::logWarning(kComponent, "{}: {}; the city gets no health record", healthFile_.string(),
                               std::strerror(errno));
        return {};
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<std::uint64_t>(st.st_size) > kMaxCityLogHealthBytes) {
        common::logWarning(kComponent, "{}: not a regular file of at most {} bytes; the city gets no health record",
                           healthFile_.string(), kMaxCityLogHealthBytes);
        return {};
    }
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    text.resize(got);
    return text;
}

HttpResponse CityLogService::onCollect(const HttpRequest& req) {
    const std::string requestSha = common::sha256Hex(req.body);
    std::string error;
    const std::optional<CityLogRequest> parsed = parseCityLogRequest(req.body, error);
    if (!parsed) return refuse(req, requestSha, 400, "malformed", error, {}, nullptr);
    const CityLogRequest& r = *parsed;

    const policy::TrustedKey* key = trust_.find(r.keyId);
    if (!key)
        return refuse(req, requestSha, 403, "unknown_city_key",
                      fmt::format("key {} is not in the camera's trust file", r.keyId), r.keyId, nullptr);
    if (!policy::verify(key->signKey, r.signedBytes, r.signature))
        return refuse(req, requestSha, 403, "bad_city_signature",
                      fmt::format("the signature does not verify with key {}", r.keyId), r.keyId, nullptr);
    if (key->role != policy::Role::City)
        return refuse(req, requestSha, 403, "not_city_key",
                      fmt::format("key '{}' is a {} key; only city keys collect the audit log", key->name,
                                  policy::roleName(key->role)),
                      r.keyId, &key->name);
    if (r.cameraId != cameraId_)
        return refuse(req, requestSha, 403, "wrong_camera",
                      fmt::format("the body is for camera {}; this is camera {}", r.cameraId, cameraId_), r.keyId,
                      &key->name);
    const common::UtcMicros now = clock_.nowUtc();
    if (r.expiresAt <= r.issuedAt)
        return refuse(req, requestSha, 403, "lifetime_inverted", "expires-at is not after issued-at", r.keyId,
                      &key->name);
    if (r.expiresAt - r.issuedAt > kMaxCityLogLifetime)
        return refuse(req, requestSha, 403, "lifetime_too_long", "expires-at is more than 10 minutes after issued-at",
                      r.keyId, &key->name);
    if (now < r.issuedAt - kClockSkew)
        return refuse(req, requestSha, 403, "not_yet_valid",
                      fmt::format("issued at {}, more than 5 minutes after the camera's clock ({})",
                                  common::formatUtc(r.issuedAt), common::formatUtc(now)),
                      r.keyId, &key->name);
    if (now > r.expiresAt)
        return refuse(req, requestSha, 403, "expired",
                      fmt::format("expired at {} (camera clock {})", common::formatUtc(r.expiresAt),
                                  common::formatUtc(now)),
                      r.keyId, &key->name);
    bool fresh = false;
    try {
        fresh = nonces_.checkAndRemember(r.nonce, r.expiresAt, [](bool known) { return !known; });
    } catch (const std::exception& e) {
        common::logError(kComponent, "city log nonce store: {}", e.what());
        return errorAnswer(500, "internal", "the camera cannot record the nonce");
    }
    if (!fresh)
        return refuse(req, requestSha, 403, "replayed_nonce", "this body was used before", r.keyId, &key->name);

    std::lock_guard lock(collectMutex_);
    CityLogAnswer answer;
    answer.cameraId = cameraId_;
    answer.requestSha256 = requestSha;
    answer.afterSeq = r.afterSeq;
    policy::AuditLines lines;
    try {
        // The checkpoint first: a complete answer ends with it, so every line it carries is signed.
        answer.checkpoint = audit_.checkpoint();
        lines = audit_.linesAfter(r.afterSeq, answer.checkpoint.seq, kMaxCityLogLinesBytes);
    } catch (const std::exception& e) {
        return auditFailure(e);
    }
    answer.throughSeq = lines.through;
    answer.complete = lines.complete;
    answer.lines = std::move(lines.lines);
    answer.health = readHealth();
    try {
        audit_.append(policy::audit::kLogsCollected,
                      {{"city_key", key->name},
                       {"key_id", r.keyId},
                       {"from_seq", static_cast<std::int64_t>(r.afterSeq + 1)},
                       {"to_seq", static_cast<std::int64_t>(answer.lines.empty() ? r.afterSeq : answer.throughSeq)},
                       {"checkpoint", answer.checkpoint.toString()},
                       {"complete", answer.complete},
                       {"request_sha256", requestSha},
                       {"remote", req.peer}});
    } catch (const std::exception& e) {
        return auditFailure(e);
    }
    try {
        nonces_.prune(now);
    } catch (const std::exception& e) {
        common::logWarning(kComponent, "city log nonce store: cannot prune: {}", e.what());
    }

    HttpResponse res;
    res.contentType = "application/octet-stream";
    {
        const std::string plain = formatCityLogAnswer(answer, cameraKey_);
        Sealer sealer(r.recipient, [&res](std::span<const std::uint8_t> bytes) {
            res.body.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        });
        sealer.write({reinterpret_cast<const std::uint8_t*>(plain.data()), plain.size()});
        sealer.finish();
    }
    common::logInfo(kComponent, "audit log entries {}..{} and the health record collected by city key '{}' ({})",
                    r.afterSeq + 1, answer.throughSeq, key->name, answer.complete ? "complete" : "more to come");
    return res;
}

}  // namespace mimamori::retrieval

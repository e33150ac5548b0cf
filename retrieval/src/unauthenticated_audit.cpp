// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The unauthenticated audit budget: a token bucket, and the count of what it held back.
#include "unauthenticated_audit.hpp"

#include "mimamori/common/log.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace mimamori::retrieval {
namespace {

using Json = nlohmann::json;
constexpr std::string_view kComponent = "retrieval";
constexpr std::string_view kHttpRefused = "http_refused";
constexpr std::string_view kSuppressed = "unauthenticated_suppressed";
constexpr std::size_t kMaxTargetJson = 128;

}  // namespace

std::string capped(std::string_view text, std::size_t maxJson) {
    std::string out(text.substr(0, maxJson));
    while (Json(out).dump(-1, ' ', false, Json::error_handler_t::replace).size() > maxJson)
        out.resize(out.size() * 3 / 4);
    return out;
}

UnauthenticatedAudit::UnauthenticatedAudit(policy::AuditTrail& audit, const common::Clock& clock, int burst,
                                           double perMinute)
    : audit_(audit),
      clock_(clock),
      burst_(burst),
      perMinute_(perMinute),
      tokens_(burst),
      refilledAt_(std::chrono::steady_clock::now()),
      flusher_([this] { flushLoop(); }) {}

UnauthenticatedAudit::~UnauthenticatedAudit() { stop(); }

void UnauthenticatedAudit::stop() {
    {
        std::lock_guard lock(flushMutex_);
        if (stopped_) return;
        stopped_ = true;
        flushWake_.notify_all();
    }
    flusher_.join();
    try {
        flushSuppressed(true);
    } catch (const std::exception& e) {
        common::logError(kComponent, "audit log write failed: {}", e.what());
    }
}

bool UnauthenticatedAudit::write(const Entries& entries) {
    std::lock_guard lock(mutex_);
    if (!takeToken()) {
        const common::UtcMicros now = clock_.nowUtc();
        if (suppressed_ == 0) suppressedFrom_ = now;
        suppressedTo_ = now;
        ++suppressed_;
        return false;
    }
    writeSuppressedLocked();
    for (const auto& [type, fields] : entries) audit_.append(type, fields);
    return true;
}

void UnauthenticatedAudit::httpRefused(const HttpRequest& req, std::string_view reason, int status) {
    policy::AuditFields fields = {{"remote", req.peer},
                                  {"method", capped(req.method, 24)},
                                  {"target", capped(req.target, kMaxTargetJson)},
                                  {"reason", std::string(reason)}};
    if (status != 0) fields.push_back({"status", std::int64_t{status}});
    try {
        (void)write({{kHttpRefused, std::move(fields)}});
    } catch (const std::exception& e) {
        common::logError(kComponent, "audit log write failed: {}", e.what());
    }
}

// Called with mutex_ held.
bool UnauthenticatedAudit::takeToken() {
    const auto now = std::chrono::steady_clock::now();
    const double minutes = std::chrono::duration<double, std::ratio<60>>(now - refilledAt_).count();
    refilledAt_ = now;
    tokens_ = std::min<double>(burst_, tokens_ + minutes * perMinute_);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
}

// Called with mutex_ held.
void UnauthenticatedAudit::writeSuppressedLocked() {
    if (suppressed_ == 0) return;
    audit_.append(kSuppressed, {{"count", static_cast<std::int64_t>(suppressed_)},
                                {"from", common::formatUtc(suppressedFrom_)},
                                {"to", common::formatUtc(suppressedTo_)}});
    common::logWarning(kComponent, "{} unauthenticated requests or connections not audited one by one (budget)",
                       suppressed_);
    suppressed_ = 0;
}

// Writes the suppressed count when a token allows (or `final`, at stop, regardless).
void UnauthenticatedAudit::flushSuppressed(bool final) {
    std::lock_guard lock(mutex_);
    if (suppressed_ == 0) return;
    if (final || takeToken()) writeSuppressedLocked();
}

void UnauthenticatedAudit::flushLoop() {
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

}  // namespace mimamori::retrieval

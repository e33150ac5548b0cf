// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The audit budget for what anyone who reaches the port can cause (docs/retrieval-http.md,
// "Audit budget for unauthenticated requests").
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/retrieval/http_server.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace mimamori::retrieval {

// Text from the network, cut so that its JSON form in the audit log takes at most `maxJson`
// bytes (control characters grow sixfold when escaped; bad UTF-8 becomes U+FFFD).
std::string capped(std::string_view text, std::size_t maxJson);
constexpr std::size_t kMaxFieldJson = 160;  // one text field of an unauthenticated entry

// A token bucket in front of the audit log, and a thread that writes the count of what it
// suppressed every 10 s when a token allows. Thread-safe; the audit log and clock are borrowed.
class UnauthenticatedAudit {
public:
    UnauthenticatedAudit(policy::AuditTrail& audit, const common::Clock& clock, int burst, double perMinute);
    ~UnauthenticatedAudit();
    UnauthenticatedAudit(const UnauthenticatedAudit&) = delete;
    UnauthenticatedAudit& operator=(const UnauthenticatedAudit&) = delete;

    using Entries = std::vector<std::pair<std::string_view, policy::AuditFields>>;
    // Takes one token for these entries (written in order, after a pending suppressed count);
    // without a token they are only counted. Returns whether they were written. Throws what
    // AuditTrail::append throws.
    [[nodiscard]] bool write(const Entries& entries);
    // An `http_refused` entry for `request` (status 0: no answer was sent). Never throws: a
    // failed audit write is logged.
    void httpRefused(const HttpRequest& request, std::string_view reason, int status);
    // Ends the thread and writes what is still counted. Idempotent.
    void stop();

private:
    bool takeToken();
    void writeSuppressedLocked();
    void flushSuppressed(bool final);
    void flushLoop();

    policy::AuditTrail& audit_;
    const common::Clock& clock_;
    const int burst_;
    const double perMinute_;
    std::mutex mutex_;  // the bucket and the count; taken before the audit log's own
    double tokens_;
    std::chrono::steady_clock::time_point refilledAt_;
    std::uint64_t suppressed_ = 0;
    common::UtcMicros suppressedFrom_ = 0;
    common::UtcMicros suppressedTo_ = 0;
    std::mutex flushMutex_;
    std::condition_variable flushWake_;
    bool stopped_ = false;
    std::thread flusher_;
};

}  // namespace mimamori::retrieval

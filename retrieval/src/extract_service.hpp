// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The extract service: plans a granted extract, hashes it, holds its footage, streams its
// sealed container from the ring, audits its delivery and forgets it after its TTL.
#pragma once

#include "grants.hpp"
#include "router.hpp"
#include "sealed_stream.hpp"
#include "unauthenticated_audit.hpp"

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/store/segment_store.hpp"
#include "mimamori/retrieval/endpoint.hpp"
#include "mimamori/retrieval/extract_plan.hpp"

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mimamori::retrieval {

struct ExtractServiceConfig {
    std::filesystem::path extractDir;  // plan files (0700)
    common::UtcMicros ttl = 0;         // a grant's plan, and its hold, last this long
    int maxBuilding = 1;               // K: hash passes at once
    int maxStreams = 2;                // containers being produced for downloads at once
};

// Everything borrowed (store, audit log, clock, camera key, unauthenticated audit) must outlive
// it. Routes run on the server's threads; hash passes, streams and the housekeeping on threads
// of their own. Registers itself as the store's hold provider; stop() withdraws it.
class ExtractService final : public Grants {
public:
    // Reopens the plans in extractDir (restarting the hash pass of those granted but not yet
    // hashed, forgetting expired ones), then holds their footage. Throws on an unusable dir.
    ExtractService(ExtractServiceConfig config, std::string cameraId, store::SegmentStore& store,
                   policy::AuditTrail& audit, const common::Clock& clock, const policy::SecretKey& cameraKey,
                   MaskHashProvider maskSha256, UnauthenticatedAudit& unauthenticated);
    ~ExtractService() override;
    ExtractService(const ExtractService&) = delete;
    ExtractService& operator=(const ExtractService&) = delete;

    // GET /v1/extracts/{id}/manifest and GET /v1/extracts/{id}.
    void addRoutes(Router& router);

    [[nodiscard]] std::optional<BuildSlot> reserveBuild() override;
    [[nodiscard]] std::string grant(BuildSlot slot, const policy::SignedRequest& request,
                                    const std::string& requestSha256) override;

    // The sequence numbers of every segment under an evidence hold (asked by the store).
    [[nodiscard]] std::vector<std::uint64_t> heldSequences();

    // Withdraws the hold provider, aborts hash passes, waits for them. Streams end with their
    // connections (the server is stopped first). Idempotent.
    void stop();

private:
    struct Extract;
    struct Builder {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };

    void startHashPass(const std::shared_ptr<Extract>& extract, std::optional<BuildSlot> slot);
    void hashPass(const std::shared_ptr<Extract>& extract);
    HttpResponse onManifest(const HttpRequest& request, const std::string& id);
    HttpResponse onExtract(const HttpRequest& request, const std::string& id);
    std::shared_ptr<Extract> find(const std::string& id);
    std::optional<HttpResponse> answerNotReady(const HttpRequest& request, const std::shared_ptr<Extract>& extract);
    void noteSent(const std::shared_ptr<Extract>& extract, std::uint64_t begin, std::uint64_t end,
                  const std::string& peer);
    void saveSent(const std::shared_ptr<Extract>& extract);
    void streamFailed(const std::shared_ptr<Extract>& extract, std::uint64_t offset, const std::string& what);
    void releaseHold(Extract& extract, std::string_view reason);
    void reopen();
    void sweep();
    void housekeeping();
    void writePlan(const ExtractPlan& plan);
    void removeFiles(const std::string& id);
    common::SecureBuffer fileKeyFor(const std::string& extractId) const;

    const ExtractServiceConfig config_;
    const std::string cameraId_;
    store::SegmentStore& store_;
    policy::AuditTrail& audit_;
    const common::Clock& clock_;
    const policy::SecretKey& cameraKey_;
    MaskHashProvider maskSha256_;
    UnauthenticatedAudit& unauthenticated_;
    std::atomic<bool> stopped_{false};

    std::mutex mutex_;  // everything below; never held while calling the store or the audit log
    std::map<std::string, std::shared_ptr<Extract>> extracts_;
    std::vector<Builder> builders_;
    int building_ = 0;
    int streams_ = 0;

    std::mutex wakeMutex_;
    std::condition_variable wake_;
    std::thread housekeeper_;
};

}  // namespace mimamori::retrieval

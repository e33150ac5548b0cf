// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The extract service: a grant becomes a plan file (the hold starts), a hash pass makes the
// signed manifest, and every download produces the sealed container again from the ring.
#include "extract_service.hpp"

#include "answers.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/policy/retention.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/manifest.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <pthread.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>

namespace mimamori::retrieval {
namespace {

namespace fs = std::filesystem;
using common::UtcMicros;
using Json = nlohmann::json;

constexpr std::string_view kComponent = "retrieval";
constexpr int kHashingRetryAfterSeconds = 1;
constexpr std::string_view kPlanSuffix = ".plan";
constexpr std::string_view kDeliveredSuffix = ".delivered";
constexpr std::string_view kSentSuffix = ".sent";
// Disjoint byte ranges remembered per extract; more are not recorded (a resumed download is
// one range, so only someone probing with the id gets near this).
constexpr std::size_t kMaxSentRanges = 256;
// How often expiry and the 14-day ceiling are looked at without a request.
constexpr auto kHousekeepingInterval = std::chrono::seconds(10);
// The domain of the file keys derived from the camera key (docs/extract-plan.md).
constexpr std::string_view kFileKeyContext = "mimamori extract file key v1\n";

constexpr std::string_view kEvidenceHold = "evidence_hold";
constexpr std::string_view kEvidenceHoldReleased = "evidence_hold_released";
constexpr std::string_view kExtractFailed = "extract_failed";
constexpr std::string_view kDownloadFailed = "extract_download_failed";

std::string randomExtractId() {
    std::array<std::uint8_t, 16> bytes{};
    randombytes_buf(bytes.data(), bytes.size());
    return common::toHex(bytes);
}

// "/v1/extracts/<32 hex>" (or with "/manifest"): the id, or nothing.
std::optional<std::string> extractIdIn(std::string_view path, bool manifest) {
    constexpr std::string_view prefix = "/v1/extracts/";
    constexpr std::string_view suffix = "/manifest";
    if (!path.starts_with(prefix)) return std::nullopt;
    path.remove_prefix(prefix.size());
    if (manifest) {
        if (!path.ends_with(suffix)) return std::nullopt;
        path.remove_suffix(suffix.size());
    }
    if (path.size() != 32) return std::nullopt;
    for (char c : path)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    return std::string(path);
}

// A single "bytes=A-" or "bytes=A-B" range; anything else is ignored (the whole file is sent).
std::optional<std::pair<std::uint64_t, std::optional<std::uint64_t>>> parseRange(std::string_view value) {
    constexpr std::string_view unit = "bytes=";
    if (!value.starts_with(unit)) return std::nullopt;
    value.remove_prefix(unit.size());
    const auto dash = value.find('-');
    if (dash == std::string_view::npos || dash == 0) return std::nullopt;
    auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
        if (digits.empty() || digits.size() > 18) return std::nullopt;
        std::uint64_t v = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        return v;
    };
    const auto first = number(value.substr(0, dash));
    if (!first) return std::nullopt;
    const std::string_view rest = value.substr(dash + 1);
    if (rest.empty()) return std::pair{*first, std::optional<std::uint64_t>()};
    const auto last = number(rest);
    if (!last || *last < *first) return std::nullopt;
    return std::pair{*first, last};
}

void addRange(std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges, std::uint64_t begin, std::uint64_t end) {
    if (ranges.size() >= kMaxSentRanges) return;
    ranges.emplace_back(begin, end);
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> merged;
    for (const auto& r : ranges) {
        if (!merged.empty() && r.first <= merged.back().second) merged.back().second = std::max(merged.back().second, r.second);
        else merged.push_back(r);
    }
    ranges = std::move(merged);
}

// "<begin> <end>\n" per range ([begin, end) of the container), in order.
std::string formatRanges(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges) {
    std::string out;
    for (const auto& [begin, end] : ranges) out += fmt::format("{} {}\n", begin, end);
    return out;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> parseRanges(const std::string& text) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t eol = text.find('\n', at);
        if (eol == std::string::npos) break;  // a torn last line is dropped
        unsigned long long begin = 0, end = 0;
        char extra = 0;
        const std::string line = text.substr(at, eol - at);
        if (std::sscanf(line.c_str(), "%llu %llu%c", &begin, &end, &extra) == 2 && begin < end) addRange(ranges, begin, end);
        at = eol + 1;
    }
    return ranges;
}

void auditOrLog(policy::AuditTrail& audit, std::string_view type, const policy::AuditFields& fields) {
    try {
        audit.append(type, fields);
    } catch (const std::exception& e) {
        common::logError(kComponent, "audit log write failed: {}", e.what());
    }
}

}  // namespace

enum class ExtractState { Hashing, Ready, Failed };

struct ExtractService::Extract {
    ExtractPlan plan;
    ExtractState state = ExtractState::Hashing;
    std::string failure;
    Manifest manifest;  // parsed from plan.manifest once Ready
    // Byte ranges [begin, end) of the container sent so far, merged; complete when [0, size).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> sent;
    bool delivered = false;
    bool holdReleased = false;
    bool forgotten = false;  // expired and removed while a stream or pass still held it
};

ExtractService::ExtractService(ExtractServiceConfig config, std::string cameraId, store::SegmentStore& store,
                               policy::AuditTrail& audit, const common::Clock& clock,
                               const policy::SecretKey& cameraKey, MaskHashProvider maskSha256,
                               UnauthenticatedAudit& unauthenticated)
    : config_(std::move(config)),
      cameraId_(std::move(cameraId)),
      store_(store),
      audit_(audit),
      clock_(clock),
      cameraKey_(cameraKey),
      maskSha256_(std::move(maskSha256)),
      unauthenticated_(unauthenticated) {
    common::ensureSodium();
    fs::create_directories(config_.extractDir);
    fs::permissions(config_.extractDir, fs::perms::owner_all, fs::perm_options::replace);
    reopen();
    // From here on retention keeps what the plans hold, before the recorder's first enforce().
    store_.setHoldProvider([this] { return heldSequences(); });
    housekeeper_ = std::thread([this] { housekeeping(); });
}

ExtractService::~ExtractService() { stop(); }

void ExtractService::stop() {
    if (stopped_.exchange(true)) return;
    store_.setHoldProvider({});
    {
        std::lock_guard lock(wakeMutex_);
        wake_.notify_all();
    }
    housekeeper_.join();
    std::vector<Builder> builders;
    {
        std::lock_guard lock(mutex_);
        builders.swap(builders_);
    }
    for (auto& b : builders) b.thread.join();
}

void ExtractService::addRoutes(Router& router) {
    router.add({"GET", [](std::string_view path) { return extractIdIn(path, true); },
                [this](const HttpRequest& req, const std::string& id) { return onManifest(req, id); }, nullptr});
    router.add({"GET", [](std::string_view path) { return extractIdIn(path, false); },
                [this](const HttpRequest& req, const std::string& id) { return onExtract(req, id); }, nullptr});
}

std::optional<BuildSlot> ExtractService::reserveBuild() {
    std::lock_guard lock(mutex_);
    if (building_ >= config_.maxBuilding) return std::nullopt;
    ++building_;
    return BuildSlot([this] {
        std::lock_guard released(mutex_);
        --building_;
    });
}

// ---- the grant and the hash pass -------------------------------------------------------------

std::string ExtractService::grant(BuildSlot slot, const policy::SignedRequest& signedRequest,
                                  const std::string& requestSha256) {
    const policy::Request& r = signedRequest.request;
    auto extract = std::make_shared<Extract>();
    ExtractPlan& plan = extract->plan;
    plan.extractId = randomExtractId();
    plan.requestId = r.requestId;
    plan.requestSha256 = requestSha256;
    plan.ground = r.groundWord;
    plan.reference = r.reference;
    plan.grantedAt = clock_.nowUtc();
    plan.from = r.from;
    plan.to = r.to;
    plan.recipient = r.recipient;
    plan.seal = makeSealHeader(r.recipient, fileKeyFor(plan.extractId).bytes());
    // The hold covers what the ring lists now; the hash pass narrows it to what it read.
    plan.recipe.segments = store_.list(r.from, r.to);
    if (plan.recipe.segments.empty()) throw ExtractError("no footage in the requested range");
    writePlan(plan);
    const UtcMicros until = plan.grantedAt + config_.ttl;
    audit_.append(kEvidenceHold, {{"request_id", r.requestId},
                                  {"request_sha256", requestSha256},
                                  {"segments", static_cast<std::int64_t>(plan.recipe.segments.size())},
                                  {"first_sequence", static_cast<std::int64_t>(plan.recipe.segments.front().sequence)},
                                  {"last_sequence", static_cast<std::int64_t>(plan.recipe.segments.back().sequence)},
                                  {"footage_from", common::formatUtc(plan.recipe.segments.front().start)},
                                  {"footage_to", common::formatUtc(plan.recipe.segments.back().end)},
                                  {"until", common::formatUtc(until)}});
    {
        std::lock_guard lock(mutex_);
        extracts_[plan.extractId] = extract;
    }
    store_.holdsChanged();  // in force wherever retention runs before the grant is answered
    startHashPass(extract, std::move(slot));
    return plan.extractId;
}

void ExtractService::startHashPass(const std::shared_ptr<Extract>& extract, std::optional<BuildSlot> slot) {
    std::lock_guard lock(mutex_);
    for (auto it = builders_.begin(); it != builders_.end();) {  // join the finished ones
        if (*it->done) {
            it->thread.join();
            it = builders_.erase(it);
        } else {
            ++it;
        }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    auto heldSlot = std::make_shared<std::optional<BuildSlot>>(std::move(slot));
    builders_.push_back({std::thread([this, extract, done, heldSlot] {
                             pthread_setname_np(pthread_self(), "extract-hash");
                             hashPass(extract);
                             heldSlot->reset();  // the slot is free before the thread is done
                             *done = true;
                         }),
                         done});
}

// Reads and hashes the MP4 (nothing is written but the plan), then signs the manifest.
void ExtractService::hashPass(const std::shared_ptr<Extract>& extract) {
    lowerThreadPriority();
    ExtractPlan plan;
    {
        std::lock_guard lock(mutex_);
        plan = extract->plan;
    }
    try {
        Sha256 mp4Hash;
        const ExtractResult result = extractMp4(store_, plan.from, plan.to, [&](std::span<const std::uint8_t> mp4) {
            if (stopped_) throw ExtractError("the endpoint is stopping");
            mp4Hash.update(mp4);
        });
        Manifest m;
        m.requestId = plan.requestId;
        m.cameraId = cameraId_;
        m.requestSha256 = plan.requestSha256;
        m.ground = plan.ground;
        m.reference = plan.reference;
        m.requestedFrom = plan.from;
        m.requestedTo = plan.to;
        m.actualFrom = result.actualFrom;
        m.actualTo = result.actualTo;
        m.frames = result.frames;
        m.timestampRepairs = result.timestampRepairs;
        m.gaps = result.gaps;
        m.mp4Sha256 = mp4Hash.hexDigest();
        m.mp4Bytes = result.bytes;
        m.sealedBytes = sealedSize(result.bytes);
        m.recipient = policy::toBase64(plan.recipient);
        m.maskSha256 = maskSha256_ ? maskSha256_() : std::string();
        m.software = std::string("mimamori ") + MIMAMORI_VERSION;
        m.createdAt = clock_.nowUtc();
        m.cameraKeyId = cameraKey_.keyId();
        plan.recipe = result.recipe;
        plan.manifest = serializeManifest(m);
        plan.signature = policy::sign(cameraKey_, plan.manifest);
        writePlan(plan);
        {
            std::lock_guard lock(mutex_);
            extract->plan = plan;
            extract->manifest = m;
            extract->state = ExtractState::Ready;
        }
        common::logInfo(kComponent, "extract for request {} ready: {} frames, {} bytes sealed, nothing stored but its plan",
                        plan.requestId, m.frames, m.sealedBytes);
    } catch (const std::exception& e) {
        if (stopped_) return;  // the plan stays; the next start hashes it again
        common::logError(kComponent, "extract for request {} failed: {}", plan.requestId, e.what());
        auditOrLog(audit_, kExtractFailed, {{"request_id", plan.requestId},
                                            {"request_sha256", plan.requestSha256},
                                            {"text", std::string(e.what())}});
        removeFiles(plan.extractId);
        {
            std::lock_guard lock(mutex_);
            extract->state = ExtractState::Failed;
            extract->failure = e.what();
        }
        releaseHold(*extract, "failed");
    }
}

// ---- GET ---------------------------------------------------------------------------------------

std::shared_ptr<ExtractService::Extract> ExtractService::find(const std::string& id) {
    sweep();
    std::lock_guard lock(mutex_);
    const auto it = extracts_.find(id);
    return it == extracts_.end() ? nullptr : it->second;
}

std::optional<HttpResponse> ExtractService::answerNotReady(const HttpRequest& req, const std::shared_ptr<Extract>& extract) {
    if (!extract) {
        unauthenticated_.httpRefused(req, "not_found", 404);
        return errorAnswer(404, "not_found", "no such extract");
    }
    std::lock_guard lock(mutex_);
    if (extract->state == ExtractState::Hashing) {
        HttpResponse res = jsonAnswer(202, Json{{"status", "building"}, {"request_id", extract->plan.requestId}}.dump() + "\n");
        res.headers.emplace_back("Retry-After", std::to_string(kHashingRetryAfterSeconds));
        return res;
    }
    if (extract->state == ExtractState::Failed) return errorAnswer(500, "extract_failed", extract->failure);
    return std::nullopt;
}

HttpResponse ExtractService::onManifest(const HttpRequest& req, const std::string& id) {
    const auto extract = find(id);
    if (auto notReady = answerNotReady(req, extract)) return std::move(*notReady);
    std::lock_guard lock(mutex_);
    return jsonAnswer(200, wrapSignedManifest(extract->plan.manifest, *extract->plan.signature));
}

HttpResponse ExtractService::onExtract(const HttpRequest& req, const std::string& id) {
    const auto extract = find(id);
    if (auto notReady = answerNotReady(req, extract)) return std::move(*notReady);
    ExtractPlan plan;
    {
        std::lock_guard lock(mutex_);
        plan = extract->plan;
    }
    const std::uint64_t size = extract->manifest.sealedBytes;
    HttpResponse res;
    res.contentType = "application/octet-stream";
    res.headers.emplace_back("Accept-Ranges", "bytes");
    res.streamBegin = 0;
    res.streamEnd = size;
    if (const auto rangeHeader = req.header("range")) {
        if (const auto range = parseRange(*rangeHeader)) {
            if (range->first >= size) {
                HttpResponse unsatisfiable =
                    errorAnswer(416, "range_not_satisfiable", fmt::format("the extract has {} bytes", size));
                unsatisfiable.headers.emplace_back("Content-Range", fmt::format("bytes */{}", size));
                return unsatisfiable;
            }
            res.status = 206;
            res.streamBegin = range->first;
            res.streamEnd = range->second ? std::min(*range->second + 1, size) : size;
            res.headers.emplace_back("Content-Range",
                                     fmt::format("bytes {}-{}/{}", res.streamBegin, res.streamEnd - 1, size));
        }
    }
    // Each download costs two threads of CPU while it is produced: a budget of its own.
    std::optional<BuildSlot> slot;
    {
        std::lock_guard lock(mutex_);
        if (streams_ < config_.maxStreams) {
            ++streams_;
            slot.emplace([this] {
                std::lock_guard released(mutex_);
                --streams_;
            });
        }
    }
    if (!slot) {
        HttpResponse busy = errorAnswer(503, "busy", fmt::format("{} downloads being produced; retry after {} s",
                                                                 config_.maxStreams, kHashingRetryAfterSeconds));
        busy.headers.emplace_back("Retry-After", std::to_string(kHashingRetryAfterSeconds));
        return busy;
    }
    // What went out is recorded when the connection lets go of the stream.
    struct Counted {
        ExtractService* service;
        std::shared_ptr<Extract> extract;
        std::unique_ptr<SealedStream> stream;
        ~Counted() {
            stream.reset();
            service->saveSent(extract);
        }
    };
    auto counted = std::make_shared<Counted>();
    counted->service = this;
    counted->extract = extract;
    counted->stream = std::make_unique<SealedStream>(
        store_, std::move(plan), fileKeyFor(id), size, res.streamBegin, res.streamEnd, std::move(*slot),
        [this, extract](std::uint64_t offset, const std::string& what) { streamFailed(extract, offset, what); });
    res.stream = [counted](std::uint64_t offset, std::span<char> buffer) { return counted->stream->read(offset, buffer); };
    res.onSent = [this, extract](std::uint64_t begin, std::uint64_t end, const std::string& peer) {
        noteSent(extract, begin, end, peer);
    };
    return res;
}

// What went out of an undelivered extract survives a restart, so that a download resumed after
// it completes the delivery (written when a download's connection ends).
void ExtractService::saveSent(const std::shared_ptr<Extract>& extract) {
    std::string text, id;
    {
        std::lock_guard lock(mutex_);
        if (extract->delivered || extract->sent.empty() || extract->forgotten) return;
        text = formatRanges(extract->sent);
        id = extract->plan.extractId;
    }
    try {
        common::writeFileAtomic(config_.extractDir / (id + std::string(kSentSuffix)), text);
    } catch (const std::exception& e) {
        common::logWarning(kComponent, "cannot record what was sent of extract {}: {}", id.substr(0, 8), e.what());
    }
}

void ExtractService::streamFailed(const std::shared_ptr<Extract>& extract, std::uint64_t offset, const std::string& what) {
    std::string requestId, requestSha;
    {
        std::lock_guard lock(mutex_);
        requestId = extract->plan.requestId;
        requestSha = extract->plan.requestSha256;
    }
    common::logError(kComponent, "download of the extract for request {} stopped at byte {}: {}", requestId, offset,
                     what);
    auditOrLog(audit_, kDownloadFailed, {{"request_id", requestId},
                                         {"request_sha256", requestSha},
                                         {"offset", static_cast<std::int64_t>(offset)},
                                         {"text", what}});
}

// Audits the delivery once every byte of the container has gone out (in one or more resumed
// downloads), naming the peer that took the last of them; then the hold ends.
void ExtractService::noteSent(const std::shared_ptr<Extract>& extract, std::uint64_t begin, std::uint64_t end,
                              const std::string& peer) {
    Manifest m;
    std::string id, requestSha;
    {
        std::lock_guard lock(mutex_);
        if (extract->delivered) return;
        addRange(extract->sent, begin, end);
        const std::uint64_t size = extract->manifest.sealedBytes;
        if (!(extract->sent.size() == 1 && extract->sent[0].first == 0 && extract->sent[0].second >= size)) return;
        extract->delivered = true;
        m = extract->manifest;
        id = extract->plan.extractId;
        requestSha = extract->plan.requestSha256;
    }
    try {
        audit_.append(policy::audit::kExtractDelivered, {{"request_id", m.requestId},
                                                         {"request_sha256", requestSha},
                                                         {"bytes", static_cast<std::int64_t>(m.mp4Bytes)},
                                                         {"sha256", m.mp4Sha256},
                                                         {"sealed_bytes", static_cast<std::int64_t>(m.sealedBytes)},
                                                         {"actual_from", common::formatUtc(m.actualFrom)},
                                                         {"actual_to", common::formatUtc(m.actualTo)},
                                                         {"remote", peer}});
        common::writeFileAtomic(config_.extractDir / (id + std::string(kDeliveredSuffix)),
                                common::formatUtc(clock_.nowUtc()) + "\n");
        std::error_code ignored;
        fs::remove(config_.extractDir / (id + std::string(kSentSuffix)), ignored);
    } catch (const std::exception& ex) {
        common::logError(kComponent, "audit log write failed: {}", ex.what());
    }
    common::logInfo(kComponent, "extract for request {} delivered to {} ({} bytes)", m.requestId, peer, m.sealedBytes);
    releaseHold(*extract, "delivered");
}

// ---- holds, expiry, restart ------------------------------------------------------------------

std::vector<std::uint64_t> ExtractService::heldSequences() {
    const UtcMicros now = clock_.nowUtc();
    std::vector<std::uint64_t> held;
    std::lock_guard lock(mutex_);
    for (const auto& [id, e] : extracts_) {
        if (e->holdReleased || e->plan.grantedAt + config_.ttl < now) continue;
        for (const auto& s : e->plan.recipe.segments) held.push_back(s.sequence);
    }
    return held;
}

void ExtractService::releaseHold(Extract& extract, std::string_view reason) {
    std::string requestId, requestSha;
    {
        std::lock_guard lock(mutex_);
        if (extract.holdReleased) return;
        extract.holdReleased = true;
        requestId = extract.plan.requestId;
        requestSha = extract.plan.requestSha256;
    }
    auditOrLog(audit_, kEvidenceHoldReleased,
               {{"request_id", requestId}, {"request_sha256", requestSha}, {"reason", std::string(reason)}});
}

// Plans are kept for the TTL, then deleted with what they hold. A hold also ends when its
// oldest footage reaches the policy's ceiling: the store deletes it then regardless.
void ExtractService::sweep() {
    const UtcMicros now = clock_.nowUtc();
    const UtcMicros ceiling = now - policy::kRetentionCeilingDays * common::kMicrosPerDay;
    std::vector<std::shared_ptr<Extract>> expired, pastCeiling;
    {
        std::lock_guard lock(mutex_);
        for (auto it = extracts_.begin(); it != extracts_.end();) {
            Extract& e = *it->second;
            if (e.state != ExtractState::Hashing && e.plan.grantedAt + config_.ttl < now) {
                e.forgotten = true;
                expired.push_back(it->second);
                it = extracts_.erase(it);
                continue;
            }
            if (!e.holdReleased && !e.plan.recipe.segments.empty() && e.plan.recipe.segments.front().end <= ceiling)
                pastCeiling.push_back(it->second);
            ++it;
        }
    }
    for (const auto& e : pastCeiling) releaseHold(*e, "ceiling");
    for (const auto& e : expired) {
        removeFiles(e->plan.extractId);
        releaseHold(*e, "expired");
        common::logInfo(kComponent, "extract {} expired and its plan deleted", e->plan.extractId.substr(0, 8));
    }
}

void ExtractService::housekeeping() {
    pthread_setname_np(pthread_self(), "extract-sweep");
    std::unique_lock lock(wakeMutex_);
    while (!stopped_) {
        wake_.wait_for(lock, kHousekeepingInterval);
        if (stopped_) break;
        lock.unlock();
        sweep();
        lock.lock();
    }
}

void ExtractService::reopen() {
    for (const auto& entry : fs::directory_iterator(config_.extractDir)) {
        const std::string name = entry.path().filename().string();
        if (name.ends_with(".tmp") || name.ends_with(".part") || name.ends_with(".sealed") ||
            name.ends_with(".manifest.json") || name.ends_with(".manifest.sig")) {
            fs::remove(entry.path());  // a write cut short, or a sealed copy from before plans
            continue;
        }
        if (!name.ends_with(kPlanSuffix)) continue;
        const std::string id = name.substr(0, name.size() - kPlanSuffix.size());
        auto e = std::make_shared<Extract>();
        try {
            const std::string text = common::readFile(entry.path());
            ParsedPlan parsed = parsePlan(text);
            if (!parsed.plan || parsed.plan->extractId != id)
                throw std::runtime_error(parsed.plan ? "its name and its extract_id differ" : parsed.error);
            e->plan = std::move(*parsed.plan);
        } catch (const std::exception& ex) {
            common::logWarning(kComponent, "dropping extract plan {}: {}", common::escapeControls(name), ex.what());
            removeFiles(id);
            continue;
        }
        e->delivered = fs::exists(config_.extractDir / (id + std::string(kDeliveredSuffix)));
        if (!e->delivered && fs::exists(config_.extractDir / (id + std::string(kSentSuffix))))
            e->sent = parseRanges(common::readFile(config_.extractDir / (id + std::string(kSentSuffix))));
        e->holdReleased = e->delivered;
        if (e->plan.hashed()) {
            const ParsedManifest m = parseManifest(e->plan.manifest);
            if (!m.manifest || !policy::verify(cameraKey_.publicKey().signKey, e->plan.manifest, *e->plan.signature)) {
                common::logWarning(kComponent, "dropping extract plan {}: its manifest is not one this camera signed", id);
                removeFiles(id);
                continue;
            }
            e->manifest = *m.manifest;
            e->state = ExtractState::Ready;
        }
        extracts_[id] = e;
    }
    // Markers whose plan is gone (deleted at expiry before a power cut took the rest).
    for (const auto& entry : fs::directory_iterator(config_.extractDir)) {
        const fs::path& path = entry.path();
        const std::string ext = path.extension().string();
        if ((ext == kDeliveredSuffix || ext == kSentSuffix) && !extracts_.count(path.stem().string())) fs::remove(path);
    }
    sweep();  // what expired while the daemon was down
    std::vector<std::shared_ptr<Extract>> unhashed;
    for (const auto& [id, e] : extracts_)
        if (e->state == ExtractState::Hashing) unhashed.push_back(e);
    for (const auto& e : unhashed) {
        common::logInfo(kComponent, "extract for request {} was granted before the restart; hashing it again",
                        e->plan.requestId);
        startHashPass(e, std::nullopt);
    }
}

void ExtractService::writePlan(const ExtractPlan& plan) {
    common::writeFileAtomic(config_.extractDir / (plan.extractId + std::string(kPlanSuffix)), serializePlan(plan));
}

void ExtractService::removeFiles(const std::string& id) {
    std::error_code ignored;
    for (const std::string_view suffix : {kPlanSuffix, kDeliveredSuffix, kSentSuffix})
        fs::remove(config_.extractDir / (id + std::string(suffix)), ignored);
    common::fsyncDirectory(config_.extractDir);
}

// The file key is derived, not stored: BLAKE2b-256 keyed with the camera's Ed25519 seed over a
// fixed context and the extract id, so the plan holds nothing secret (docs/extract-plan.md).
common::SecureBuffer ExtractService::fileKeyFor(const std::string& extractId) const {
    common::SecureBuffer key(crypto_secretstream_xchacha20poly1305_KEYBYTES);
    const std::span<const std::uint8_t> seed = cameraKey_.signSecret().first(crypto_sign_SEEDBYTES);
    std::string message(kFileKeyContext);
    message += extractId;
    crypto_generichash(key.data(), key.size(), reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       seed.data(), seed.size());
    return key;
}

}  // namespace mimamori::retrieval

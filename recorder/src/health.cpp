// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder's health record: kept in memory, written atomically as JSON.
#include "mimamori/recorder/health.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace mimamori::recorder {
namespace {

using nlohmann::json;

json utcOrNull(const std::optional<UtcMicros>& t) {
    return t ? json(common::formatUtc(*t)) : json(nullptr);
}

}  // namespace

Health::Health(std::filesystem::path file, std::string cameraId, UtcMicros startedAt,
               std::int64_t keepMicros)
    : file_(std::move(file)), cameraId_(std::move(cameraId)), startedAt_(startedAt) {
    std::error_code ec;
    if (!std::filesystem::exists(file_, ec)) return;
    // An unreadable or foreign record is not fatal: recording matters more than history.
    try {
        json previous = json::parse(common::readFile(file_));
        for (const auto& g : previous.at("gaps")) {
            auto start = common::parseUtc(g.at("start").get<std::string>());
            if (!start || *start < startedAt - keepMicros) continue;
            Gap gap{*start, std::nullopt, g.at("reason").get<std::string>()};
            if (g.at("end").is_string()) gap.end = common::parseUtc(g.at("end").get<std::string>());
            // A gap still open when the previous run died ends where that run stopped writing
            // its record; the restart opens a new one from the ring's newest segment.
            if (!gap.end) {
                auto updated = common::parseUtc(previous.at("updated").get<std::string>());
                gap.end = updated ? std::max(*updated, gap.start) : gap.start;
            }
            gaps_.push_back(std::move(gap));
        }
    } catch (const std::exception& e) {
        common::logWarning("health", "ignoring the previous health record {}: {}",
                           file_.string(), e.what());
        gaps_.clear();
    }
}

void Health::openGap(UtcMicros start, const std::string& reason) {
    std::lock_guard lock(mutex_);
    if (!gaps_.empty() && !gaps_.back().end) return;
    gaps_.push_back(Gap{start, std::nullopt, reason});
}

void Health::closeGap(UtcMicros end) {
    std::lock_guard lock(mutex_);
    if (gaps_.empty() || gaps_.back().end) return;
    gaps_.back().end = std::max(end, gaps_.back().start);
}

bool Health::gapOpen() const {
    std::lock_guard lock(mutex_);
    return !gaps_.empty() && !gaps_.back().end;
}

void Health::addGap(UtcMicros start, UtcMicros end, const std::string& reason) {
    std::lock_guard lock(mutex_);
    Gap gap{start, std::max(start, end), reason};
    // Before the open gap, if any (it stays last), and otherwise in order of start.
    auto limit = !gaps_.empty() && !gaps_.back().end ? gaps_.end() - 1 : gaps_.end();
    auto at = std::upper_bound(gaps_.begin(), limit, start,
                               [](UtcMicros t, const Gap& g) { return t < g.start; });
    gaps_.insert(at, std::move(gap));
}

void Health::segmentWritten(const store::SegmentInfo& segment) {
    std::lock_guard lock(mutex_);
    ++segmentsWritten_;
    recordedMicros_ += segment.end - segment.start;
    lastSegmentEnd_ = segment.end;
}

void Health::segmentFailed() {
    std::lock_guard lock(mutex_);
    ++segmentsFailed_;
}

void Health::setStorage(const store::SegmentStore::Usage& usage) {
    std::lock_guard lock(mutex_);
    storage_ = usage;
}

void Health::setMasks(std::string sha256Hex, std::size_t count) {
    std::lock_guard lock(mutex_);
    maskSha256_ = std::move(sha256Hex);
    maskCount_ = count;
}

std::string Health::summary() const {
    std::lock_guard lock(mutex_);
    std::string line = state_;
    const auto open = std::find_if(gaps_.begin(), gaps_.end(), [](const Gap& g) { return !g.end; });
    if (open != gaps_.end()) line += " (gap: " + open->reason + ")";
    line += fmt::format("; {} segments written, {} failed this run", segmentsWritten_, segmentsFailed_);
    if (keyRatchet_ && keyRatchet_->failing) line += "; the day key cannot advance";
    return line;
}

void Health::setState(std::string state) {
    std::lock_guard lock(mutex_);
    state_ = std::move(state);
}

void Health::settleGap(UtcMicros start, UtcMicros end, const std::string& reason) {
    {
        std::lock_guard lock(mutex_);
        for (auto& g : gaps_) {
            if (g.start == start && g.reason == reason) {
                g.end = std::max({end, start, g.end.value_or(start)});
                return;
            }
        }
    }
    addGap(start, end, reason);
}

void Health::setKeyRatchet(KeyRatchetHealth ratchet) {
    std::lock_guard lock(mutex_);
    keyRatchet_ = std::move(ratchet);
}

KeyRatchetHealth Health::keyRatchet() const {
    std::lock_guard lock(mutex_);
    return keyRatchet_.value_or(KeyRatchetHealth{});
}

std::vector<Gap> Health::gaps() const {
    std::lock_guard lock(mutex_);
    return gaps_;
}

std::string Health::toJson(const FrameCounts& frames, UtcMicros now) const {
    std::lock_guard lock(mutex_);
    json gaps = json::array();
    for (const auto& g : gaps_)
        gaps.push_back({{"start", common::formatUtc(g.start)},
                        {"end", utcOrNull(g.end)},
                        {"reason", g.reason}});
    json doc = {
        {"format", "mimamori-health-1"},
        {"camera_id", cameraId_},
        {"updated", common::formatUtc(now)},
        {"running_since", common::formatUtc(startedAt_)},
        {"state", state_},
        {"frames",
         {{"in", frames.in},
          {"out", frames.out},
          {"dropped", frames.maskFailures + frames.queueDropped},
          {"dropped_mask_failure", frames.maskFailures},
          {"dropped_queue_full", frames.queueDropped}}},
        {"segments",
         {{"written", segmentsWritten_},
          {"failed", segmentsFailed_},
          {"recorded_seconds", static_cast<double>(recordedMicros_) / common::kMicrosPerSecond},
          {"last_end", utcOrNull(lastSegmentEnd_)}}},
        {"gaps", gaps},
        {"storage",
         {{"bytes", storage_.bytes},
          {"segments", storage_.segments},
          {"oldest", utcOrNull(storage_.oldest)},
          {"newest", utcOrNull(storage_.newest)},
          {"days_capacity_holds", storage_.daysCapacityHolds}}},
        {"masks", {{"sha256", maskSha256_}, {"count", maskCount_}}},
    };
    if (keyRatchet_) {
        const KeyRatchetHealth& k = *keyRatchet_;
        doc["key_ratchet"] = {{"state", k.failing ? "failing" : "ok"},
                              {"day", common::formatUtc(k.day * common::kMicrosPerDay).substr(0, 10)},
                              {"target_day", common::formatUtc(k.targetDay * common::kMicrosPerDay).substr(0, 10)},
                              {"failing_since", utcOrNull(k.failingSince)},
                              {"error", k.failing ? json(k.error) : json(nullptr)}};
    }
    return doc.dump(2) + "\n";
}

void Health::write(const FrameCounts& frames, UtcMicros now) const {
    common::writeFileAtomic(file_, toJson(frames, now));
}

}  // namespace mimamori::recorder

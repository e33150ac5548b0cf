// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Passage aggregation: open visits keyed by (company, tag), EWMA-smoothed RSSI, silence split.
#include "mimamori/ble/aggregator.hpp"

namespace mimamori::ble {

PassageAggregator::PassageAggregator(AggregatorConfig config, std::vector<std::string> companyNames,
                                     std::string cameraId)
    : config_(config), companyNames_(std::move(companyNames)), cameraId_(std::move(cameraId)) {}

bool PassageAggregator::observe(const TagSighting& s) {
    if (!s.rssi || *s.rssi < config_.rssiFloor || s.company >= companyNames_.size()) return false;
    const double rssi = *s.rssi;
    auto key = std::make_pair(s.company, s.tagId);
    auto it = open_.find(key);
    // A sighting after the silence starts a new visit even if closeIdle() has not run yet.
    if (it != open_.end() && s.monotonic - it->second.lastMonotonic >= config_.silenceMicros) {
        closed_.push_back(std::move(it->second.passage));
        open_.erase(it);
        it = open_.end();
    }
    if (it == open_.end()) {
        Visit v;
        v.passage.company = companyNames_[s.company];
        v.passage.tagId = s.tagId;
        v.passage.cameraId = cameraId_;
        v.passage.firstSeen = s.time;
        v.passage.lastSeen = s.time;
        v.passage.maxRssi = rssi;
        v.passage.sightings = 1;
        v.smoothed = rssi;
        v.lastMonotonic = s.monotonic;
        open_.emplace(std::move(key), std::move(v));
        return true;
    }
    Visit& v = it->second;
    v.smoothed = config_.smoothing * rssi + (1 - config_.smoothing) * v.smoothed;
    if (v.smoothed > v.passage.maxRssi) v.passage.maxRssi = v.smoothed;
    if (s.time > v.passage.lastSeen) v.passage.lastSeen = s.time;
    v.lastMonotonic = s.monotonic;
    ++v.passage.sightings;
    return true;
}

std::vector<Passage> PassageAggregator::closeIdle(std::int64_t nowMonotonic) {
    std::vector<Passage> out = std::move(closed_);
    closed_.clear();
    for (auto it = open_.begin(); it != open_.end();) {
        if (nowMonotonic - it->second.lastMonotonic >= config_.silenceMicros) {
            out.push_back(std::move(it->second.passage));
            it = open_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

std::vector<Passage> PassageAggregator::closeAll() {
    std::vector<Passage> out = std::move(closed_);
    closed_.clear();
    for (auto& [key, visit] : open_) out.push_back(std::move(visit.passage));
    open_.clear();
    return out;
}

}  // namespace mimamori::ble

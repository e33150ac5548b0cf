// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Turns tag sightings into passages: one per tag per visit, split by a silence.
#pragma once

#include "mimamori/ble/passage.hpp"
#include "mimamori/ble/tags.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mimamori::ble {

struct AggregatorConfig {
    std::int64_t silenceMicros = 60 * common::kMicrosPerSecond;  // a visit ends after this
    int rssiFloor = -100;        // sightings weaker than this (dBm) are ignored entirely
    double smoothing = 0.3;      // EWMA weight of the newest RSSI sample, (0, 1]
};

// Not thread-safe: the caller serialises observe() and closeIdle(). Holds only open visits of
// registered tags; its size does not depend on how many unregistered devices were around.
class PassageAggregator {
public:
    PassageAggregator(AggregatorConfig config, std::vector<std::string> companyNames,
                      std::string cameraId);

    // Returns true when the sighting counted (above the floor).
    bool observe(const TagSighting& s);
    // Closes the visits silent for at least the configured silence at monotonic time `now`.
    [[nodiscard]] std::vector<Passage> closeIdle(std::int64_t nowMonotonic);
    // Closes every open visit (shutdown).
    [[nodiscard]] std::vector<Passage> closeAll();

    [[nodiscard]] std::size_t openVisits() const { return open_.size(); }
    [[nodiscard]] std::size_t pendingClosed() const { return closed_.size(); }

private:
    struct Visit {
        Passage passage;
        double smoothed = 0;
        std::int64_t lastMonotonic = 0;
    };
    AggregatorConfig config_;
    std::vector<std::string> companyNames_;
    std::string cameraId_;
    std::map<std::pair<std::size_t, std::string>, Visit> open_;
    std::vector<Passage> closed_;  // visits a later sighting split off, handed out by closeIdle()
};

}  // namespace mimamori::ble

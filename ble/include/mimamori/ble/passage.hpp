// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// A passage: one registered tag's visit near this camera, the only record the BLE detector keeps.
#pragma once

#include "mimamori/common/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mimamori::ble {

struct Passage {
    std::uint64_t seq = 0;           // per company, assigned by the queue; receivers dedupe on it
    std::string company;
    std::string tagId;
    std::string cameraId;
    common::UtcMicros firstSeen = 0;
    common::UtcMicros lastSeen = 0;
    double maxRssi = 0;              // strongest smoothed RSSI of the visit, dBm
    std::uint32_t sightings = 0;     // advertisements counted in the visit
};

// One JSON object on one line (no newline), as documented in docs/ble.md.
[[nodiscard]] std::string passageToJson(const Passage& p);
// nullopt when the text is not a complete passage object (e.g. a line torn by a power cut).
[[nodiscard]] std::optional<Passage> passageFromJson(std::string_view line);

}  // namespace mimamori::ble

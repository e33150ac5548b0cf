// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Passage records as single-line JSON: the queue's line format and the delivery payload.
#include "mimamori/ble/passage.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

namespace mimamori::ble {

namespace {

nlohmann::json toJson(const Passage& p) {
    return {{"seq", p.seq},
            {"company", p.company},
            {"tag", p.tagId},
            {"camera", p.cameraId},
            {"first_seen", common::formatUtc(p.firstSeen)},
            {"last_seen", common::formatUtc(p.lastSeen)},
            // One decimal place is far below RSSI's real precision and keeps lines short.
            {"rssi_max", std::round(p.maxRssi * 10) / 10},
            {"sightings", p.sightings}};
}

}  // namespace

std::string passageToJson(const Passage& p) { return toJson(p).dump(); }

std::optional<Passage> passageFromJson(std::string_view line) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    try {
        Passage p;
        p.seq = j.at("seq").get<std::uint64_t>();
        p.company = j.at("company").get<std::string>();
        p.tagId = j.at("tag").get<std::string>();
        p.cameraId = j.at("camera").get<std::string>();
        const auto first = common::parseUtc(j.at("first_seen").get<std::string>());
        const auto last = common::parseUtc(j.at("last_seen").get<std::string>());
        if (!first || !last) return std::nullopt;
        p.firstSeen = *first;
        p.lastSeen = *last;
        p.maxRssi = j.at("rssi_max").get<double>();
        p.sightings = j.at("sightings").get<std::uint32_t>();
        return p;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

}  // namespace mimamori::ble

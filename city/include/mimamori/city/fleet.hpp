// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// FLEET.json: the cameras `mimamori fleet collect` visits (docs/fleet.md#fleetjson).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::city {

struct FleetCamera {
    std::string id;
    std::string url;                 // http:// or https://, as written
    std::filesystem::path keyFile;   // resolved against FLEET.json's folder
};

constexpr std::size_t kMaxFleetCameras = 100'000;
constexpr std::size_t kMaxFleetFileBytes = 64 << 20;

// Parses FLEET.json's text; `base` is its folder (relative key paths). Every finding is
// reported, each with its place ("cameras[3].url: …"), one per line, in one
// std::invalid_argument.
[[nodiscard]] std::vector<FleetCamera> parseFleet(std::string_view text, const std::filesystem::path& base);

// Reads and parses a FLEET.json file (at most kMaxFleetFileBytes). Throws std::invalid_argument
// or common::FileError, naming the file.
[[nodiscard]] std::vector<FleetCamera> loadFleet(const std::filesystem::path& file);

}  // namespace mimamori::city

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// One BLE advertisement as plain data: what the scanner hands to the pure decoding stage.
#pragma once

#include "mimamori/common/time.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mimamori::ble {

using Bytes = std::vector<std::uint8_t>;

// Built by the scanner from BlueZ's Device1 properties; lives only for the call that decodes it.
struct Advertisement {
    std::string address;                          // "AA:BB:CC:DD:EE:FF" (never stored)
    std::optional<int> rssi;                      // dBm; unset when this update carried none
    std::map<std::uint16_t, Bytes> manufacturerData;  // company id -> payload after the id
    std::map<std::string, Bytes> serviceData;     // lower-case 128-bit UUID -> payload
    common::UtcMicros time = 0;                   // wall clock when it was received
    std::int64_t monotonic = 0;                   // monotonic clock, for visit silences
};

}  // namespace mimamori::ble

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Internal: BlueZ Device1 property maps (sdbus variants) to plain data, tolerant of wrong types.
#pragma once

#include "mimamori/ble/advertisement.hpp"

#include <sdbus-c++/sdbus-c++.h>

#include <map>
#include <optional>
#include <string>

namespace mimamori::ble::detail {

// The Device1 properties one signal or snapshot carried; a property of the wrong D-Bus type is
// treated as absent, an entry of the wrong type inside a dictionary is skipped.
struct DeviceUpdate {
    std::optional<std::string> address;
    std::optional<int> rssi;
    std::optional<std::map<std::uint16_t, Bytes>> manufacturerData;
    std::optional<std::map<std::string, Bytes>> serviceData;
};

DeviceUpdate parseDeviceProperties(const std::map<std::string, sdbus::Variant>& props);

// "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF" -> "AA:BB:CC:DD:EE:FF"; "" when not a device path.
std::string addressFromPath(const std::string& path);

}  // namespace mimamori::ble::detail

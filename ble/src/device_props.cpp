// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Conversion of BlueZ Device1 variants into plain data at the D-Bus boundary.
#include "device_props.hpp"

#include <algorithm>
#include <cctype>

namespace mimamori::ble::detail {

namespace {

template <typename T>
std::optional<T> take(const std::map<std::string, sdbus::Variant>& props, const char* name) {
    const auto it = props.find(name);
    if (it == props.end() || !it->second.containsValueOfType<T>()) return std::nullopt;
    return it->second.get<T>();
}

std::optional<Bytes> bytesOf(const sdbus::Variant& v) {
    if (!v.containsValueOfType<std::vector<std::uint8_t>>()) return std::nullopt;
    return v.get<std::vector<std::uint8_t>>();
}

}  // namespace

DeviceUpdate parseDeviceProperties(const std::map<std::string, sdbus::Variant>& props) {
    DeviceUpdate u;
    u.address = take<std::string>(props, "Address");
    if (auto rssi = take<std::int16_t>(props, "RSSI")) u.rssi = *rssi;
    if (auto md = take<std::map<std::uint16_t, sdbus::Variant>>(props, "ManufacturerData")) {
        std::map<std::uint16_t, Bytes> out;
        for (const auto& [id, value] : *md)
            if (auto b = bytesOf(value)) out.emplace(id, std::move(*b));
        u.manufacturerData = std::move(out);
    }
    if (auto sd = take<std::map<std::string, sdbus::Variant>>(props, "ServiceData")) {
        std::map<std::string, Bytes> out;
        for (const auto& [uuid, value] : *sd) {
            if (auto b = bytesOf(value)) {
                std::string key = uuid;
                std::transform(key.begin(), key.end(), key.begin(),
                               [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
                out.emplace(std::move(key), std::move(*b));
            }
        }
        u.serviceData = std::move(out);
    }
    return u;
}

std::string addressFromPath(const std::string& path) {
    const auto pos = path.rfind("/dev_");
    if (pos == std::string::npos) return {};
    std::string a = path.substr(pos + 5);
    if (a.size() != 17) return {};
    std::replace(a.begin(), a.end(), '_', ':');
    return a;
}

}  // namespace mimamori::ble::detail

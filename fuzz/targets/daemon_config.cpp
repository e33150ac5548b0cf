// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: mimamorid's configuration file (docs/config.md) with its "ble" section (docs/ble.md).
#include "mimamori/ble/service.hpp"
#include "mimamori/recorder/config.hpp"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    mimamori::recorder::DaemonConfig config;
    try {
        // A directory that does not exist: relative paths resolve under it, nothing is found there.
        config = mimamori::recorder::parseConfig(text, "/nonexistent/mimamori-fuzz/mimamorid.json");
    } catch (const mimamori::common::ConfigError& e) {
        (void)e.what();
        return 0;
    }
    try {
        (void)mimamori::ble::parseServiceConfig(config.bleJson);
    } catch (const mimamori::common::ConfigError& e) {
        (void)e.what();
    }
    return 0;
}

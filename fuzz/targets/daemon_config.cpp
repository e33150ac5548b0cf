// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: mimamorid's whole configuration file (docs/config.md), each section through its
// own module's parser (recorder, "retrieval", "ble").
#include "mimamori/common/config_error.hpp"
#include "mimamori/daemon/config.hpp"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        // A directory that does not exist: relative paths resolve under it, nothing is found there.
        (void)mimamori::daemon::parseDaemonConfig(text, "/nonexistent/mimamori-fuzz/mimamorid.json");
    } catch (const mimamori::common::ConfigError& e) {
        (void)e.what();
    }
    return 0;
}

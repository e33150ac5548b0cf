// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// mimamorid's whole config file (docs/config.md), parsed by the composition root: each module
// parses its own section, and every problem of every section is reported at once.
#pragma once

#include "mimamori/ble/service.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/retrieval/endpoint.hpp"

#include <filesystem>
#include <optional>
#include <string_view>

namespace mimamori::daemon {

struct DaemonConfig {
    std::filesystem::path path;  // where it was read from
    // camera_id, source, encoder, segment_seconds, storage, mask_file, key_dir, state_dir
    recorder::RecorderConfig recorder;
    // "retrieval"; absent: no endpoint and no audit log
    std::optional<retrieval::EndpointConfig> retrieval;
    ble::ServiceConfig ble;  // "ble"; absent: disabled
};

// Throws common::ConfigError listing every problem of every section, each naming its key
// ("storage.byte_limit: ...", "retrieval.port: ...", "ble.companies[0].name: ..."). Besides the
// sections' own rules: the trust file, the camera key and the TLS key must not lie on the
// removable card (symlinks followed), or whoever holds the card could add trusted keys or take
// the key that signs the audit log.
[[nodiscard]] DaemonConfig parseDaemonConfig(std::string_view text, const std::filesystem::path& source);
// As parseDaemonConfig, from the file; common::FileError when it cannot be read.
[[nodiscard]] DaemonConfig loadDaemonConfig(const std::filesystem::path& path);

}  // namespace mimamori::daemon

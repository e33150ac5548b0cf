// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder's sections of mimamorid's configuration file (JSON, docs/config.md).
#pragma once

#include "mimamori/common/config_error.hpp"
#include "mimamori/store/segment_store.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::recorder {

using common::UtcMicros;

struct SourceConfig {
    // "test" (embedded default: a generated street-like scene, no camera needed), "file",
    // "v4l2", "rtsp", or "pipeline" (any gst-launch description ending in raw video).
    std::string kind = "test";
    std::string location;        // file path, /dev/videoN, rtsp:// URL or pipeline text
    bool loop = false;           // file: start again at the end
    bool realtime = true;        // file: pace at the clip's frame rate; false = as fast as possible
    int width = 1920;            // test source / requested caps
    int height = 1080;
    int framerate = 15;
    std::int64_t numBuffers = 0;  // test source: stop after this many frames (tests); 0 = never
};

struct EncoderConfig {
    std::string element = "x264enc";  // any H.264 encoder element, e.g. the SoC's v4l2h264enc
    std::string properties;           // gst-launch style "key=value key=value", applied as given
    int keyframeIntervalFrames = 0;   // 0 = kDefaultKeyframeSeconds of video, or the segment if shorter
};

struct RecorderConfig {
    std::filesystem::path path;  // where it was read from
    store::StoreConfig store;    // camera id, storage, key directory, limits, retention
    SourceConfig source;
    EncoderConfig encoder;
    double segmentSeconds = 10;
    std::filesystem::path maskFile;
    std::filesystem::path stateDir;  // health, gap records, audit log, nonces (internal flash)
};

// `path` made absolute and normal, with every symlink in the part that exists resolved.
[[nodiscard]] std::filesystem::path resolvedPath(const std::filesystem::path& path);
// True when `inner` is `outer` or lies below it, both resolved as by resolvedPath(): a symlink
// (of the path or of a parent) into the card counts as on the card.
[[nodiscard]] bool liesInside(const std::filesystem::path& inner, const std::filesystem::path& outer);

// The recorder's part of mimamorid's config (docs/config.md): the top-level object without the
// other modules' sections ("retrieval", "ble"), which the daemon's config parser takes out and
// hands to their own parsers. `source` is the config file, for relative paths and messages.
// Throws common::ConfigError with every problem, each naming its key ("storage.byte_limit: ...").
[[nodiscard]] RecorderConfig parseConfig(const nlohmann::json& root, const std::filesystem::path& source);

}  // namespace mimamori::recorder

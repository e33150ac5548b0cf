// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Helpers for the segment store tests: temporary rings, real-looking TS, a plaintext scanner.
#pragma once

#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/store/segment_store.hpp"

#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::store::testing {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "mimamori-store-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

inline StoreConfig makeConfig(const TempDir& dir) {
    StoreConfig c;
    c.cameraId = "kakogawa-test-0001";
    c.storageDir = dir.path() / "card" / "ring";
    c.keyDir = dir.path() / "flash" / "keys";
    c.retentionDays = 12;
    return c;
}

// NAL starts as x264 writes them (SPS High profile, PPS, SEI, IDR and non-IDR slices). Five
// bytes or more each, so random ciphertext matches one by chance about once in 2^40 offsets.
inline const std::vector<std::vector<std::uint8_t>>& nalPatterns() {
    static const std::vector<std::vector<std::uint8_t>> patterns = {
        {0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00}, {0x00, 0x00, 0x00, 0x01, 0x68, 0xEE, 0x3C},
        {0x00, 0x00, 0x00, 0x01, 0x06, 0x05},       {0x00, 0x00, 0x01, 0x65, 0x88, 0x84},
        {0x00, 0x00, 0x01, 0x41, 0x9A}};
    return patterns;
}

// MPEG-TS packets (sync byte 0x47 every 188 bytes, PID 0x100, continuity counter) carrying
// H.264-looking payload: start codes with NAL headers, the rest pseudo-random.
inline std::vector<std::uint8_t> makeTs(std::size_t packets, std::uint32_t seed) {
    std::mt19937 random(seed);
    std::vector<std::uint8_t> out;
    out.reserve(packets * 188);
    for (std::size_t p = 0; p < packets; ++p) {
        std::array<std::uint8_t, 188> packet{};
        packet[0] = 0x47;
        packet[1] = p % 10 == 0 ? 0x41 : 0x01;  // payload_unit_start on PES starts
        packet[2] = 0x00;
        packet[3] = static_cast<std::uint8_t>(0x10 | (p & 0x0F));
        for (std::size_t i = 4; i < packet.size(); ++i) packet[i] = static_cast<std::uint8_t>(random());
        const auto& nal = nalPatterns()[p % nalPatterns().size()];
        std::copy(nal.begin(), nal.end(), packet.begin() + 20);
        out.insert(out.end(), packet.begin(), packet.end());
    }
    return out;
}

// Offset of the first plaintext TS/H.264 pattern in `bytes`, if any.
inline std::optional<std::size_t> findPlaintext(std::span<const std::uint8_t> bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i + 4 * 188 < bytes.size()) {
            bool sync = true;
            for (std::size_t k = 0; k < 5 && sync; ++k) sync = bytes[i + k * 188] == 0x47;
            if (sync) return i;
        }
        for (const auto& nal : nalPatterns())
            if (i + nal.size() <= bytes.size() && std::equal(nal.begin(), nal.end(), bytes.begin() + static_cast<long>(i)))
                return i;
    }
    return std::nullopt;
}

inline std::vector<std::uint8_t> readAll(const StoreConfig&, SegmentStore& store, const SegmentInfo& s,
                                         std::optional<std::string>* error = nullptr) {
    std::vector<std::uint8_t> out;
    const auto read = store.read(s, [&](std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); });
    if (error != nullptr) *error = read.ok() ? std::nullopt : std::optional<std::string>(read.error());
    return out;
}

inline std::vector<std::uint8_t> fileBytes(const std::filesystem::path& p) {
    const std::string s = common::readFile(p);
    return {s.begin(), s.end()};
}

// The files in `dir` whose names end in `suffix`, sorted.
inline std::vector<std::filesystem::path> filesIn(const std::filesystem::path& dir, std::string_view suffix) {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().string().ends_with(suffix)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

inline void writeBytes(const std::filesystem::path& p, std::span<const std::uint8_t> bytes) {
    common::writeFileAtomic(p, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

inline constexpr common::UtcMicros kT0 = 1'793'491'200LL * common::kMicrosPerSecond;  // 2026-11-01T00:00:00Z

}  // namespace mimamori::store::testing

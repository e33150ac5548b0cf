// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The one-way day-key ratchet: the device keeps only the oldest day key still inside retention.
#pragma once

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/time.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>

namespace mimamori::store {

// Day and segment keys: 32 bytes in sodium memory (common::SecureBuffer).
inline constexpr std::size_t kKeyBytes = 32;

// UTC day index since 1970-01-01 (floor division, so it is right for times before 1970 too).
[[nodiscard]] std::int64_t dayIndex(common::UtcMicros t);

// next = crypto_kdf_derive_from_key(id = nextDay, ctx "MMdayrat", key = previous): one-way.
[[nodiscard]] common::SecureBuffer nextDayKey(const common::SecureBuffer& previous, std::int64_t nextDay);
// crypto_kdf_derive_from_key(id = sequence, ctx "MMsegkey", key = day key).
[[nodiscard]] common::SecureBuffer deriveSegmentKey(const common::SecureBuffer& dayKey, std::uint64_t sequence);

// The key file keyDir/day.key (layout in docs/segment-format.md). Not thread-safe: the store
// serialises access. Never logs key bytes.
class KeyRatchet {
public:
    static constexpr const char* kFileName = "day.key";

    // Loads keyDir/day.key; nullopt when there is none. Throws common::FileError when the file
    // is unreadable, has the wrong size or fails its checksum.
    [[nodiscard]] static std::optional<KeyRatchet> load(const std::filesystem::path& keyDir);
    // Creates a random root key for `day` and stores it durably (mode 0600).
    [[nodiscard]] static KeyRatchet create(const std::filesystem::path& keyDir, std::int64_t day,
                             common::UtcMicros storeTime);

    KeyRatchet(KeyRatchet&&) noexcept = default;
    KeyRatchet& operator=(KeyRatchet&&) noexcept = default;

    // The oldest day whose key the device still holds.
    [[nodiscard]] std::int64_t day() const { return day_; }
    // Store time (see docs) when the key file was last written.
    [[nodiscard]] common::UtcMicros writtenAt() const { return writtenAt_; }

    // The key of `day` by ratcheting forward; nullopt when `day` < day() (shredded).
    [[nodiscard]] std::optional<common::SecureBuffer> dayKey(std::int64_t day) const;
    [[nodiscard]] std::optional<common::SecureBuffer> segmentKey(std::int64_t day, std::uint64_t sequence) const;

    // Replaces the stored key by the one of `newDay` (> day()): atomic replace + fsync, and the
    // old key is wiped from memory. Afterwards nothing here derives a key of a day < newDay.
    void advanceTo(std::int64_t newDay, common::UtcMicros storeTime);

private:
    KeyRatchet(std::filesystem::path path, std::int64_t day, common::UtcMicros writtenAt, common::SecureBuffer key);
    void store() const;

    std::filesystem::path path_;
    std::int64_t day_ = 0;
    common::UtcMicros writtenAt_ = 0;
    common::SecureBuffer key_;
    // Day keys derived so far (days >= day_ only), so reading 100k segments does not ratchet
    // 100k times; entries below a new day_ are wiped on advanceTo().
    mutable std::map<std::int64_t, common::SecureBuffer> derived_;
};

}  // namespace mimamori::store

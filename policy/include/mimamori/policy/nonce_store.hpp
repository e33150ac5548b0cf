// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Durable memory of granted request nonces, so a request is granted at most once, across restarts.
#pragma once

#include "mimamori/common/time.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace mimamori::policy {

// A corrupt store file (not merely a torn last line); names the file and line.
class NonceStoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// File: one line per nonce, "<hex nonce> <expires-at as decimal UTC microseconds>\n", appended
// and fdatasync'd before remember() returns. A torn last line (power cut during the append) is
// dropped on open: remember() never returned for it, so its request was never granted.
// After a prune the file starts with "horizon <decimal UTC microseconds>\n": the latest expiry
// of any nonce it has forgotten. A request expiring at or before the horizon counts as seen,
// since its grant can no longer be ruled out; so a wall clock that steps forward (pruning
// nonces of requests still valid) and back again can never revive a granted request.
// Thread-safe.
class NonceStore {
public:
    // Nonces whose request expired more than this long ago are pruned. The margin guards
    // against the wall clock stepping back (NTP, LTE time) and reviving an expired request.
    static constexpr common::UtcMicros kPruneMargin = common::kMicrosPerDay;

    // Loads (creating the file if missing). Throws NonceStoreError or common::FileError.
    explicit NonceStore(std::filesystem::path path);

    // True when the nonce is remembered.
    [[nodiscard]] bool seen(std::span<const std::uint8_t> nonce) const;
    // True when a grant of this nonce cannot be ruled out: remembered, or expiring at or before
    // the horizon. This is the replay check.
    [[nodiscard]] bool mayHaveBeenGranted(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt) const;
    // Records the nonce durably. Returns false (and records nothing) when it was already known.
    bool remember(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt);
    // Holds the store's lock across check and record: `check` runs with the answer of
    // mayHaveBeenGranted();
    // when it returns true the nonce is recorded before checkAndRemember returns.
    // Returns what `check` returned.
    template <typename Check>
    bool checkAndRemember(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt, Check&& check) {
        std::lock_guard lock(mutex_);
        const bool known = seenLocked(nonce) || (horizon_ && expiresAt <= *horizon_);
        if (!check(known)) return false;
        recordLocked(nonce, expiresAt);
        return true;
    }
    // Drops nonces with expiresAt + kPruneMargin < now, raises the horizon to the latest expiry
    // dropped, and rewrites the file atomically. Returns how many were dropped. `now` only
    // chooses what to forget; a `now` that is wrong (stepped forward) costs refusals of requests
    // expiring up to the horizon, never a replay.
    std::size_t prune(common::UtcMicros now);
    // The latest expiry forgotten so far; nullopt before the first prune that dropped a nonce.
    [[nodiscard]] std::optional<common::UtcMicros> horizon() const;
    [[nodiscard]] std::size_t size() const;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    [[nodiscard]] bool seenLocked(std::span<const std::uint8_t> nonce) const;
    void recordLocked(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt);

    std::filesystem::path path_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, common::UtcMicros> nonces_;  // hex nonce -> expires-at
    std::optional<common::UtcMicros> horizon_;
};

}  // namespace mimamori::policy

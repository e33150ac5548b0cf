// Durable memory of granted request nonces, so a request is granted at most once, across restarts.
#pragma once

#include "mimamori/common/time.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
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
// Thread-safe.
class NonceStore {
public:
    // Nonces whose request expired more than this long ago are pruned. The margin guards
    // against the wall clock stepping back (NTP, LTE time) and reviving an expired request.
    static constexpr common::UtcMicros kPruneMargin = common::kMicrosPerDay;

    // Loads (creating the file if missing). Throws NonceStoreError or common::FileError.
    explicit NonceStore(std::filesystem::path path);

    bool seen(std::span<const std::uint8_t> nonce) const;
    // Records the nonce durably. Returns false (and records nothing) when it was already known.
    bool remember(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt);
    // Holds the store's lock across check and record: `check` runs with the answer of seen();
    // when it returns true the nonce is recorded before checkAndRemember returns.
    // Returns what `check` returned.
    template <typename Check>
    bool checkAndRemember(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt, Check&& check) {
        std::lock_guard lock(mutex_);
        const bool known = seenLocked(nonce);
        if (!check(known)) return false;
        recordLocked(nonce, expiresAt);
        return true;
    }
    // Drops nonces with expiresAt + kPruneMargin < now and rewrites the file atomically.
    // Returns how many were dropped.
    std::size_t prune(common::UtcMicros now);
    std::size_t size() const;
    const std::filesystem::path& path() const { return path_; }

private:
    bool seenLocked(std::span<const std::uint8_t> nonce) const;
    void recordLocked(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt);

    std::filesystem::path path_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, common::UtcMicros> nonces_;  // hex nonce -> expires-at
};

}  // namespace mimamori::policy

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Granted-request nonces: an append-only, fdatasync'd text file, pruned by atomic rewrite.
#include "mimamori/policy/nonce_store.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace mimamori::policy {
namespace {

std::string hexOf(std::span<const std::uint8_t> nonce) { return common::toHex(nonce); }

constexpr std::string_view kHorizonPrefix = "horizon ";

std::string lineFor(const std::string& hex, common::UtcMicros expiresAt) {
    return fmt::format("{} {}\n", hex, expiresAt);
}

void appendDurably(const std::filesystem::path& path, const std::string& text) {
    common::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    common::writeAll(fd.get(), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, path.string());
    if (::fdatasync(fd.get()) != 0)
        throw common::FileError(fmt::format("{}: fdatasync failed: {}", path.string(), std::strerror(errno)));
}

}  // namespace

NonceStore::NonceStore(std::filesystem::path path) : path_(std::move(path)) {
    std::error_code ec;
    if (!std::filesystem::exists(path_, ec)) {
        common::writeFileAtomic(path_, "");
        return;
    }
    const std::string text = common::readFile(path_);
    std::size_t pos = 0;
    std::size_t lineNo = 0;
    while (pos < text.size()) {
        ++lineNo;
        const std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) {
            // A power cut during remember(): that call never returned, nothing was granted on it.
            common::logWarning("policy", "{}: dropping a torn last line ({} bytes)", path_.string(), text.size() - pos);
            common::writeFileAtomic(path_, std::string_view(text).substr(0, pos), std::filesystem::perms::owner_read |
                                                                                   std::filesystem::perms::owner_write);
            break;
        }
        const std::string_view line(text.data() + pos, nl - pos);
        pos = nl + 1;
        if (lineNo == 1 && line.starts_with(kHorizonPrefix)) {
            common::UtcMicros horizon = 0;
            const char* begin = line.data() + kHorizonPrefix.size();
            const char* end = line.data() + line.size();
            if (begin == end || std::from_chars(begin, end, horizon).ptr != end)
                throw NonceStoreError(fmt::format("{}:1: not 'horizon <time>'", path_.string()));
            horizon_ = horizon;
            continue;
        }
        const std::size_t space = line.find(' ');
        std::string bytes;
        common::UtcMicros expires = 0;
        const char* numEnd = line.data() + line.size();
        if (space == std::string_view::npos || !common::fromHex(line.substr(0, space), bytes) || bytes.empty() ||
            std::from_chars(line.data() + space + 1, numEnd, expires).ptr != numEnd || space + 1 == line.size())
            throw NonceStoreError(fmt::format("{}:{}: not '<hex nonce> <expiry>'", path_.string(), lineNo));
        // Keyed by the canonical (lowercase) hex, whatever case the file used.
        nonces_[common::toHex({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()})] = expires;
    }
}

bool NonceStore::seen(std::span<const std::uint8_t> nonce) const {
    std::lock_guard lock(mutex_);
    return seenLocked(nonce);
}

bool NonceStore::mayHaveBeenGranted(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt) const {
    std::lock_guard lock(mutex_);
    return seenLocked(nonce) || (horizon_ && expiresAt <= *horizon_);
}

std::optional<common::UtcMicros> NonceStore::horizon() const {
    std::lock_guard lock(mutex_);
    return horizon_;
}

bool NonceStore::remember(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt) {
    return checkAndRemember(nonce, expiresAt, [](bool known) { return !known; });
}

bool NonceStore::seenLocked(std::span<const std::uint8_t> nonce) const { return nonces_.count(hexOf(nonce)) != 0; }

void NonceStore::recordLocked(std::span<const std::uint8_t> nonce, common::UtcMicros expiresAt) {
    const std::string hex = hexOf(nonce);
    appendDurably(path_, lineFor(hex, expiresAt));  // on disk before anyone is told "granted"
    nonces_[hex] = expiresAt;
}

std::size_t NonceStore::prune(common::UtcMicros now) {
    std::lock_guard lock(mutex_);
    std::size_t dropped = 0;
    std::optional<common::UtcMicros> horizon = horizon_;
    for (auto it = nonces_.begin(); it != nonces_.end();) {
        if (it->second < now - kPruneMargin) {
            horizon = std::max(horizon.value_or(it->second), it->second);
            it = nonces_.erase(it);
            ++dropped;
        } else {
            ++it;
        }
    }
    if (dropped == 0) return 0;
    // The horizon is written with the nonces it replaces, in one atomic rewrite: a power cut
    // leaves either the old file or the new one, never a forgotten nonce without its horizon.
    std::string text = fmt::format("{}{}\n", kHorizonPrefix, *horizon);
    for (const auto& [hex, expires] : nonces_) text += lineFor(hex, expires);
    common::writeFileAtomic(path_, text);
    horizon_ = horizon;
    return dropped;
}

std::size_t NonceStore::size() const {
    std::lock_guard lock(mutex_);
    return nonces_.size();
}

}  // namespace mimamori::policy

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Day-key ratchet: derivations with crypto_kdf (BLAKE2b) and the durable key file in keyDir.
#include "mimamori/store/key_ratchet.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace mimamori::store {
namespace {

static_assert(std::endian::native == std::endian::little, "on-disk layouts are little-endian");
static_assert(kKeyBytes == crypto_kdf_KEYBYTES);
static_assert(kKeyBytes == crypto_secretstream_xchacha20poly1305_KEYBYTES);

constexpr char kDayContext[crypto_kdf_CONTEXTBYTES + 1] = "MMdayrat";
constexpr char kSegmentContext[crypto_kdf_CONTEXTBYTES + 1] = "MMsegkey";
constexpr char kKeyFileMagic[8] = {'M', 'I', 'M', 'A', 'D', 'K', 'E', 'Y'};
constexpr std::uint16_t kKeyFileVersion = 1;
// More ratchet steps than this in one derivation means a corrupt day, not a real gap.
constexpr std::int64_t kMaxRatchetSteps = 100'000;

// keyDir/day.key, 96 bytes. Lives only in sodium_malloc'd memory because it holds the key.
struct KeyFile {
    char magic[8];
    std::uint16_t version;
    std::uint16_t reserved0;
    std::uint32_t reserved1;
    std::int64_t day;
    std::int64_t writtenAt;
    std::uint8_t key[32];
    std::uint8_t check[32];  // BLAKE2b-256 of the 64 bytes before it: catches a damaged file
};
static_assert(sizeof(KeyFile) == 96);
static_assert(offsetof(KeyFile, version) == 8);
static_assert(offsetof(KeyFile, day) == 16);
static_assert(offsetof(KeyFile, writtenAt) == 24);
static_assert(offsetof(KeyFile, key) == 32);
static_assert(offsetof(KeyFile, check) == 64);

struct SodiumFree {
    void operator()(void* p) const { sodium_free(p); }
};
using SecureKeyFile = std::unique_ptr<KeyFile, SodiumFree>;

SecureKeyFile allocateKeyFile() {
    void* p = sodium_malloc(sizeof(KeyFile));
    if (p == nullptr) throw std::bad_alloc();
    sodium_memzero(p, sizeof(KeyFile));
    return SecureKeyFile(static_cast<KeyFile*>(p));
}

void checksum(const KeyFile& file, std::uint8_t out[32]) {
    crypto_generichash(out, 32, reinterpret_cast<const std::uint8_t*>(&file), offsetof(KeyFile, check),
                       nullptr, 0);
}

}  // namespace

std::int64_t dayIndex(common::UtcMicros t) {
    std::int64_t day = t / common::kMicrosPerDay;
    if (t % common::kMicrosPerDay < 0) --day;
    return day;
}

common::SecureBuffer nextDayKey(const common::SecureBuffer& previous, std::int64_t nextDay) {
    common::SecureBuffer next(kKeyBytes);
    crypto_kdf_derive_from_key(next.data(), kKeyBytes, static_cast<std::uint64_t>(nextDay),
                               kDayContext, previous.data());
    return next;
}

common::SecureBuffer deriveSegmentKey(const common::SecureBuffer& dayKey, std::uint64_t sequence) {
    common::SecureBuffer key(kKeyBytes);
    crypto_kdf_derive_from_key(key.data(), kKeyBytes, sequence, kSegmentContext, dayKey.data());
    return key;
}

KeyRatchet::KeyRatchet(std::filesystem::path path, std::int64_t day, common::UtcMicros writtenAt,
                       common::SecureBuffer key)
    : path_(std::move(path)), day_(day), writtenAt_(writtenAt), key_(std::move(key)) {}

std::optional<KeyRatchet> KeyRatchet::load(const std::filesystem::path& keyDir) {
    common::ensureSodium();
    const auto path = keyDir / kFileName;
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT) return std::nullopt;
        throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        throw common::FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    if (st.st_size != static_cast<off_t>(sizeof(KeyFile)))
        throw common::FileError(fmt::format("{}: day key file has {} bytes, expected {}", path.string(),
                                            st.st_size, sizeof(KeyFile)));
    // Read straight into guarded memory: the key never passes through an ordinary buffer.
    auto file = allocateKeyFile();
    std::size_t done = 0;
    auto* bytes = reinterpret_cast<std::uint8_t*>(file.get());
    while (done < sizeof(KeyFile)) {
        const ssize_t n = ::read(fd.get(), bytes + done, sizeof(KeyFile) - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw common::FileError(fmt::format("{}: short read of the day key file", path.string()));
        done += static_cast<std::size_t>(n);
    }
    std::uint8_t check[32];
    checksum(*file, check);
    if (std::memcmp(file->magic, kKeyFileMagic, sizeof kKeyFileMagic) != 0 ||
        file->version != kKeyFileVersion || sodium_memcmp(check, file->check, sizeof check) != 0)
        throw common::FileError(fmt::format("{}: not a valid day key file (bad magic, version or checksum)",
                                            path.string()));
    common::SecureBuffer key(kKeyBytes);
    std::memcpy(key.data(), file->key, kKeyBytes);
    return KeyRatchet(path, file->day, file->writtenAt, std::move(key));
}

KeyRatchet KeyRatchet::create(const std::filesystem::path& keyDir, std::int64_t day,
                              common::UtcMicros storeTime) {
    common::ensureSodium();
    common::SecureBuffer key(kKeyBytes);
    randombytes_buf(key.data(), kKeyBytes);
    KeyRatchet ratchet(keyDir / kFileName, day, storeTime, std::move(key));
    ratchet.store();
    return ratchet;
}

std::optional<common::SecureBuffer> KeyRatchet::dayKey(std::int64_t day) const {
    if (day < day_ || day - day_ > kMaxRatchetSteps) return std::nullopt;
    auto it = derived_.upper_bound(day);  // the nearest derived day at or below `day`
    std::int64_t from = day_;
    const common::SecureBuffer* base = &key_;
    if (it != derived_.begin()) {
        --it;
        from = it->first;
        base = &it->second;
    }
    common::SecureBuffer key(kKeyBytes);
    std::memcpy(key.data(), base->data(), kKeyBytes);
    for (std::int64_t d = from + 1; d <= day; ++d) key = nextDayKey(key, d);
    if (day != day_ && from != day) {
        common::SecureBuffer cached(kKeyBytes);
        std::memcpy(cached.data(), key.data(), kKeyBytes);
        derived_.insert_or_assign(day, std::move(cached));
    }
    return key;
}

std::optional<common::SecureBuffer> KeyRatchet::segmentKey(std::int64_t day, std::uint64_t sequence) const {
    auto dk = dayKey(day);
    if (!dk) return std::nullopt;
    return deriveSegmentKey(*dk, sequence);
}

void KeyRatchet::advanceTo(std::int64_t newDay, common::UtcMicros storeTime) {
    if (newDay <= day_) return;
    auto next = dayKey(newDay);
    if (!next) throw std::runtime_error(fmt::format("day key: cannot ratchet from day {} to {}", day_, newDay));
    const std::int64_t oldDay = day_;
    const common::UtcMicros oldWritten = writtenAt_;
    common::SecureBuffer old = std::exchange(key_, std::move(*next));
    day_ = newDay;
    writtenAt_ = storeTime;
    try {
        store();
    } catch (...) {
        // The file still holds the old key; keep memory consistent with it.
        key_ = std::move(old);
        day_ = oldDay;
        writtenAt_ = oldWritten;
        throw;
    }
    // Wipe every derived key of a shredded day (SecureBuffer frees with sodium_free, which zeroes).
    derived_.erase(derived_.begin(), derived_.lower_bound(newDay + 1));
}

void KeyRatchet::store() const {
    auto file = allocateKeyFile();
    std::memcpy(file->magic, kKeyFileMagic, sizeof kKeyFileMagic);
    file->version = kKeyFileVersion;
    file->day = day_;
    file->writtenAt = writtenAt_;
    std::memcpy(file->key, key_.data(), kKeyBytes);
    checksum(*file, file->check);
    // writeFileAtomic writes from this guarded buffer directly: tmp + fsync + rename + dir fsync.
    common::writeFileAtomic(path_, std::string_view(reinterpret_cast<const char*>(file.get()), sizeof(KeyFile)));
}

}  // namespace mimamori::store

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The one crypto layer under every module: libsodium's start-up, secrets in sodium memory,
// SHA-256 and hex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mimamori::common {

// Initialises libsodium once; throws std::runtime_error if it cannot. Thread-safe.
void ensureSodium();

// Secret bytes of a fixed size in sodium_malloc'd memory (guard pages, wiped by sodium_free):
// the one owner of key material, from the store's day and segment keys to policy's signing and
// box keys. Zero-filled on construction. Move-only, never copied, never printed. Not thread-safe.
class SecureBuffer {
public:
    SecureBuffer() = default;                 // empty: holds nothing
    explicit SecureBuffer(std::size_t size);  // throws std::bad_alloc
    SecureBuffer(SecureBuffer&& other) noexcept;
    SecureBuffer& operator=(SecureBuffer&& other) noexcept;
    SecureBuffer(const SecureBuffer&) = delete;
    SecureBuffer& operator=(const SecureBuffer&) = delete;
    ~SecureBuffer();

    [[nodiscard]] std::uint8_t* data() { return data_; }
    [[nodiscard]] const std::uint8_t* data() const { return data_; }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }
    [[nodiscard]] std::span<const std::uint8_t> bytes() const { return {data_, size_}; }

private:
    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

// SHA-256 of bytes held in memory (libsodium's crypto_hash_sha256): requests, mask files, key
// fingerprints. Pure; thread-safe. Not for footage: libsodium's portable SHA-256 measured 36-37
// MB/s against OpenSSL's (SHA-NI) 168-210 MB/s on this machine, so the extract's streaming hash
// of the MP4 stays on OpenSSL in retrieval/, which links it for TLS anyway.
[[nodiscard]] std::array<std::uint8_t, 32> sha256(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::string sha256Hex(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::string sha256Hex(std::string_view bytes);

// Lowercase hex (sodium_bin2hex).
[[nodiscard]] std::string toHex(std::span<const std::uint8_t> bytes);
// Either case (sodium_hex2bin). Returns false on odd length or a non-hex character.
[[nodiscard]] bool fromHex(std::string_view hex, std::string& out);

}  // namespace mimamori::common

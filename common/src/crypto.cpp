// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// libsodium behind the one crypto layer: initialisation, sodium memory, SHA-256, hex.
#include "mimamori/common/crypto.hpp"

#include <sodium.h>

#include <new>
#include <stdexcept>
#include <utility>

namespace mimamori::common {

void ensureSodium() {
    // sodium_init() is itself thread-safe; the static makes every later call free.
    static const int result = sodium_init();
    if (result < 0) throw std::runtime_error("libsodium failed to initialise");
}

SecureBuffer::SecureBuffer(std::size_t size) {
    ensureSodium();
    if (size == 0) return;
    data_ = static_cast<std::uint8_t*>(sodium_malloc(size));
    if (data_ == nullptr) throw std::bad_alloc();
    size_ = size;
    sodium_memzero(data_, size_);
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
    if (this != &other) {
        if (data_ != nullptr) sodium_free(data_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

SecureBuffer::~SecureBuffer() {
    if (data_ != nullptr) sodium_free(data_);  // wipes before unmapping
}

std::array<std::uint8_t, 32> sha256(std::span<const std::uint8_t> bytes) {
    static_assert(crypto_hash_sha256_BYTES == 32);
    ensureSodium();
    std::array<std::uint8_t, 32> digest{};
    crypto_hash_sha256(digest.data(), bytes.data(), bytes.size());
    return digest;
}

std::string sha256Hex(std::span<const std::uint8_t> bytes) { return toHex(sha256(bytes)); }

std::string sha256Hex(std::string_view bytes) {
    return sha256Hex(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

std::string toHex(std::span<const std::uint8_t> bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');  // sodium_bin2hex writes a terminating NUL
    sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
    out.pop_back();
    return out;
}

bool fromHex(std::string_view hex, std::string& out) {
    out.assign(hex.size() / 2, '\0');
    std::size_t length = 0;
    // No characters to ignore and no end pointer: anything but whole hex pairs is an error.
    if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(), hex.size(), nullptr,
                       &length, nullptr) != 0 ||
        length != out.size() || hex.size() % 2 != 0) {
        out.clear();
        return false;
    }
    return true;
}

}  // namespace mimamori::common

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The sealed extract container: a stream encrypted to one X25519 key (docs/extract-format.md).
#pragma once

#include "mimamori/policy/keys.hpp"

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace mimamori::retrieval {

// Container constants (docs/extract-format.md, section "Layout").
constexpr std::array<std::uint8_t, 8> kSealMagic = {'M', 'M', 'R', 'X', 'T', 'R', 'C', '1'};
constexpr std::size_t kSealChunkBytes = 64 * 1024;  // plaintext bytes per chunk (the last may be fewer)
constexpr std::size_t kSealedKeyBytes = crypto_box_SEALBYTES + crypto_secretstream_xchacha20poly1305_KEYBYTES;
constexpr std::size_t kSealHeaderBytes =
    kSealMagic.size() + 4 + kSealedKeyBytes + crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr std::size_t kSealChunkOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;
static_assert(kSealHeaderBytes == 116, "the container header layout is fixed by docs/extract-format.md");
static_assert(kSealChunkOverhead == 17, "the chunk layout is fixed by docs/extract-format.md");

// Sealed bytes for `plainBytes` of plaintext (header, chunks, their tags).
std::uint64_t sealedSize(std::uint64_t plainBytes);

// Bad, truncated or foreign sealed data, or a key that does not open it.
class SealError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using SealSink = std::function<void(std::span<const std::uint8_t>)>;

// What a container's header holds besides its constants, fixed when an extract is granted: the
// file key sealed to the recipient (crypto_box_seal is randomised) and the secretstream header
// (a random nonce). With these and the file key, Sealer produces the same container again.
struct SealHeader {
    std::array<std::uint8_t, kSealedKeyBytes> sealedKey{};
    std::array<std::uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES> streamHeader{};
    bool operator==(const SealHeader&) const = default;
};

// Seals `fileKey` (crypto_secretstream_xchacha20poly1305_KEYBYTES) to `recipient` and draws a
// fresh stream header. Throws SealError.
SealHeader makeSealHeader(const policy::BoxPublicKey& recipient, std::span<const std::uint8_t> fileKey);

// Encrypts a stream to a recipient: a fresh random file key (sodium_malloc'd), sealed with
// crypto_box_seal, then crypto_secretstream_xchacha20poly1305 in 64 KiB chunks.
// Output goes to `out` as it is produced. Not thread-safe (one writer).
class Sealer {
public:
    Sealer(const policy::BoxPublicKey& recipient, SealSink out);
    // Seals with a file key and header chosen earlier (makeSealHeader): the same plaintext gives
    // the same container, byte for byte. `fileKey` is copied into sodium memory.
    Sealer(std::span<const std::uint8_t> fileKey, const SealHeader& header, SealSink out);
    ~Sealer();
    Sealer(const Sealer&) = delete;
    Sealer& operator=(const Sealer&) = delete;

    void write(std::span<const std::uint8_t> plain);
    // Writes the last chunk (tagged final). No write() after this.
    void finish();
    std::uint64_t plainBytes() const { return plainBytes_; }
    std::uint64_t sealedBytes() const { return sealedBytes_; }

private:
    void start(std::span<const std::uint8_t> fileKey, const SealHeader& header);
    void emitChunk(unsigned char tag);

    SealSink out_;
    common::SecureBuffer state_;  // crypto_secretstream state: holds the file key
    std::vector<std::uint8_t> plain_;
    std::vector<std::uint8_t> cipher_;
    std::uint64_t plainBytes_ = 0;
    std::uint64_t sealedBytes_ = 0;
    bool finished_ = false;
};

// Decrypts a sealed stream fed in arbitrary pieces; plaintext goes to `out` chunk by chunk,
// each chunk only after it authenticated. Throws SealError at the first bad byte.
class Unsealer {
public:
    // The recipient's X25519 key pair (the secret stays in the caller's sodium_malloc'd memory).
    Unsealer(const policy::BoxPublicKey& recipientPublic, std::span<const std::uint8_t> recipientSecret,
             SealSink out);
    Unsealer(const Unsealer&) = delete;
    Unsealer& operator=(const Unsealer&) = delete;

    void write(std::span<const std::uint8_t> sealed);
    // Throws SealError unless the stream ended with its final chunk (truncation is detected).
    void finish();
    std::uint64_t plainBytes() const { return plainBytes_; }

private:
    void openHeader();
    void openChunkAt(std::size_t offset, std::size_t length);

    policy::BoxPublicKey public_;
    std::span<const std::uint8_t> secret_;
    SealSink out_;
    common::SecureBuffer state_;
    std::vector<std::uint8_t> pending_;
    std::vector<std::uint8_t> plain_;
    std::size_t chunkBytes_ = 0;
    bool headerDone_ = false;
    bool finalSeen_ = false;
    std::uint64_t plainBytes_ = 0;
};

// Streaming SHA-256 (OpenSSL's, which uses the CPU's SHA instructions: libsodium's portable
// one would be the slowest step of an extract), as lowercase hex at the end. Not thread-safe.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(std::span<const std::uint8_t> bytes);
    std::string hexDigest();

private:
    ::evp_md_ctx_st* ctx_ = nullptr;
};

std::string sha256Hex(std::span<const std::uint8_t> bytes);
std::string sha256Hex(std::string_view bytes);

}  // namespace mimamori::retrieval

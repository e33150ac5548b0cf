// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Sealing and unsealing the extract container (docs/extract-format.md).
#include "mimamori/retrieval/seal.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace mimamori::retrieval {
namespace {

using StreamState = crypto_secretstream_xchacha20poly1305_state;

void putU32Le(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t getU32Le(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
    return v;
}

}  // namespace

std::uint64_t sealedSize(std::uint64_t plainBytes) {
    // Every chunk is full except the final one, which holds 0..kSealChunkBytes bytes.
    const std::uint64_t chunks = plainBytes == 0 ? 1 : (plainBytes + kSealChunkBytes - 1) / kSealChunkBytes;
    return kSealHeaderBytes + plainBytes + chunks * kSealChunkOverhead;
}

SealHeader makeSealHeader(const policy::BoxPublicKey& recipient, std::span<const std::uint8_t> fileKey) {
    common::ensureSodium();
    if (fileKey.size() != crypto_secretstream_xchacha20poly1305_KEYBYTES) throw SealError("the file key has the wrong size");
    SealHeader h;
    if (crypto_box_seal(h.sealedKey.data(), fileKey.data(), fileKey.size(), recipient.data()) != 0)
        throw SealError("cannot seal the file key to the recipient's key");
    // init_push draws the random header; the state it leaves is rebuilt from the header later.
    common::SecureBuffer state(sizeof(StreamState));
    if (crypto_secretstream_xchacha20poly1305_init_push(reinterpret_cast<StreamState*>(state.data()),
                                                        h.streamHeader.data(), fileKey.data()) != 0)
        throw SealError("cannot start the encrypted stream");
    return h;
}

Sealer::Sealer(const policy::BoxPublicKey& recipient, SealSink out)
    : out_(std::move(out)), state_(sizeof(StreamState)) {
    common::ensureSodium();
    common::SecureBuffer fileKey(crypto_secretstream_xchacha20poly1305_KEYBYTES);
    crypto_secretstream_xchacha20poly1305_keygen(fileKey.data());
    start(fileKey.bytes(), makeSealHeader(recipient, fileKey.bytes()));
}

Sealer::Sealer(std::span<const std::uint8_t> fileKey, const SealHeader& header, SealSink out)
    : out_(std::move(out)), state_(sizeof(StreamState)) {
    common::ensureSodium();
    start(fileKey, header);
}

void Sealer::start(std::span<const std::uint8_t> fileKey, const SealHeader& header) {
    if (fileKey.size() != crypto_secretstream_xchacha20poly1305_KEYBYTES) throw SealError("the file key has the wrong size");
    std::vector<std::uint8_t> bytes(kSealHeaderBytes);
    std::uint8_t* p = bytes.data();
    std::memcpy(p, kSealMagic.data(), kSealMagic.size());
    p += kSealMagic.size();
    putU32Le(p, static_cast<std::uint32_t>(kSealChunkBytes));
    p += 4;
    std::memcpy(p, header.sealedKey.data(), header.sealedKey.size());
    p += header.sealedKey.size();
    std::memcpy(p, header.streamHeader.data(), header.streamHeader.size());
    // libsodium's init_pull derives exactly the state init_push left (HChaCha20 subkey, counter
    // 1, the header's nonce half), so pushing from it repeats the original stream.
    auto* state = reinterpret_cast<StreamState*>(state_.data());
    if (crypto_secretstream_xchacha20poly1305_init_pull(state, header.streamHeader.data(), fileKey.data()) != 0)
        throw SealError("cannot start the encrypted stream");
    out_(bytes);
    sealedBytes_ = bytes.size();
    plain_.reserve(kSealChunkBytes);
    cipher_.resize(kSealChunkBytes + kSealChunkOverhead);
}

Sealer::~Sealer() {
    if (!plain_.empty()) sodium_memzero(plain_.data(), plain_.size());
}

void Sealer::write(std::span<const std::uint8_t> plain) {
    if (finished_) throw SealError("write after finish");
    while (!plain.empty()) {
        // A full chunk is encrypted only once more data follows: the last chunk carries TAG_FINAL.
        if (plain_.size() == kSealChunkBytes) emitChunk(crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        const std::size_t take = std::min(plain.size(), kSealChunkBytes - plain_.size());
        plain_.insert(plain_.end(), plain.begin(), plain.begin() + static_cast<std::ptrdiff_t>(take));
        plain = plain.subspan(take);
        plainBytes_ += take;
    }
}

void Sealer::finish() {
    if (finished_) return;
    emitChunk(crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    finished_ = true;
}

void Sealer::emitChunk(unsigned char tag) {
    unsigned long long length = 0;
    auto* state = reinterpret_cast<StreamState*>(state_.data());
    crypto_secretstream_xchacha20poly1305_push(state, cipher_.data(), &length, plain_.data(), plain_.size(),
                                               nullptr, 0, tag);
    sodium_memzero(plain_.data(), plain_.size());
    plain_.clear();
    out_(std::span<const std::uint8_t>(cipher_.data(), static_cast<std::size_t>(length)));
    sealedBytes_ += length;
}

Unsealer::Unsealer(const policy::BoxPublicKey& recipientPublic, std::span<const std::uint8_t> recipientSecret,
                   SealSink out)
    : public_(recipientPublic), secret_(recipientSecret), out_(std::move(out)), state_(sizeof(StreamState)) {
    common::ensureSodium();
    if (secret_.size() != crypto_box_SECRETKEYBYTES) throw SealError("the recipient secret key has the wrong size");
}

void Unsealer::write(std::span<const std::uint8_t> sealed) {
    pending_.insert(pending_.end(), sealed.begin(), sealed.end());
    if (!headerDone_) {
        if (pending_.size() < kSealHeaderBytes) return;
        openHeader();
    }
    std::size_t used = 0;
    const std::size_t full = chunkBytes_ + kSealChunkOverhead;
    // Keep the last full-size piece back until more follows or finish(): it may be the final chunk.
    while (pending_.size() - used > full) {
        openChunkAt(used, full);
        used += full;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(used));
}

void Unsealer::finish() {
    if (!headerDone_) throw SealError(fmt::format("truncated: {} bytes, shorter than the header", pending_.size()));
    if (!finalSeen_) {
        if (pending_.size() < kSealChunkOverhead) throw SealError("truncated: the final chunk is missing");
        openChunkAt(0, pending_.size());
        pending_.clear();
    }
    if (!finalSeen_) throw SealError("truncated: the stream ends without its final chunk");
}

void Unsealer::openHeader() {
    const std::uint8_t* p = pending_.data();
    if (!std::equal(kSealMagic.begin(), kSealMagic.end(), p))
        throw SealError("not a mimamori sealed extract (bad magic)");
    p += kSealMagic.size();
    chunkBytes_ = getU32Le(p);
    if (chunkBytes_ == 0 || chunkBytes_ > 16 * 1024 * 1024)
        throw SealError(fmt::format("bad chunk size {}", chunkBytes_));
    p += 4;
    common::SecureBuffer fileKey(crypto_secretstream_xchacha20poly1305_KEYBYTES);
    if (crypto_box_seal_open(fileKey.data(), p, kSealedKeyBytes, public_.data(), secret_.data()) != 0)
        throw SealError("the file key does not open with this key (sealed to someone else, or altered)");
    p += kSealedKeyBytes;
    auto* state = reinterpret_cast<StreamState*>(state_.data());
    if (crypto_secretstream_xchacha20poly1305_init_pull(state, p, fileKey.data()) != 0)
        throw SealError("bad stream header");
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(kSealHeaderBytes));
    plain_.resize(chunkBytes_);
    headerDone_ = true;
}

void Unsealer::openChunkAt(std::size_t offset, std::size_t length) {
    if (finalSeen_) throw SealError("data after the final chunk");
    if (length < kSealChunkOverhead || length > chunkBytes_ + kSealChunkOverhead)
        throw SealError("truncated or malformed chunk");
    unsigned long long plainLength = 0;
    unsigned char tag = 0;
    auto* state = reinterpret_cast<StreamState*>(state_.data());
    if (crypto_secretstream_xchacha20poly1305_pull(state, plain_.data(), &plainLength, &tag,
                                                   pending_.data() + offset, length, nullptr, 0) != 0)
        throw SealError(fmt::format("chunk at plaintext offset {} fails authentication (altered or corrupt)",
                                    plainBytes_));
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) finalSeen_ = true;
    else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        throw SealError("unexpected chunk tag");
    out_(std::span<const std::uint8_t>(plain_.data(), static_cast<std::size_t>(plainLength)));
    plainBytes_ += plainLength;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
        EVP_MD_CTX_free(ctx_);
        throw SealError("OpenSSL cannot start a SHA-256 digest");
    }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(std::span<const std::uint8_t> bytes) {
    if (EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1) throw SealError("SHA-256 update failed");
}

std::string Sha256::hexDigest() {
    std::array<std::uint8_t, 32> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_, digest.data(), &length) != 1 || length != digest.size())
        throw SealError("SHA-256 final failed");
    return common::toHex(digest);
}

std::string sha256Hex(std::span<const std::uint8_t> bytes) {
    Sha256 h;
    h.update(bytes);
    return h.hexDigest();
}

std::string sha256Hex(std::string_view bytes) {
    return sha256Hex(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace mimamori::retrieval

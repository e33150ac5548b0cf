// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The sealed container: round trip, and every kind of damage detected.
#include "mimamori/retrieval/seal.hpp"

#include <doctest/doctest.h>

#include <sodium.h>

#include <vector>

using namespace mimamori;
using namespace mimamori::retrieval;

namespace {

std::vector<std::uint8_t> randomBytes(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    // An empty vector's data() may be null, which libsodium declares nonnull (UBSan's finding).
    if (!v.empty()) randombytes_buf(v.data(), v.size());
    return v;
}

std::vector<std::uint8_t> seal(const policy::SecretKey& key, const std::vector<std::uint8_t>& plain, std::size_t piece) {
    std::vector<std::uint8_t> out;
    Sealer sealer(key.boxPublic(), [&](std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); });
    for (std::size_t i = 0; i < plain.size(); i += piece)
        sealer.write(std::span<const std::uint8_t>(plain).subspan(i, std::min(piece, plain.size() - i)));
    sealer.finish();
    CHECK(sealer.sealedBytes() == out.size());
    return out;
}

std::vector<std::uint8_t> unseal(const policy::SecretKey& key, const std::vector<std::uint8_t>& sealed, std::size_t piece) {
    std::vector<std::uint8_t> out;
    Unsealer unsealer(key.boxPublic(), key.boxSecret(),
                      [&](std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); });
    for (std::size_t i = 0; i < sealed.size(); i += piece)
        unsealer.write(std::span<const std::uint8_t>(sealed).subspan(i, std::min(piece, sealed.size() - i)));
    unsealer.finish();
    return out;
}

}  // namespace

TEST_CASE("sealed extracts open with the recipient's key whatever the chunk boundaries") {
    const auto key = policy::generateKey(policy::Role::Police, "p");
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, kSealChunkBytes - 1, kSealChunkBytes, kSealChunkBytes + 1,
                             3 * kSealChunkBytes + 12345}) {
        CAPTURE(size);
        const auto plain = randomBytes(size);
        const auto sealed = seal(key, plain, 10000);
        CHECK(sealed.size() == sealedSize(size));
        CHECK(unseal(key, sealed, 7777) == plain);
        CHECK(unseal(key, sealed, sealed.size() + 1) == plain);
    }
}

TEST_CASE("a sealed extract does not open with another key, truncated, extended or altered") {
    const auto key = policy::generateKey(policy::Role::Police, "p");
    const auto other = policy::generateKey(policy::Role::Police, "q");
    const auto plain = randomBytes(2 * kSealChunkBytes + 100);
    const auto sealed = seal(key, plain, 65536);

    CHECK_THROWS_AS(unseal(other, sealed, 4096), SealError);
    // Cut at a chunk boundary: each remaining chunk authenticates, but the final tag is missing.
    const std::size_t boundary = kSealHeaderBytes + 2 * (kSealChunkBytes + kSealChunkOverhead);
    CHECK_THROWS_AS(unseal(key, std::vector<std::uint8_t>(sealed.begin(), sealed.begin() + boundary), 4096), SealError);
    CHECK_THROWS_AS(unseal(key, std::vector<std::uint8_t>(sealed.begin(), sealed.end() - 1), 4096), SealError);
    CHECK_THROWS_AS(unseal(key, std::vector<std::uint8_t>(sealed.begin(), sealed.begin() + 50), 4096), SealError);
    auto longer = sealed;
    longer.push_back(0);
    CHECK_THROWS_AS(unseal(key, longer, 4096), SealError);
    for (std::size_t at : {std::size_t{0}, std::size_t{20}, kSealHeaderBytes - 1, kSealHeaderBytes + 5, sealed.size() - 1}) {
        CAPTURE(at);
        auto bad = sealed;
        bad[at] ^= 0x01;
        CHECK_THROWS_AS(unseal(key, bad, 4096), SealError);
    }
}

TEST_CASE("sealing again with the grant's file key and header repeats the container byte for byte") {
    const policy::SecretKey police = policy::generateKey(policy::Role::Police, "hyogo-kakogawa-1");
    const std::vector<std::uint8_t> plain = randomBytes(3 * kSealChunkBytes + 1234);
    std::vector<std::uint8_t> fileKey(crypto_secretstream_xchacha20poly1305_KEYBYTES);
    crypto_secretstream_xchacha20poly1305_keygen(fileKey.data());
    const SealHeader header = makeSealHeader(police.boxPublic(), fileKey);
    auto sealWith = [&](std::size_t piece) {
        std::vector<std::uint8_t> out;
        Sealer sealer(fileKey, header, [&](std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); });
        for (std::size_t i = 0; i < plain.size(); i += piece)
            sealer.write(std::span<const std::uint8_t>(plain).subspan(i, std::min(piece, plain.size() - i)));
        sealer.finish();
        return out;
    };
    const std::vector<std::uint8_t> first = sealWith(65536);
    CHECK(sealWith(777) == first);  // however the plaintext arrives
    CHECK(first.size() == sealedSize(plain.size()));
    CHECK(unseal(police, first, 4096) == plain);
    // A fresh header (another grant) gives another container.
    const SealHeader other = makeSealHeader(police.boxPublic(), fileKey);
    CHECK_FALSE(other == header);
}

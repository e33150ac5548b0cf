// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Ed25519 signing keys (and X25519 receiving keys for police and city), their files, and the trust store.
// File formats: docs/keys.md. Secrets live only in sodium_malloc'd memory and are never logged.
#pragma once

#include "mimamori/common/crypto.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::policy {

// Who holds a key: police sign requests (and receive extracts), the city approves them (and
// receives the camera's audit log), the camera signs extract manifests and audit checkpoints.
enum class Role { Police, City, Camera };

[[nodiscard]] std::string_view roleName(Role role);  // "police", "city", "camera"
[[nodiscard]] std::optional<Role> parseRole(std::string_view text);

constexpr std::size_t kSignPublicKeyBytes = 32;  // Ed25519 (crypto_sign_PUBLICKEYBYTES)
constexpr std::size_t kSignatureBytes = 64;      // Ed25519 (crypto_sign_BYTES)
constexpr std::size_t kBoxPublicKeyBytes = 32;   // X25519 (crypto_box_PUBLICKEYBYTES)
constexpr std::size_t kBoxSecretKeyBytes = 32;   // X25519 (crypto_box_SECRETKEYBYTES)

using SignPublicKey = std::array<std::uint8_t, kSignPublicKeyBytes>;
using BoxPublicKey = std::array<std::uint8_t, kBoxPublicKeyBytes>;
using Signature = std::array<std::uint8_t, kSignatureBytes>;
// 16 lowercase hex characters: the first 8 bytes of BLAKE2b-256 (unkeyed) of the Ed25519 public key.
using KeyId = std::string;

// Thrown for unreadable or malformed key and trust files; the message names the file and the line.
class KeyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A public key as its file (NAME.pub) or the trust file holds it. Plain value, copyable.
struct PublicKey {
    Role role = Role::Police;
    std::string name;                      // 1..64 printable characters, no whitespace at the ends
    SignPublicKey signKey{};               // Ed25519
    // X25519: always for police; for city keys made since city keys have one (older city key
    // files load without it, and cannot receive sealed answers); never for camera keys.
    std::optional<BoxPublicKey> boxKey;
    [[nodiscard]] KeyId keyId() const;
};

// A secret key (NAME.secret): the Ed25519 seed, and with boxKey also the X25519 secret key,
// in sodium_malloc'd memory. Move-only: a copy of a secret is never made by accident.
// Immutable once made, so several threads may sign with one key at the same time.
class SecretKey {
public:
    SecretKey(PublicKey publicKey, common::SecureBuffer signSecret, common::SecureBuffer boxSecret);
    SecretKey(SecretKey&&) noexcept = default;
    SecretKey& operator=(SecretKey&&) noexcept = default;
    SecretKey(const SecretKey&) = delete;
    SecretKey& operator=(const SecretKey&) = delete;

    [[nodiscard]] const PublicKey& publicKey() const { return public_; }
    [[nodiscard]] Role role() const { return public_.role; }
    [[nodiscard]] const std::string& name() const { return public_.name; }
    [[nodiscard]] KeyId keyId() const { return public_.keyId(); }

    // libsodium's 64-byte Ed25519 secret key (seed || public key), for crypto_sign_detached.
    [[nodiscard]] std::span<const std::uint8_t> signSecret() const { return signSecret_.bytes(); }
    // The X25519 secret key (32 bytes) for crypto_box_seal_open; throws KeyError (saying why)
    // for a camera key or an older city key without one.
    [[nodiscard]] std::span<const std::uint8_t> boxSecret() const;
    // The X25519 public key; throws KeyError as boxSecret() does.
    [[nodiscard]] const BoxPublicKey& boxPublic() const;

private:
    PublicKey public_;
    common::SecureBuffer signSecret_;  // 64 bytes
    common::SecureBuffer boxSecret_;   // 32 bytes when public_.boxKey is set, empty otherwise
};

// Fresh random keys. `name` must be 1..64 characters of [A-Za-z0-9._-] (it becomes a file name).
// Throws KeyError for a bad name.
[[nodiscard]] SecretKey generateKey(Role role, std::string_view name);

// Writes DIR/NAME.secret (mode 0600, atomically) and DIR/NAME.pub (0644). Refuses (KeyError)
// to overwrite an existing secret file: losing a key is worse than a failed command.
void writeKeyFiles(const SecretKey& key, const std::filesystem::path& dir);

// Text forms (docs/keys.md). The secret text is returned in a SecureBuffer, never a std::string.
[[nodiscard]] std::string formatPublicKey(const PublicKey& key);
[[nodiscard]] common::SecureBuffer formatSecretKey(const SecretKey& key);
// `what` names the source in errors ("police.pub"). Throw KeyError.
[[nodiscard]] PublicKey parsePublicKey(std::string_view text, std::string_view what);
[[nodiscard]] SecretKey parseSecretKey(std::span<const std::uint8_t> text, std::string_view what);

// Throw KeyError (or common::FileError when unreadable). loadSecretKey also refuses a secret
// file readable by group or others, like ssh does.
[[nodiscard]] SecretKey loadSecretKey(const std::filesystem::path& path);
[[nodiscard]] PublicKey loadPublicKey(const std::filesystem::path& path);

[[nodiscard]] Signature sign(const SecretKey& key, std::span<const std::uint8_t> message);
[[nodiscard]] Signature sign(const SecretKey& key, std::string_view message);
[[nodiscard]] bool verify(const SignPublicKey& key, std::span<const std::uint8_t> message, const Signature& signature);
[[nodiscard]] bool verify(const SignPublicKey& key, std::string_view message, const Signature& signature);

[[nodiscard]] KeyId keyIdOf(const SignPublicKey& key);

// Standard base64 with padding (RFC 4648 section 4), as used in every file format here.
[[nodiscard]] std::string toBase64(std::span<const std::uint8_t> bytes);
// False on any character outside the alphabet, bad padding, or whitespace.
[[nodiscard]] bool fromBase64(std::string_view text, std::vector<std::uint8_t>& out);

// BLAKE2b-256 (unkeyed) as 64 lowercase hex characters.
[[nodiscard]] std::string blake2b256Hex(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::string blake2b256Hex(std::string_view bytes);

// The camera's list of accepted police and city keys (JSON, docs/keys.md). Immutable after
// load, so concurrent lookups are safe.
struct TrustedKey {
    Role role = Role::Police;
    std::string name;
    SignPublicKey signKey{};
    KeyId keyId;
};

class TrustStore {
public:
    TrustStore() = default;
    explicit TrustStore(std::vector<TrustedKey> keys);  // throws KeyError on a duplicate key id

    // Throws KeyError naming the file and the entry, or common::FileError when unreadable.
    [[nodiscard]] static TrustStore load(const std::filesystem::path& path);
    [[nodiscard]] static TrustStore parse(std::string_view json, std::string_view what);

    // The key with this id, or nullptr. The pointer lives as long as the store.
    [[nodiscard]] const TrustedKey* find(const KeyId& id) const;
    [[nodiscard]] const std::vector<TrustedKey>& keys() const { return keys_; }

    // Adds a police or city public key (KeyError for camera keys or a duplicate id).
    void add(const PublicKey& key);
    [[nodiscard]] std::string toJson() const;

private:
    std::vector<TrustedKey> keys_;
};

}  // namespace mimamori::policy

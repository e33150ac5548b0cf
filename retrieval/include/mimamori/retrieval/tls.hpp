// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's TLS key and the record, signed by the camera's Ed25519 key, that pins it (docs/keys.md).
#pragma once

#include "mimamori/policy/keys.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mimamori::retrieval {

// Thrown for unreadable, malformed or mismatched TLS key and certificate files; the message
// names the file.
class TlsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// SHA-256 of a certificate's DER-encoded SubjectPublicKeyInfo: what the record pins.
using SpkiHash = std::array<std::uint8_t, 32>;

// Files beside the camera's NAME.secret (docs/keys.md).
inline constexpr const char* kTlsKeySuffix = ".tls.key";   // PKCS#8 PEM, mode 0600
inline constexpr const char* kTlsCertSuffix = ".tls.crt";  // X.509 PEM, self-signed, mode 0644

// The route a camera serves its record on, before any request.
inline constexpr const char* kTlsKeyRecordPath = "/v1/tls-key";
// A record is at most this long; a longer answer is refused unread.
inline constexpr std::size_t kMaxTlsKeyRecordBytes = 1024;

// Makes a fresh ECDSA P-256 key and a self-signed certificate for it (subject CN=NAME) and writes
// DIR/NAME.tls.key (0600) and DIR/NAME.tls.crt (0644), each created anew (never through a
// planted file). Refuses (TlsError) to overwrite an existing NAME.tls.key. Throws
// common::FileError when a file cannot be written.
void writeTlsIdentity(const std::filesystem::path& dir, std::string_view name);

// The SPKI hash of the (first) certificate in a PEM file. Throws TlsError naming the file.
SpkiHash spkiSha256OfCertFile(const std::filesystem::path& certPem);

// What a camera needs to serve TLS: checks that `keyPem` is a private key file of this user
// with mode 0600 and that it belongs to the certificate in `certPem`, and returns the record
// for that certificate signed by `camera`. Throws TlsError naming the file.
std::string tlsKeyRecordFor(const std::filesystem::path& certPem, const std::filesystem::path& keyPem,
                            const policy::SecretKey& camera);

// The record's text (docs/keys.md, "The TLS key record"), signed by `camera`.
std::string makeTlsKeyRecord(const policy::SecretKey& camera, const SpkiHash& spki);

struct TlsKeyRecord {
    std::string camera;        // the camera key's name
    policy::KeyId keyId;       // the camera key's id
    SpkiHash spki{};
};

// Parses `text` strictly and checks it was signed by `camera`. On failure returns nullopt and
// sets `error` to one line (safe to print: it quotes nothing from `text`). Pure; thread-safe.
std::optional<TlsKeyRecord> verifyTlsKeyRecord(std::string_view text, const policy::PublicKey& camera,
                                               std::string& error);

std::string spkiHex(const SpkiHash& spki);

}  // namespace mimamori::retrieval

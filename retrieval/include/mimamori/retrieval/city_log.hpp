// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The city log route's formats and its client (docs/city-log-route.md): the city-signed body,
// the camera-signed answer sealed to the city key, and one collection over HTTP(S).
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::retrieval {

inline constexpr std::string_view kCityLogPath = "/v1/city/log";
inline constexpr std::size_t kMaxCityLogBodyBytes = 1024;
inline constexpr common::UtcMicros kMaxCityLogLifetime = 600 * common::kMicrosPerSecond;
inline constexpr std::size_t kMaxCityLogLinesBytes = std::size_t{4} << 20;   // per answer
inline constexpr std::size_t kMaxCityLogHealthBytes = std::size_t{1} << 20;
inline constexpr std::size_t kCityLogNonceBytes = 16;

// A parsed request body (§1). `signedBytes` are lines 1-8, what the signature covers.
struct CityLogRequest {
    std::string cameraId;
    std::uint64_t afterSeq = 0;
    policy::KeyId keyId;
    policy::BoxPublicKey recipient{};
    common::UtcMicros issuedAt = 0;
    common::UtcMicros expiresAt = 0;
    std::array<std::uint8_t, kCityLogNonceBytes> nonce{};
    policy::Signature signature{};
    std::string signedBytes;
};

// Parses a body strictly (§1). On failure returns nothing and sets `error` to one line that
// quotes nothing from the body.
[[nodiscard]] std::optional<CityLogRequest> parseCityLogRequest(std::string_view body, std::string& error);

// A body signed by `cityKey` for `cameraId`, issued at `now` (whole second), valid 10 minutes,
// sealed answers to the key's X25519 part. Throws policy::KeyError for a key that is not a city
// key or has no X25519 part.
[[nodiscard]] std::string buildCityLogRequest(const policy::SecretKey& cityKey, std::string_view cameraId,
                                              std::uint64_t afterSeq, common::UtcMicros now);

// What an answer carries (§4).
struct CityLogAnswer {
    std::string cameraId;
    policy::KeyId cameraKeyId;
    std::string requestSha256;
    std::uint64_t afterSeq = 0;
    std::uint64_t throughSeq = 0;
    policy::AuditCheckpoint checkpoint;
    bool complete = false;
    std::string health;               // health.json's bytes; empty when the camera sent none
    std::vector<std::string> lines;   // the audit lines after afterSeq, exact bytes, without '\n'
};

// The plaintext of an answer, signed by the camera key (§4).
[[nodiscard]] std::string formatCityLogAnswer(const CityLogAnswer& answer, const policy::SecretKey& cameraKey);

// Opens a sealed answer with the city key and checks it (§4 "What the collector checks")
// against the camera's public key and the request body it answers. Throws FetchError.
[[nodiscard]] CityLogAnswer openCityLogAnswer(std::span<const std::uint8_t> sealed, const policy::SecretKey& cityKey,
                                              const policy::PublicKey& camera, std::string_view requestBody);

struct CityLogClientOptions {
    // Allows an http:// URL (tests only). Otherwise https://, with the camera's TLS key pinned
    // through the record its camera key signed (docs/keys.md) before the body is sent.
    bool insecureHttp = false;
    int connectTimeoutSeconds = 10;   // for the TCP connection, and again for the TLS handshake
    // The whole collection, from the call to the answer's last byte (the TLS key record, the
    // body, the answer): a camera that sends a byte just before each read would time out is
    // cut off at this too. Also the timeout of each read and write.
    int exchangeTimeoutSeconds = 120;
};

// One collection: builds and signs the body, POSTs it to `cameraUrl`/v1/city/log, opens and
// checks the answer. Ask again with afterSeq = answer.throughSeq while !answer.complete.
// Returns or throws within exchangeTimeoutSeconds, or at most two connectTimeoutSeconds later
// when that runs out while a connection is being made (the connection attempt is not cut).
// Throws FetchError (httpStatus() and code() carry a refusal, e.g. 403 "replayed_nonce"),
// policy::KeyError. Thread-safe: collections of different cameras may run in parallel.
// `cameraId` is the camera's id (its config's camera_id), `camera` its public key file's key.
[[nodiscard]] CityLogAnswer collectCityLog(const std::string& cameraUrl, const std::string& cameraId,
                                           const policy::PublicKey& camera,
                                           const policy::SecretKey& cityKey, std::uint64_t afterSeq,
                                           const common::Clock& clock, const CityLogClientOptions& options = {});

}  // namespace mimamori::retrieval

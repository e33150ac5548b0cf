// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The extract manifest: what was extracted, for whom and from what, signed by the camera.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::retrieval {

using common::UtcMicros;

constexpr std::string_view kManifestFormat = "mimamori-extract-manifest-v1";

// Footage the ring holds inside the requested range but that could not be read (a damaged
// segment, or its damaged tail): left out of the MP4, which shows a gap there.
struct FootageGap {
    std::uint64_t segment = 0;  // the segment's sequence number in the ring
    UtcMicros from = 0;         // [from, to): the part left out, within the requested range
    UtcMicros to = 0;
    std::string reason;         // what was wrong, with the byte offset where known
    bool operator==(const FootageGap&) const = default;
};

// Field by field in docs/extract-format.md. Hashes are lowercase hex SHA-256.
struct Manifest {
    std::string requestId;
    std::string cameraId;
    std::string requestSha256;   // of the signed request file exactly as the camera received it
    std::string ground;          // the legal ground word of the request
    std::string reference;       // the case reference of the request
    UtcMicros requestedFrom = 0;
    UtcMicros requestedTo = 0;
    UtcMicros actualFrom = 0;    // the MP4 covers [actualFrom, actualTo)
    UtcMicros actualTo = 0;
    std::uint64_t frames = 0;
    std::uint64_t timestampRepairs = 0;  // frames whose recorded decode/presentation time was moved
    std::vector<FootageGap> gaps;        // damaged footage left out, in time order
    std::string mp4Sha256;
    std::uint64_t mp4Bytes = 0;
    std::uint64_t sealedBytes = 0;  // size of the sealed container as served (its chunks authenticate it)
    std::string recipient;       // base64 X25519 public key the container is sealed to
    std::string maskSha256;      // of the mask file in force when the footage was extracted
    std::string software;        // "mimamori 0.1.0"
    UtcMicros createdAt = 0;
    std::string cameraKeyId;     // key id of the camera's signing key
};

// Pretty-printed JSON ending in '\n'. These exact bytes are what the camera signs.
std::string serializeManifest(const Manifest& manifest);

// Strict: every field present with the right type and format. Never throws.
struct ParsedManifest {
    std::optional<Manifest> manifest;
    std::string error;
};
ParsedManifest parseManifest(std::string_view text);

// The signature file next to manifest.json: the base64 Ed25519 signature and '\n'.
std::string formatSignature(const policy::Signature& signature);
std::optional<policy::Signature> parseSignature(std::string_view text);

// What GET /v1/extracts/{id}/manifest answers: {"manifest": TEXT, "signature": BASE64}.
std::string wrapSignedManifest(std::string_view manifestText, const policy::Signature& signature);
// Returns false (and sets `error`) for anything but that shape.
bool unwrapSignedManifest(std::string_view body, std::string& manifestText, policy::Signature& signature,
                          std::string& error);

}  // namespace mimamori::retrieval

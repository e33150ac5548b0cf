// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The review still (docs/review-still.md): where the endpoint takes it from, its signed
// manifest, and the city's side that fetches, checks and unseals it.
#pragma once

#include "mimamori/common/result.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/decision.hpp"
#include "mimamori/policy/keys.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::retrieval {

// One frame as PNG, and the masks in force when it passed the mask stage.
struct Still {
    std::vector<std::uint8_t> png;
    int width = 0;
    int height = 0;
    std::string maskSha256;
};

// Where the endpoint takes review stills from. Implemented outside retrieval/ (the daemon
// adapts the recorder's still tap), so retrieval never depends on capture code.
class StillSource {
public:
    virtual ~StillSource() = default;
    // The next frame in `form`, or one error line when none came within `timeout`. Called on
    // the HTTP server's threads, several at once.
    [[nodiscard]] virtual common::Result<Still> nextStill(policy::StillForm form,
                                                          std::chrono::milliseconds timeout) = 0;
};

constexpr std::string_view kStillManifestFormat = "mimamori-still-manifest-v1";

// Field by field in docs/review-still.md, "The manifest". Hashes are lowercase hex SHA-256.
struct StillManifest {
    std::string requestId;
    std::string cameraId;
    std::string requestSha256;
    std::string ground;
    policy::StillForm form = policy::StillForm::Masked;
    common::UtcMicros takenAt = 0;
    std::uint64_t width = 0;
    std::uint64_t height = 0;
    std::string maskSha256;
    std::string pngSha256;
    std::uint64_t pngBytes = 0;
    std::uint64_t sealedBytes = 0;
    std::string recipient;  // base64 X25519 public key
    std::string software;
    std::string cameraKeyId;
    bool operator==(const StillManifest&) const = default;
};

// Pretty-printed JSON ending in '\n': the bytes the camera signs.
[[nodiscard]] std::string serializeStillManifest(const StillManifest& manifest);
// Strict (every member, its type and form, nothing else). Never throws.
struct ParsedStillManifest {
    std::optional<StillManifest> manifest;
    std::string error;
};
[[nodiscard]] ParsedStillManifest parseStillManifest(std::string_view text);

// Files `mimamori fetch --still` writes in its output directory.
inline constexpr const char* kStillFile = "still.png";
inline constexpr const char* kStillManifestFile = "still-manifest.json";
inline constexpr const char* kStillSignatureFile = "still-manifest.sig";

struct StillFetchOptions {
    std::filesystem::path requestFile;    // the approved still request
    std::string cameraUrl;                // "https://10.0.0.7:8750"
    std::filesystem::path cameraKeyFile;  // the camera's public key (checks the TLS record and the manifest)
    std::filesystem::path outDir;
    policy::StillForm form = policy::StillForm::Masked;
    bool insecureHttp = false;            // as FetchOptions::insecureHttp (tests only)
};

// Posts the request once to /v1/stills, checks the camera's signature, that the manifest is
// for this request, form and recipient, unseals with the recipient's X25519 key pair (the
// secret stays in the caller's sodium memory), checks the PNG's hash and size, and writes
// still.png, still-manifest.json and still-manifest.sig in outDir (created 0700).
// Throws FetchError, policy::KeyError, common::FileError.
StillManifest fetchStill(const StillFetchOptions& options, const policy::BoxPublicKey& recipientPublic,
                         std::span<const std::uint8_t> recipientSecret);

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The police side: submit an approved request, download (resuming), unseal and verify an extract.
#pragma once

#include "mimamori/policy/keys.hpp"
#include "mimamori/retrieval/manifest.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace mimamori::retrieval {

// The fetch failed: refused by the camera (httpStatus and the camera's reason code), the
// network dropped (run again to resume), or what arrived does not verify. The message quotes
// what the camera said, passed through common::escapeControls, so what() is safe to print;
// code() is the camera's code as sent (compare it, do not print it).
class FetchError : public std::runtime_error {
public:
    FetchError(const std::string& message, int httpStatus = 0, std::string code = {});
    int httpStatus() const { return httpStatus_; }
    const std::string& code() const { return code_; }  // e.g. "replayed_nonce", "busy"

private:
    int httpStatus_;
    std::string code_;
};

// Files in the output directory (docs/extract-format.md, "On the police side").
inline constexpr const char* kClipFile = "clip.mp4";
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kSignatureFile = "manifest.sig";
inline constexpr const char* kSealedFile = "extract.sealed";
inline constexpr const char* kPartialFile = "extract.sealed.part";
inline constexpr const char* kStateFile = "fetch-state.json";

struct FetchOptions {
    std::filesystem::path requestFile;     // the approved, signed request
    std::string cameraUrl;                 // "https://10.0.0.7:8750"
    std::filesystem::path policeKeyFile;   // the police secret key (X25519 part opens the extract)
    std::filesystem::path cameraKeyFile;   // the camera's public key (checks the manifest)
    std::filesystem::path outDir;
    // Called as bytes arrive (done, total). Returning false stops the download, leaving the
    // partial file for the next run to resume.
    std::function<bool(std::uint64_t done, std::uint64_t total)> onProgress;
    // Called with one-line notes ("waiting for the camera to build the extract").
    std::function<void(const std::string&)> onNote;
    int maxWaitSeconds = 3600;             // for the camera to build the extract
    // Allows an http:// cameraUrl (tests only: the request would cross the air in clear).
    // Otherwise the URL must be https://, and the camera's TLS key is pinned through the record
    // the camera key signed (docs/keys.md) before any request byte is sent.
    bool insecureHttp = false;
};

struct FetchResult {
    Manifest manifest;
    std::filesystem::path clip;
    bool resumed = false;                  // the download continued a partial file
};

// Over https://, first checks the camera's TLS key against its signed record (FetchError when it
// is not the camera of cameraKeyFile). Submits (once: the extract id is kept in outDir/fetch-state.json, so a rerun resumes rather
// than replaying the request), waits, downloads with HTTP Range, unseals, verifies the
// camera's signature and every hash, and writes clip.mp4, manifest.json, manifest.sig.
// Throws FetchError, policy::KeyError, common::FileError.
FetchResult fetchExtract(const FetchOptions& options);

struct VerifyResult {
    bool ok = false;
    std::string reason;                    // one line naming the file when !ok
    std::optional<Manifest> manifest;      // when the manifest parsed and its signature holds
};

// Re-checks a fetched directory: the manifest's signature by this camera key, clip.mp4's size
// and SHA-256 (and extract.sealed's size, when kept). Never throws for bad content.
VerifyResult verifyExtractDir(const std::filesystem::path& dir, const policy::SignPublicKey& cameraKey);

// Unseals `sealedFile` into `outFile` with the police key, returning the plaintext's SHA-256
// and size. Throws SealError / common::FileError. (Also the client's decrypt rate benchmark.)
struct UnsealResult {
    std::string sha256;
    std::uint64_t bytes = 0;
};
UnsealResult unsealFile(const std::filesystem::path& sealedFile, const std::filesystem::path& outFile,
                        const policy::SecretKey& policeKey);

}  // namespace mimamori::retrieval

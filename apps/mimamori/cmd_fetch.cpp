// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori fetch` and `mimamori verify`: police download an approved extract and re-check it later.
#include "cli.hpp"

#include "mimamori/common/text.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/still.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace mimamori::cli {
namespace {

// A one-line progress bar redrawn in place, at most five times a second, with the speed and
// the time left over an LTE link (measured from the first byte of this run: a resumed download
// starts counting where it resumed).
class ProgressBar {
public:
    bool update(std::uint64_t done, std::uint64_t total) {
        const auto now = std::chrono::steady_clock::now();
        if (!started_) {
            started_ = true;
            start_ = now;
            startDone_ = done;
        }
        if (done < total && now - last_ < std::chrono::milliseconds(200)) return true;
        last_ = now;
        const double fraction = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
        const int width = 30;
        const int filled = static_cast<int>(fraction * width);
        const double seconds = std::chrono::duration<double>(now - start_).count();
        const double rate = seconds > 0 ? static_cast<double>(done - startDone_) / seconds : 0;  // bytes/s
        std::string pace = "  -- MB/s";
        if (rate > 0) {
            const auto left = static_cast<std::uint64_t>(static_cast<double>(total - done) / rate + 0.5);
            pace = fmt::format("  {:.1f} MB/s, {}:{:02}:{:02} left", rate / 1e6, left / 3600, left / 60 % 60, left % 60);
        }
        fmt::print(stderr, "\r[{}{}] {:5.1f}%  {:.1f} / {:.1f} MB{}", std::string(static_cast<std::size_t>(filled), '#'),
                   std::string(static_cast<std::size_t>(width - filled), ' '), fraction * 100.0,
                   static_cast<double>(done) / 1e6, static_cast<double>(total) / 1e6, pace);
        if (done >= total) fmt::print(stderr, "\n");
        return true;
    }

private:
    std::chrono::steady_clock::time_point last_{};
    std::chrono::steady_clock::time_point start_{};
    std::uint64_t startDone_ = 0;
    bool started_ = false;
};

// `fetch --still FORM`: one review still for an approved still request (docs/review-still.md).
int runFetchStill(const Args& args, const std::string& form) {
    retrieval::StillFetchOptions options;
    options.requestFile = args.positionals()[0];
    options.cameraUrl = args.required("--camera-url");
    options.cameraKeyFile = args.required("--camera-key");
    options.outDir = args.required("--out");
    options.insecureHttp = args.flag("--insecure-http");
    if (form == "masked") options.form = policy::StillForm::Masked;
    else if (form == "unmasked") options.form = policy::StillForm::Unmasked;
    else throw UsageError("--still takes masked or unmasked");
    const policy::SecretKey key = policy::loadSecretKey(args.required("--key"));
    try {
        const retrieval::StillManifest m = retrieval::fetchStill(options, key.boxPublic(), key.boxSecret());
        fmt::print("{}: verified {} still of camera {} for request {}\n",
                   (options.outDir / retrieval::kStillFile).string(), policy::stillFormName(m.form),
                   common::escapeControls(m.cameraId), common::escapeControls(m.requestId));
        fmt::print("  taken at  {}\n  size      {}x{}\n  masks     {}\n  manifest  {} (+ {})\n",
                   common::formatUtcAndJst(m.takenAt), m.width, m.height, m.maskSha256,
                   (options.outDir / retrieval::kStillManifestFile).string(), retrieval::kStillSignatureFile);
        return 0;
    } catch (const retrieval::FetchError& e) {
        fmt::print(stderr, "mimamori fetch: {}\n", e.what());
        return 1;
    }
}

int runFetch(const Args& args) {
    args.expectPositionals(1, "FILE");
    ignoreBrokenConnections();
    if (const auto form = args.option("--still")) return runFetchStill(args, *form);
    retrieval::FetchOptions options;
    options.requestFile = args.positionals()[0];
    options.cameraUrl = args.required("--camera-url");
    options.policeKeyFile = args.required("--key");
    options.cameraKeyFile = args.required("--camera-key");
    options.outDir = args.required("--out");
    options.insecureHttp = args.flag("--insecure-http");
    ProgressBar bar;
    if (isatty(STDERR_FILENO)) options.onProgress = [&](std::uint64_t d, std::uint64_t t) { return bar.update(d, t); };
    options.onNote = [](const std::string& note) { fmt::print(stderr, "mimamori fetch: {}\n", note); };
    try {
        const retrieval::FetchResult r = retrieval::fetchExtract(options);
        const retrieval::Manifest& m = r.manifest;
        fmt::print("{}: verified clip of camera {} for request {}\n", r.clip.string(),
                   common::escapeControls(m.cameraId), common::escapeControls(m.requestId));
        fmt::print("  requested {} .. {}\n  actual    {} .. {} ({} frames)\n  sha256    {} ({} bytes)\n",
                   common::formatUtcAndJst(m.requestedFrom), common::formatUtcAndJst(m.requestedTo),
                   common::formatUtcAndJst(m.actualFrom), common::formatUtcAndJst(m.actualTo), m.frames, m.mp4Sha256,
                   m.mp4Bytes);
        fmt::print("  manifest  {} (+ {})\n", (options.outDir / retrieval::kManifestFile).string(),
                   retrieval::kSignatureFile);
        return 0;
    } catch (const retrieval::FetchError& e) {
        fmt::print(stderr, "mimamori fetch: {}\n", e.what());
        return 1;
    }
}

int runVerify(const Args& args) {
    args.expectPositionals(1, "DIR");
    const std::filesystem::path dir = args.positionals()[0];
    const policy::PublicKey camera = policy::loadPublicKey(args.required("--camera-key"));
    if (camera.role != policy::Role::Camera)
        throw UsageError(fmt::format("{} is a {} key, not a camera key", args.required("--camera-key"),
                                     policy::roleName(camera.role)));
    const retrieval::VerifyResult r = retrieval::verifyExtractDir(dir, camera.signKey);
    if (!r.ok) {
        fmt::print(stderr, "mimamori verify: FAILED: {}\n", r.reason);
        return 1;
    }
    const retrieval::Manifest& m = *r.manifest;
    fmt::print("{}: OK: clip.mp4 is the extract camera {} ({}) signed for request {}\n", dir.string(), m.cameraId,
               camera.name, m.requestId);
    fmt::print("  actual range {} .. {}, {} frames, sha256 {}\n", common::formatUtcAndJst(m.actualFrom),
               common::formatUtcAndJst(m.actualTo), m.frames, m.mp4Sha256);
    return 0;
}

const Registrar fetchCommand({
    "",
    "fetch",
    "submit an approved request to a camera and download the sealed clip",
    "usage: mimamori fetch FILE --camera-url URL --key POLICE_SECRET --camera-key CAMERA_PUB --out DIR\n"
    "                      [--still masked|unmasked] [--insecure-http]\n\n"
    "Connects to the camera at URL (https://HOST:PORT) and checks that its TLS key is the one\n"
    "the camera key CAMERA_PUB signed (docs/keys.md); any other camera, or anyone else on the\n"
    "path, is refused before a byte of the request is sent. Then submits the approved request\n"
    "FILE, waits while the\n"
    "camera builds the extract, downloads it (on a terminal: progress, speed, time left), decrypts it with the\n"
    "police key, checks the camera's signature and every hash, and writes DIR/clip.mp4,\n"
    "DIR/manifest.json and DIR/manifest.sig (DIR/extract.sealed keeps the bytes as received).\n"
    "An interrupted download resumes where it stopped when the same command is run again; the\n"
    "request is submitted only once (DIR/fetch-state.json remembers the extract).\n"
    "DIR is created with mode 0700; files planted in it by others are never written through.\n"
    "With --still, FILE is an approved still request (docs/review-still.md), --key the city key\n"
    "that made it, and the camera answers\n"
    "with one current frame: masked (as recorded) or unmasked (mask-review requests only). It is\n"
    "decrypted with the city key's X25519 part and checked against the camera-signed manifest;\n"
    "DIR/still.png (for mimamori mask edit --still), DIR/still-manifest.json and\n"
    "DIR/still-manifest.sig are written.\n"
    "  --insecure-http  allow an http:// URL: no TLS, the request readable on the path (tests only)\n"
    "\nexit status: 0 a verified clip (or still), 1 refused or anything failed to verify, 2 bad usage\n",
    {"--camera-url", "--key", "--camera-key", "--out", "--still"},
    {"--insecure-http"},
    runFetch,
});

const Registrar verifyCommand({
    "",
    "verify",
    "re-check a fetched clip against the camera's signed manifest",
    "usage: mimamori verify DIR --camera-key CAMERA_PUB\n\n"
    "Checks that DIR/manifest.json carries the camera's valid signature (DIR/manifest.sig), that\n"
    "DIR/clip.mp4 matches the SHA-256 and size it states, and DIR/extract.sealed (if kept) its size.\n"
    "\nexit status: 0 everything holds, 1 otherwise (the first problem is printed), 2 bad usage\n",
    {"--camera-key"},
    {},
    runVerify,
});

}  // namespace
}  // namespace mimamori::cli

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Writes the fuzz seeds that need the real writers and the fixed keys of fuzz_support.hpp:
// signed requests, key and trust files, an audit log with a signed checkpoint, a signed
// manifest, and encrypted segments holding a TS file. Usage (README.md):
//   fuzz_make_seeds OUT_DIR TS_FILE
#include "fuzz_support.hpp"

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/request.hpp"
#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/segment_format.hpp"
#include "mimamori/retrieval/manifest.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace mimamori;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, std::string_view bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
}

std::string readAll(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void segmentSeed(const fs::path& path, std::string_view ts, bool withFinal) {
    const common::SecureBuffer dayKey(store::kKeyBytes);  // zero-filled, as in targets/segment.cpp
    const std::uint64_t sequence = 7;
    const common::UtcMicros start = 1'764'547'200'000'000;  // 2025-12-01T00:00:00Z
    const common::SecureBuffer key = store::deriveSegmentKey(dayKey, sequence);
    fs::create_directories(path.parent_path());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot create " + path.string());
    {
        store::format::SegmentEncryptor enc(fd, path.string(),
                                               store::format::makeHeader("fuzz-cam", sequence, start,
                                                                            store::dayIndex(start), 0),
                                               key);
        // Two data chunks, as a sync in the middle of a segment makes.
        const std::size_t half = std::min(ts.size() / 2 / 188 * 188, store::format::kMaxPayloadPerChunk);
        const auto* p = reinterpret_cast<const std::uint8_t*>(ts.data());
        enc.writeChunk({start + 500'000, start + 500'000}, {p, half});
        const std::size_t rest = std::min(ts.size() - half, store::format::kMaxPayloadPerChunk);
        enc.writeChunk({start + 1'000'000, start + 1'000'000}, {p + half, rest});
        if (withFinal) enc.writeFinal({start + 1'000'000, start + 1'000'000, half + rest, 2});
    }
    ::close(fd);
    std::printf("%s: %ju bytes\n", path.c_str(), static_cast<std::uintmax_t>(fs::file_size(path)));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s OUT_DIR TS_FILE\n", argv[0]);
        return 2;
    }
    const fs::path out = argv[1];
    const std::string ts = readAll(argv[2]);
    const auto police = fuzz::fixedKey(policy::Role::Police, "fuzz-police", 1);
    const auto city = fuzz::fixedKey(policy::Role::City, "fuzz-city", 2);
    const auto camera = fuzz::fixedKey(policy::Role::Camera, "fuzz-camera", 3);

    // Keys and the trust file.
    write(out / "key_file/police.pub", policy::formatPublicKey(police.publicKey()));
    write(out / "key_file/camera.pub", policy::formatPublicKey(camera.publicKey()));
    const common::SecureBuffer secret = policy::formatSecretKey(police);
    write(out / "key_file/police.secret",
          std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));
    policy::TrustStore trust;
    trust.add(police.publicKey());
    trust.add(city.publicKey());
    write(out / "trust_file/trust.json", trust.toJson());

    // A request, signed and approved, and its body alone.
    const common::UtcMicros now = 1'764'547'200'000'000;
    policy::Request request = policy::newRequest(now, 7LL * 86'400'000'000);
    request.requestId = "case-42";
    request.cameraId = "fuzz-cam";
    request.from = now - 3'600'000'000;
    request.to = request.from + 10'000'000;
    request.groundWord = "criminal-investigation";
    request.ground = policy::classifyGround(request.groundWord);
    request.reference = "R7-123";
    request.purpose = "theft at the crossing";
    request.body = "Hyogo Prefectural Police, Kakogawa Station";
    request.officer = "Sato";
    request.recipient = police.boxPublic();
    request.nonce.assign(16, 0x5a);
    policy::SignedRequest signedRequest = policy::signRequest(request, police);
    write(out / "request/signed.json", policy::serializeSignedRequest(signedRequest));
    policy::approveRequest(signedRequest, city);
    write(out / "request/approved.json", policy::serializeSignedRequest(signedRequest));
    write(out / "request/body.txt", policy::serializeRequest(request));

    // An audit log: entries, a checkpoint signed by the camera key, an entry after it.
    {
        const fs::path dir = fs::temp_directory_path() / fmt::format("mimamori-seeds-{}", ::getpid());
        fs::create_directories(dir);
        common::ManualClock clock(now);
        {
            policy::AuditLog log(dir / "audit.log", camera, clock, {.checkpointEvery = 3, .statePath = {}, .legacyFile = {}});
            log.append("daemon_started", {{"camera", std::string("fuzz-cam")}});
            log.append("request_granted", {{"request_id", std::string("case-42")}, {"bytes", std::int64_t{1234}},
                                           {"approved", true}});
            log.append("request_refused", {{"reason", std::string("malformed")}});
            log.append("extract_delivered", {{"request_id", std::string("case-42")}});
        }
        write(out / "audit_log/audit.log", readAll(dir / "audit.log" / policy::auditFileName(policy::fiscalYearOf(now))));
        fs::remove_all(dir);
    }

    // A signed manifest, its signature file and the wrapper the camera serves.
    retrieval::Manifest m;
    m.requestId = "case-42";
    m.cameraId = "fuzz-cam";
    m.requestSha256 = std::string(64, 'a');
    m.ground = "criminal-investigation";
    m.reference = "R7-123";
    m.requestedFrom = request.from;
    m.requestedTo = request.to;
    m.actualFrom = request.from - 2'000'000;
    m.actualTo = request.to + 1'000'000;
    m.frames = 195;
    m.mp4Sha256 = std::string(64, 'b');
    m.mp4Bytes = 123456;
    m.sealedBytes = 123789;
    m.recipient = policy::toBase64(police.boxPublic());
    m.maskSha256 = std::string(64, 'c');
    m.software = "mimamori 0.1.0";
    m.createdAt = now;
    m.cameraKeyId = camera.keyId();
    const std::string manifestText = retrieval::serializeManifest(m);
    const policy::Signature sig = policy::sign(camera, manifestText);
    write(out / "manifest/manifest.json", manifestText);
    write(out / "manifest/manifest.sig", retrieval::formatSignature(sig));
    write(out / "manifest/wrapped.json", retrieval::wrapSignedManifest(manifestText, sig));

    // Encrypted segments: complete, and cut before the final chunk as a power cut leaves it.
    segmentSeed(out / "segment/complete.mseg", ts, true);
    segmentSeed(out / "segment/no-final.mseg", ts, false);
    return 0;
}

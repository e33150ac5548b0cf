// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// An hour of 1080p through the retrieval endpoint on 127.0.0.1 vs reading and decrypting the same
// segments (the floor), with no second copy of the footage written.
//
// usage: extract_bench [--minutes M] [--dir DIR] [--source FILE]
//   Synthesises 10 s of 1080p15 H.264 once (gst-launch-1.0: FILE scaled to 1080p, or a noisy
//   test pattern at about 4 Mbit/s), writes it M*6 times as 10 s segments into a temporary
//   encrypted store under DIR, starts the real Endpoint (plain HTTP on 127.0.0.1), and times in
//   one run, wall clock and CPU (all threads of the process, the client's included):
//   - the floor: read + decrypt every segment, from the warm page cache (best of two);
//   - the grant and the hash pass: POST of an approved request for the whole range until the
//     signed manifest is served (read + decrypt + demux + cut + mux + SHA-256, nothing written);
//   - the download: GET of the sealed container, produced from the ring as it is sent (read +
//     decrypt + demux + cut + mux + seal on two threads, then the socket), its time to the first
//     byte and to the last; the client counts the bytes and keeps none;
//   - bytes written to disk meanwhile: write_bytes of /proc/self/io (the whole process: plan
//     file, audit log, nonce) and the size of the extract directory;
//   - the police client's work: the container downloaded again, unsealed and SHA-256-checked in
//     memory against the signed manifest.
//   Prints download/floor (target <= 1.5x).
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/nonce_store.hpp"
#include "mimamori/policy/request.hpp"
#include "mimamori/store/segment_store.hpp"
#include "mimamori/retrieval/endpoint.hpp"
#include "mimamori/retrieval/manifest.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using namespace mimamori;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
double megabytes(std::uint64_t bytes) { return static_cast<double>(bytes) / 1e6; }

// CPU seconds of every thread of the process so far.
double cpuSeconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

struct Timed {
    double wall = 0;
    double cpu = 0;
};

template <typename F>
Timed timed(F&& f) {
    const double c0 = cpuSeconds();
    const auto t0 = Clock::now();
    f();
    return {seconds(t0, Clock::now()), cpuSeconds() - c0};
}

// Bytes this process has caused to be written to storage (/proc/self/io write_bytes).
std::uint64_t writeBytes() {
    std::ifstream io("/proc/self/io");
    std::string key;
    std::uint64_t value = 0;
    while (io >> key >> value)
        if (key == "write_bytes:") return value;
    throw std::runtime_error("/proc/self/io has no write_bytes");
}

std::uint64_t directoryBytes(const fs::path& dir) {
    std::uint64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) total += e.file_size();
    return total;
}

std::string encodeSegment(const fs::path& dir, const std::string& source) {
    const fs::path out = dir / "segment.ts";
    const std::string input = source.empty()
        ? "videotestsrc num-buffers=150 pattern=snow"
        : fmt::format("filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! videorate", source);
    const std::string command = fmt::format(
        "gst-launch-1.0 -q {} ! video/x-raw,format=I420,width=1920,height=1080,framerate=15/1 ! "
        "{}x264enc bitrate=4000 key-int-max=15 speed-preset=ultrafast ! h264parse ! mpegtsmux ! "
        "filesink location=\"{}\"",
        input, source.empty() ? "" : "identity eos-after=150 ! ", out.string());
    if (std::system(command.c_str()) != 0) throw std::runtime_error("gst-launch-1.0 failed: " + command);
    return common::readFile(out);
}

}  // namespace

int main(int argc, char** argv) {
    int minutes = 60;
    fs::path base = fs::temp_directory_path();
    std::string source;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--minutes") minutes = std::atoi(argv[i + 1]);
        else if (a == "--dir") base = argv[i + 1];
        else if (a == "--source") source = argv[i + 1];
        else {
            fmt::print(stderr, "usage: extract_bench [--minutes M] [--dir DIR] [--source FILE]\n");
            return 2;
        }
    }
    if (minutes < 1) minutes = 1;
    std::string pattern = (base / "mimamori-extract-bench-XXXXXX").string();
    if (!mkdtemp(pattern.data())) {
        fmt::print(stderr, "extract_bench: cannot create a directory under {}\n", base.string());
        return 1;
    }
    const fs::path dir = pattern;
    int status = 0;
    try {
        const std::string ts = encodeSegment(dir, source);
        const common::SystemClock clock;
        store::StoreConfig sc;
        sc.cameraId = "bench";
        sc.storageDir = dir / "card";
        sc.keyDir = dir / "keys";
        auto store = store::SegmentStore::open(sc, clock);
        const int count = minutes * 6;
        const common::UtcMicros segment = 10 * common::kMicrosPerSecond;
        const common::UtcMicros start = clock.nowUtc() - (count + 60) * segment;
        for (int i = 0; i < count; ++i) {
            const common::UtcMicros s = start + i * segment;
            auto w = store->beginSegment(s);
            w->write(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(ts.data()), ts.size()), s + segment);
            w->finish(s + segment);
        }
        const common::UtcMicros end = start + count * segment;
        const auto segments = store->list(start, end);
        fmt::print("footage: {} segments of 10 s 1080p15, {:.1f} MB of TS ({:.2f} Mbit/s)\n", segments.size(),
                   static_cast<double>(ts.size()) * count / 1e6, static_cast<double>(ts.size()) * 8 / 10 / 1e6);

        // The camera side: keys, trust, audit log, nonces, and the endpoint as mimamorid runs it.
        const fs::path keys = dir / "camera-keys";
        fs::create_directories(keys);
        fs::create_directories(dir / "state");
        const policy::SecretKey police = policy::generateKey(policy::Role::Police, "bench-police");
        const policy::SecretKey city = policy::generateKey(policy::Role::City, "bench-city");
        const policy::SecretKey camera = policy::generateKey(policy::Role::Camera, "bench-camera");
        policy::writeKeyFiles(camera, keys);
        policy::TrustStore trust;
        trust.add(police.publicKey());
        trust.add(city.publicKey());
        common::writeFileAtomic(dir / "trust.json", trust.toJson());
        policy::AuditLog audit(dir / "state" / "audit.log", camera, clock);
        policy::NonceStore nonces(dir / "state" / "nonces");
        retrieval::EndpointConfig config;
        config.address = "127.0.0.1";
        config.port = 0;
        config.trustFile = dir / "trust.json";
        config.cameraKeyFile = keys / "bench-camera.secret";
        config.extractDir = dir / "state" / "extracts";
        config.insecureHttp = true;
        config.maxRange = 24 * 3600 * common::kMicrosPerSecond;
        auto endpoint = retrieval::Endpoint::start(config, "bench", *store, audit, nonces, camera, clock,
                                                   [] { return std::string(64, '0'); });
        httplib::Client http("127.0.0.1", endpoint->port());
        http.set_read_timeout(600, 0);

        std::uint64_t plainBytes = 0;
        auto floor = [&] {
            return timed([&] {
                plainBytes = 0;
                for (const auto& s : segments) {
                    const auto read = store->read(s, [&](std::span<const std::uint8_t> b) { plainBytes += b.size(); });
                    if (!read) throw std::runtime_error(read.error());
                }
            });
        };
        floor();  // warm the page cache for every run alike
        const Timed floor1 = floor();

        policy::Request r = policy::newRequest(clock.nowUtc(), 24 * 3600 * common::kMicrosPerSecond);
        r.cameraId = "bench";
        r.from = start;
        r.to = end;
        r.groundWord = "criminal-investigation";
        r.ground = policy::classifyGround(r.groundWord);
        r.reference = "BENCH-1";
        r.purpose = "benchmark";
        r.body = "bench";
        r.officer = "bench";
        r.recipient = police.boxPublic();
        policy::SignedRequest signedRequest = policy::signRequest(r, police);
        policy::approveRequest(signedRequest, city);
        const std::string requestBytes = policy::serializeSignedRequest(signedRequest);

        const std::uint64_t written0 = writeBytes();
        std::string extractId;
        retrieval::Manifest manifest;
        const Timed hash = timed([&] {
            const auto posted = http.Post("/v1/requests", requestBytes, "application/json");
            if (!posted || posted->status != 202) throw std::runtime_error("the request was not granted");
            extractId = nlohmann::json::parse(posted->body)["extract_id"].get<std::string>();
            for (;;) {  // polled every 10 ms here; a client follows Retry-After (1 s)
                const auto m = http.Get("/v1/extracts/" + extractId + "/manifest");
                if (m && m->status == 200) {
                    std::string text, error;
                    policy::Signature signature{};
                    if (!retrieval::unwrapSignedManifest(m->body, text, signature, error)) throw std::runtime_error(error);
                    manifest = *retrieval::parseManifest(text).manifest;
                    return;
                }
                if (!m || m->status != 202) throw std::runtime_error("the manifest did not come");
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        });

        std::uint64_t received = 0;
        std::optional<Clock::time_point> firstByte;
        Clock::time_point asked;
        const Timed download = timed([&] {
            asked = Clock::now();
            const auto got = http.Get("/v1/extracts/" + extractId, [&](const char*, std::size_t n) {
                if (!firstByte) firstByte = Clock::now();
                received += n;
                return true;
            });
            if (!got || got->status != 200) throw std::runtime_error("the download failed");
        });
        if (received != manifest.sealedBytes) throw std::runtime_error("the download is short");
        const std::uint64_t written = writeBytes() - written0;
        const std::uint64_t atRest = directoryBytes(config.extractDir);

        const Timed floor2 = floor();
        const Timed best = floor1.wall <= floor2.wall ? floor1 : floor2;

        // The police client's share, in memory: unseal and hash a second download.
        retrieval::Sha256 clipHash;
        retrieval::Unsealer unsealer(police.boxPublic(), police.boxSecret(),
                                     [&](std::span<const std::uint8_t> plain) { clipHash.update(plain); });
        const Timed client = timed([&] {
            const auto got = http.Get("/v1/extracts/" + extractId, [&](const char* data, std::size_t n) {
                unsealer.write(std::span(reinterpret_cast<const std::uint8_t*>(data), n));
                return true;
            });
            if (!got || got->status != 200) throw std::runtime_error("the second download failed");
            unsealer.finish();
        });
        const bool verified = clipHash.hexDigest() == manifest.mp4Sha256;
        endpoint->stop();

        fmt::print("floor    (read + decrypt segments):             {:6.2f} s wall {:6.2f} s CPU  {:7.1f} MB/s\n",
                   best.wall, best.cpu, megabytes(plainBytes) / best.wall);
        fmt::print("grant + hash pass (until the manifest):         {:6.2f} s wall {:6.2f} s CPU  ({:.2f}x the floor)\n",
                   hash.wall, hash.cpu, hash.wall / best.wall);
        fmt::print("download over HTTP on 127.0.0.1:                {:6.2f} s wall {:6.2f} s CPU  {:7.1f} MB/s  "
                   "{} frames, {:.1f} MB sealed\n",
                   download.wall, download.cpu, megabytes(received) / download.wall, manifest.frames,
                   megabytes(received));
        fmt::print("time to the first byte of the container:        {:6.3f} s\n", seconds(asked, *firstByte));
        fmt::print("ratio download/floor: {:.2f}x wall, {:.2f}x CPU (target <= 1.5x); grant to last byte: {:.2f} s = "
                   "{:.2f}x the floor\n",
                   download.wall / best.wall, download.cpu / best.cpu, hash.wall + download.wall,
                   (hash.wall + download.wall) / best.wall);
        fmt::print("written to disk from the grant to the last byte: {} bytes (/proc/self/io write_bytes: plan, audit "
                   "log, nonce); extract dir now {} bytes; footage bytes at rest: 0\n",
                   written, atRest);
        fmt::print("client: download + unseal + SHA-256 in memory: {:.2f} s, {:.1f} MB/s, {}\n", client.wall,
                   megabytes(received) / client.wall, verified ? "matches the signed manifest" : "MISMATCH");
        if (!verified) status = 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "extract_bench: {}\n", e.what());
        status = 1;
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return status;
}

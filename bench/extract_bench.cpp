// Extract-and-seal of one hour of 1080p footage vs reading and decrypting the same segments (the floor).
//
// usage: extract_bench [--minutes M] [--dir DIR] [--source FILE]
//   Synthesises 10 s of 1080p15 H.264 once (gst-launch-1.0: FILE scaled to 1080p, or a noisy
//   test pattern at about 4 Mbit/s), writes it M*6 times as 10 s segments into a temporary
//   encrypted store, then times in one run, wall clock and CPU (all threads of the process):
//   the floor (read + decrypt every segment, from the warm page cache), the extract (read +
//   decrypt + demux + whole-GOP cut + MP4 mux + SHA-256 + seal + write + fsync, into DIR), a
//   plain write + fsync of as many bytes as the sealed extract into DIR (what the disk alone
//   costs), SHA-256 + sealing of as many MP4 bytes in memory (the muxing thread's share that
//   no remuxer can avoid), and the police client's unseal + SHA-256 check. Prints the ratios
//   extract/floor (target <= 1.5) in wall-clock and CPU seconds, and extract/write.
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/recorder/segment_store.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

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

// write(2) of `bytes` in 64 KiB pieces into a new file, then fsync: what the disk costs alone.
void writeAndSync(const fs::path& file, std::uint64_t bytes) {
    common::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) throw std::runtime_error("cannot create " + file.string());
    std::vector<std::uint8_t> piece(64 * 1024, 0x5a);
    for (std::uint64_t done = 0; done < bytes; done += piece.size())
        common::writeAll(fd.get(), std::span(piece).first(std::min<std::uint64_t>(piece.size(), bytes - done)), file.string());
    if (::fsync(fd.get()) != 0) throw std::runtime_error("fsync failed");
}

// SHA-256 and sealing of `bytes` of MP4-sized pieces in memory, nothing written.
void hashAndSeal(const policy::BoxPublicKey& recipient, std::uint64_t bytes) {
    std::vector<std::uint8_t> piece(32 * 1024, 0x5a);  // about one 1080p frame
    retrieval::Sha256 hash;
    retrieval::Sealer sealer(recipient, [](std::span<const std::uint8_t>) {});
    for (std::uint64_t done = 0; done < bytes; done += piece.size()) {
        const auto part = std::span(piece).first(std::min<std::uint64_t>(piece.size(), bytes - done));
        hash.update(part);
        sealer.write(part);
    }
    sealer.finish();
    hash.hexDigest();
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
        recorder::StoreConfig sc;
        sc.cameraId = "bench";
        sc.storageDir = dir / "card";
        sc.keyDir = dir / "keys";
        auto store = recorder::SegmentStore::open(sc, clock);
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

        std::uint64_t plainBytes = 0;
        auto floor = [&] {
            return timed([&] {
                plainBytes = 0;
                for (const auto& s : segments) {
                    auto error = store->read(s, [&](std::span<const std::uint8_t> b) { plainBytes += b.size(); });
                    if (error) throw std::runtime_error(*error);
                }
            });
        };
        const policy::SecretKey police = policy::generateKey(policy::Role::Police, "bench-police");

        floor();  // warm the page cache for both runs alike
        const Timed floor1 = floor();
        retrieval::SealedExtract sealed;
        const Timed extract = timed([&] {
            sealed = retrieval::writeSealedExtract(*store, start, end, police.boxPublic(), dir / "extract.sealed");
        });
        const Timed floor2 = floor();
        const Timed write = timed([&] { writeAndSync(dir / "plain.bytes", sealed.sealedBytes); });
        fs::remove(dir / "plain.bytes");
        const Timed seal = timed([&] { hashAndSeal(police.boxPublic(), sealed.mp4Bytes); });
        const Timed best = floor1.wall <= floor2.wall ? floor1 : floor2;
        fmt::print("floor   (read + decrypt segments):                 {:6.2f} s wall {:6.2f} s CPU  {:7.1f} MB/s\n",
                   best.wall, best.cpu, megabytes(plainBytes) / best.wall);
        fmt::print("extract (+ demux, cut, mux, SHA-256, seal, write): {:6.2f} s wall {:6.2f} s CPU  {:7.1f} MB/s  "
                   "{} frames, {:.1f} MB MP4\n",
                   extract.wall, extract.cpu, megabytes(plainBytes) / extract.wall, sealed.extract.frames,
                   megabytes(sealed.mp4Bytes));
        fmt::print("write + fsync of the same {:.1f} MB into {}:  {:6.2f} s wall {:6.2f} s CPU  {:7.1f} MB/s\n",
                   megabytes(sealed.sealedBytes), base.string(), write.wall, write.cpu, megabytes(sealed.sealedBytes) / write.wall);
        fmt::print("SHA-256 + seal of the same MP4 bytes in memory:     {:6.2f} s wall {:6.2f} s CPU  ({:.2f}x the floor)\n",
                   seal.wall, seal.cpu, seal.wall / best.wall);
        fmt::print("ratio extract/floor: {:.2f}x wall, {:.2f}x CPU (target <= 1.5x); extract/write+fsync: {:.2f}x wall\n",
                   extract.wall / best.wall, extract.cpu / best.cpu, extract.wall / write.wall);

        const auto t0 = Clock::now();
        const auto unsealed = retrieval::unsealFile(dir / "extract.sealed", dir / "clip.mp4", police);
        const double clientSeconds = seconds(t0, Clock::now());
        if (unsealed.sha256 != sealed.mp4Sha256) throw std::runtime_error("client: SHA-256 mismatch");
        fmt::print("client decrypt + SHA-256 verify: {:.2f} s, {:.1f} MB/s\n", clientSeconds,
                   megabytes(sealed.sealedBytes) / clientSeconds);
    } catch (const std::exception& e) {
        fmt::print(stderr, "extract_bench: {}\n", e.what());
        status = 1;
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return status;
}

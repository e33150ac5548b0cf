// Extract-and-seal of one hour of 1080p footage vs reading and decrypting the same segments (the floor).
//
// usage: extract_bench [--minutes M] [--dir DIR] [--source FILE]
//   Synthesises 10 s of 1080p15 H.264 once (gst-launch-1.0: FILE scaled to 1080p, or a noisy
//   test pattern at about 4 Mbit/s), writes it M*6 times as 10 s segments into a temporary
//   encrypted store, then times in one run: the floor (read + decrypt every segment), the
//   extract (read + decrypt + demux + whole-GOP cut + MP4 mux + SHA-256 + seal + write), and
//   the police client's unseal + SHA-256 check. Prints the ratio extract/floor (target <= 1.5).
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/recorder/segment_store.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/extract.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using namespace mimamori;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

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

        auto floor = [&] {
            std::uint64_t bytes = 0;
            const auto t0 = Clock::now();
            for (const auto& s : segments) {
                auto error = store->read(s, [&](std::span<const std::uint8_t> b) { bytes += b.size(); });
                if (error) throw std::runtime_error(*error);
            }
            return std::pair{seconds(t0, Clock::now()), bytes};
        };
        const policy::SecretKey police = policy::generateKey(policy::Role::Police, "bench-police");
        auto extract = [&](const fs::path& out) {
            const auto t0 = Clock::now();
            const auto r = retrieval::writeSealedExtract(*store, start, end, police.boxPublic(), out);
            return std::pair{seconds(t0, Clock::now()), r};
        };

        floor();  // warm the page cache for both runs alike
        const auto [floor1, plainBytes] = floor();
        const auto [extractSeconds, sealed] = extract(dir / "extract.sealed");
        const auto [floor2, ignored] = floor();
        const double floorSeconds = std::min(floor1, floor2);
        fmt::print("floor   (read + decrypt segments):             {:7.2f} s  {:7.1f} MB/s\n", floorSeconds,
                   plainBytes / 1e6 / floorSeconds);
        fmt::print("extract (+ demux, cut, mux, SHA-256, seal, write): {:5.2f} s  {:7.1f} MB/s  {} frames, {:.1f} MB MP4\n",
                   extractSeconds, plainBytes / 1e6 / extractSeconds, sealed.extract.frames, sealed.mp4Bytes / 1e6);
        fmt::print("ratio extract/floor: {:.2f}x (target <= 1.5x)\n", extractSeconds / floorSeconds);

        const auto t0 = Clock::now();
        const auto unsealed = retrieval::unsealFile(dir / "extract.sealed", dir / "clip.mp4", police);
        const double clientSeconds = seconds(t0, Clock::now());
        if (unsealed.sha256 != sealed.mp4Sha256) throw std::runtime_error("client: SHA-256 mismatch");
        fmt::print("client decrypt + SHA-256 verify: {:.2f} s, {:.1f} MB/s\n", clientSeconds,
                   sealed.sealedBytes / 1e6 / clientSeconds);
    } catch (const std::exception& e) {
        fmt::print(stderr, "extract_bench: {}\n", e.what());
        status = 1;
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    return status;
}

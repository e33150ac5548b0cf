// mimamorid: the camera's daemon. Parses the command line, validates the config and the mask
// file (fail-closed), then runs the recorder until SIGTERM.
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/recorder/pipeline.hpp"
#include "mimamori/recorder/recorder.hpp"

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace {

using namespace mimamori;

constexpr const char* kUsage =
    "usage: mimamorid --config FILE [--exit-at-eos] [--verbose]\n"
    "       mimamorid --check-config FILE\n"
    "       mimamorid --version\n"
    "\n"
    "  --config FILE        record with this config (docs/config.md)\n"
    "  --check-config FILE  validate the config, its mask file and the GStreamer elements it\n"
    "                       needs, print every problem, and exit (0 = valid)\n"
    "  --exit-at-eos        stop when a file or test source ends instead of retrying\n"
    "                       (tests and benchmarks)\n"
    "  --verbose            log debug lines (one per segment)\n"
    "\n"
    "Signals: SIGTERM/SIGINT finish the current segment and exit 0; SIGHUP reloads the mask\n"
    "file (an invalid file keeps the masks in force).\n";

struct Options {
    std::string config;
    bool check = false;
    bool exitAtEos = false;
    bool verbose = false;
};

std::optional<Options> parseArgs(int argc, char** argv, std::string& error) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--config" || a == "--check-config") {
            if (i + 1 >= argc) {
                error = a + " needs a file";
                return std::nullopt;
            }
            if (!o.config.empty()) {
                error = "give one --config or --check-config";
                return std::nullopt;
            }
            o.config = argv[++i];
            o.check = a == "--check-config";
        } else if (a == "--exit-at-eos") {
            o.exitAtEos = true;
        } else if (a == "--verbose") {
            o.verbose = true;
        } else {
            error = "unknown argument \"" + a + "\"";
            return std::nullopt;
        }
    }
    if (o.config.empty()) {
        error = "--config or --check-config is required";
        return std::nullopt;
    }
    return o;
}

// Validates everything the daemon needs before it may record; prints each problem on its own
// line to stderr. Returns the loaded config and masks, or nullopt.
struct Loaded {
    recorder::DaemonConfig config;
    masking::MaskSet masks;
};

std::optional<Loaded> load(const std::string& path, bool listEveryProblem) {
    recorder::DaemonConfig config;
    try {
        config = recorder::loadConfig(path);
    } catch (const recorder::ConfigError& e) {
        if (listEveryProblem) {
            for (const auto& p : e.problems()) std::fprintf(stderr, "%s: %s\n", path.c_str(), p.c_str());
        } else {
            common::logError("mimamorid", "bad config {}", e.what());
        }
        return std::nullopt;
    } catch (const std::exception& e) {
        common::logError("mimamorid", "cannot read the config: {}", e.what());
        return std::nullopt;
    }
    // Fail-closed: without a valid mask file the camera does not record.
    masking::MaskSet masks;
    try {
        masks = masking::loadMaskFile(config.maskFile);
    } catch (const masking::MaskFileError& e) {
        if (listEveryProblem) {
            for (const auto& f : e.findings())
                std::fprintf(stderr, "%s: %s\n", e.source().c_str(), f.toString().c_str());
        } else {
            common::logError("mimamorid", "refusing to record: invalid mask file {}", e.what());
        }
        return std::nullopt;
    } catch (const std::exception& e) {
        common::logError("mimamorid", "refusing to record: mask_file: {}", e.what());
        return std::nullopt;
    }
    // Masks drawn for another pole would hide the wrong windows: as bad as none.
    if (masks.camera != config.store.cameraId) {
        const std::string problem = "mask_file " + config.maskFile.string() + " is for camera \"" +
                                    masks.camera + "\", not \"" + config.store.cameraId + "\"";
        if (listEveryProblem) std::fprintf(stderr, "%s\n", problem.c_str());
        else common::logError("mimamorid", "refusing to record: {}", problem);
        return std::nullopt;
    }
    return Loaded{std::move(config), std::move(masks)};
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (!std::strcmp(argv[i], "--version")) {
            std::printf("mimamorid %s\n", MIMAMORI_VERSION);
            return 0;
        }
    }
    std::string error;
    auto options = parseArgs(argc, argv, error);
    if (!options) {
        std::fprintf(stderr, "mimamorid: %s\n%s", error.c_str(), kUsage);
        return 2;
    }
    if (options->verbose) common::setLogLevel(common::LogLevel::Debug);

    auto loaded = load(options->config, options->check);
    if (!loaded) return 1;

    if (options->check) {
        try {
            recorder::checkElementsAvailable(loaded->config);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s\n", options->config.c_str(), e.what());
            return 1;
        }
        std::printf("%s: valid (camera %s, %s source, %zu masks, retention %d days)\n",
                    options->config.c_str(), loaded->config.store.cameraId.c_str(),
                    loaded->config.source.kind.c_str(), loaded->masks.masks.size(),
                    loaded->config.store.retentionDays);
        return 0;
    }

    try {
        common::SystemClock clock;
        recorder::RecorderOptions recorderOptions;
        recorderOptions.exitAtEndOfStream = options->exitAtEos;
        recorder::Recorder recorder(std::move(loaded->config), std::move(loaded->masks), clock,
                                    recorderOptions);
        return recorder.run();
    } catch (const std::exception& e) {
        common::logError("mimamorid", "cannot start: {}", e.what());
        return 1;
    }
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// mimamorid: the camera's daemon. Parses the command line, validates the config and the mask
// file (fail-closed), then runs the recorder until SIGTERM.
#include "mimamori/ble/service.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/common/manpage.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/nonce_store.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/recorder/pipeline.hpp"
#include "mimamori/recorder/recorder.hpp"
#include "mimamori/retrieval/endpoint.hpp"
#include "mimamori/retrieval/tls.hpp"

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

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
    std::optional<retrieval::EndpointConfig> retrieval;  // absent: no endpoint, no audit log
    ble::ServiceConfig ble;
};

std::optional<Loaded> load(const std::string& path, bool listEveryProblem) {
    recorder::DaemonConfig config;
    try {
        config = recorder::loadConfig(path);
    } catch (const common::ConfigError& e) {
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
    // The other modules' sections: every problem is reported before anything starts.
    std::optional<retrieval::EndpointConfig> endpointConfig;
    ble::ServiceConfig bleConfig;
    std::vector<std::string> problems;
    if (!config.retrievalJson.empty()) {
        try {
            endpointConfig = retrieval::parseEndpointConfig(config.retrievalJson, config.path.parent_path(),
                                                            config.stateDir);
        } catch (const common::ConfigError& e) {
            problems.insert(problems.end(), e.problems().begin(), e.problems().end());
        }
    }
    // Whoever holds the removable card must not be able to add trusted keys or take the key
    // that signs the audit log: both stay off the card, symlinks followed.
    if (endpointConfig) {
        std::vector<std::pair<const char*, std::filesystem::path>> kept = {
            {"retrieval.trust_file", endpointConfig->trustFile}, {"retrieval.camera_key", endpointConfig->cameraKeyFile}};
        if (!endpointConfig->insecureHttp) kept.emplace_back("retrieval.tls_key", endpointConfig->tlsKeyFile);
        for (const auto& [key, file] : kept) {
            if (!recorder::liesInside(file, config.store.storageDir)) continue;
            const auto resolved = recorder::resolvedPath(file);
            problems.push_back(std::string(key) + ": must not be inside storage.path" +
                               (resolved == file ? std::string() : " (it resolves to " + resolved.string() + ")"));
        }
    }
    try {
        bleConfig = ble::parseServiceConfig(config.bleJson);
    } catch (const common::ConfigError& e) {
        problems.insert(problems.end(), e.problems().begin(), e.problems().end());
    }
    if (!problems.empty()) {
        for (const auto& p : problems) {
            if (listEveryProblem) std::fprintf(stderr, "%s: %s\n", path.c_str(), p.c_str());
            else common::logError("mimamorid", "bad config {}: {}", path, p);
        }
        return std::nullopt;
    }
    return Loaded{std::move(config), std::move(masks), std::move(endpointConfig), std::move(bleConfig)};
}

// Everything that runs beside the recorder, started after it (the endpoint reads its ring) and
// stopped before it. Members are destroyed in reverse order: endpoint, audit log, key.
struct Services {
    std::optional<policy::SecretKey> cameraKey;
    std::unique_ptr<policy::AuditLog> audit;
    std::unique_ptr<policy::NonceStore> nonces;
    std::unique_ptr<retrieval::Endpoint> endpoint;
    std::unique_ptr<ble::Service> ble;

    void stop() {
        if (endpoint) endpoint->stop();
        if (ble) ble->stop();
        if (audit) {
            try {
                audit->append(policy::audit::kDaemonStop, {});
                audit->close();
            } catch (const std::exception& e) {
                common::logError("mimamorid", "audit log: cannot record the stop: {}", e.what());
            }
        }
    }
};

// Opens the audit log and the endpoint when retrieval is configured, and the BLE detector
// when enabled. Throws on setup problems (unreadable key, tampered audit log, port taken).
void startServices(Services& s, const Loaded& loaded, recorder::Recorder& rec, const common::Clock& clock) {
    const auto& config = loaded.config;
    if (loaded.retrieval) {
        // The camera key signs the audit log's checkpoints and the extracts' manifests.
        s.cameraKey.emplace(policy::loadSecretKey(loaded.retrieval->cameraKeyFile));
        std::filesystem::create_directories(config.stateDir);
        s.audit = std::make_unique<policy::AuditLog>(config.stateDir / "audit.log", *s.cameraKey, clock);
        s.audit->append(policy::audit::kDaemonStart,
                        {{"version", std::string(MIMAMORI_VERSION)},
                         {"camera", config.store.cameraId},
                         {"mask_hash", rec.maskSha256()},
                         {"retention_days", static_cast<std::int64_t>(config.store.retentionDays)}});
        rec.attachAudit(s.audit.get());
        s.nonces = std::make_unique<policy::NonceStore>(config.stateDir / "nonces");
        s.endpoint = retrieval::Endpoint::start(*loaded.retrieval, config.store.cameraId, rec.store(),
                                                *s.audit, *s.nonces, clock,
                                                [&rec] { return rec.maskSha256(); });
        common::logInfo("mimamorid", "retrieval endpoint on {}:{}", loaded.retrieval->address,
                        s.endpoint->port());
    }
    s.ble = ble::Service::start(loaded.ble, config.store.cameraId, config.stateDir, clock);
}

}  // namespace

// mimamorid(8), from the usage text above.
static std::string manual() {
    common::ManPage page{"mimamorid", 8, MIMAMORI_VERSION, "the Mimamori watch camera daemon", {}};
    page.sections.push_back({"synopsis", kUsage});
    page.sections.push_back(
        {"description",
         "Records the camera's video onto the removable card as an encrypted ring of segments,\n"
         "with the privacy masks applied to every frame before it is encoded; answers the\n"
         "police's signed and approved requests for footage over HTTPS, recording every\n"
         "provision and refusal in a signed audit log; and reports registered BLE tags to their\n"
         "companies. It refuses to start without a valid mask file for this camera.\n"
         "mimamorid --man prints this page.\n"});
    page.sections.push_back({"files", "/etc/mimamori/mimamorid.json   the config (docs/config.md)\n"
                                      "/etc/mimamori/masks.json       the privacy masks (docs/mask-file.md)\n"
                                      "/var/lib/mimamori/             keys, audit log, nonces, health.json\n"});
    page.sections.push_back({"exit status", "0  stopped by SIGTERM or SIGINT, or a valid --check-config\n"
                                            "1  the config, the masks or the start failed\n"
                                            "2  bad usage\n"});
    page.sections.push_back({"see also", "mimamori(1), systemctl(1), and the formats in /usr/share/doc/mimamori/\n"});
    return common::renderManPage(page);
}

int main(int argc, char** argv) {
    if (argc == 2 && !std::strcmp(argv[1], "--man")) {  // for the package build
        std::fputs(manual().c_str(), stdout);
        return 0;
    }
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
            // The TLS key and certificate the endpoint will serve with: present, private, a pair.
            if (const auto& ep = loaded->retrieval; ep && !ep->insecureHttp)
                (void)retrieval::tlsKeyRecordFor(ep->tlsCertFile, ep->tlsKeyFile, policy::loadSecretKey(ep->cameraKeyFile));
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
        recorder::Recorder recorder(loaded->config, std::move(loaded->masks), clock, recorderOptions);
        Services services;
        struct StopServices {
            Services& s;
            ~StopServices() { s.stop(); }
        } stopServices{services};
        startServices(services, *loaded, recorder, clock);
        return recorder.run();
    } catch (const std::exception& e) {
        common::logError("mimamorid", "cannot start: {}", e.what());
        return 1;
    }
}

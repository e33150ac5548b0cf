// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// mimamorid: the camera's daemon. Parses the command line, validates the config and the mask
// file (fail-closed), then runs the recorder until SIGTERM.
#include "still_source.hpp"

#include "mimamori/ble/service.hpp"
#include "mimamori/common/config_error.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/common/manpage.hpp"
#include "mimamori/daemon/config.hpp"
#include "mimamori/daemon/endpoint_process.hpp"
#include "mimamori/daemon/main_loop.hpp"
#include "mimamori/daemon/service_notifier.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/recorder/pipeline.hpp"
#include "mimamori/recorder/recorder.hpp"
#include "mimamori/retrieval/tls.hpp"
#include "mimamori/store/segment_store.hpp"

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
    "  --check-config FILE  load everything a start would (the config, the mask file, the\n"
    "                       GStreamer elements, the camera key and its role, the trust file,\n"
    "                       the TLS key), print every problem as FILE: key: message, and\n"
    "                       exit (0 = valid)\n"
    "  --exit-at-eos        stop when a file or test source ends instead of retrying\n"
    "                       (tests and benchmarks)\n"
    "  --verbose            log debug lines (one per segment)\n"
    "\n"
    "Signals: SIGTERM/SIGINT finish the current segment and exit 0; SIGHUP reloads the mask\n"
    "file (an invalid file keeps the masks in force).\n"
    "\n"
    "Under systemd (Type=notify) it sends READY=1 once the first segment is open, WATCHDOG=1\n"
    "only while footage reaches the ring (or while it waits for a lost source), RELOADING=1 and\n"
    "READY=1 around a mask reload, and the health summary as STATUS=.\n";

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

// The config and the masks the daemon records with, validated (fail-closed).
struct Loaded {
    daemon::DaemonConfig config;
    masking::MaskSet masks;
};

// Reports problems as "FILE: key: message" lines on stderr (--check-config) or in the log.
struct ProblemSink {
    bool toStderr;
    void operator()(const std::string& file, const std::string& problem) const {
        if (toStderr) std::fprintf(stderr, "%s: %s\n", file.c_str(), problem.c_str());
        else common::logError("mimamorid", "refusing to record: {}: {}", file, problem);
    }
};

std::optional<Loaded> load(const std::string& path, const ProblemSink& report) {
    Loaded loaded;
    try {
        loaded.config = daemon::loadDaemonConfig(path);
    } catch (const common::ConfigError& e) {
        // At start, one line in the journal (what() lists every problem); --check-config, one each.
        if (report.toStderr) for (const auto& p : e.problems()) report(path, p);
        else common::logError("mimamorid", "bad config {}", e.what());
        return std::nullopt;
    } catch (const std::exception& e) {
        report(path, std::string("cannot read: ") + e.what());
        return std::nullopt;
    }
    const recorder::RecorderConfig& config = loaded.config.recorder;
    // Fail-closed: without a valid mask file the camera does not record.
    try {
        loaded.masks = masking::loadMaskFile(config.maskFile);
    } catch (const masking::MaskFileError& e) {
        for (const auto& f : e.findings()) report(e.source(), f.toString());
        return std::nullopt;
    } catch (const std::exception& e) {
        report(path, std::string("mask_file: ") + e.what());
        return std::nullopt;
    }
    // Masks drawn for another pole would hide the wrong windows: as bad as none.
    if (loaded.masks.camera != config.store.cameraId) {
        report(path, "mask_file: " + config.maskFile.string() + " is for camera \"" + loaded.masks.camera +
                         "\", not \"" + config.store.cameraId + "\"");
        return std::nullopt;
    }
    return loaded;
}

// The camera key signs the audit log's checkpoints and the extracts' manifests: a police or
// city key in its place would be a start that fails later, so it is refused here.
policy::SecretKey loadCameraKey(const std::filesystem::path& file) {
    policy::SecretKey key = policy::loadSecretKey(file);
    if (key.role() != policy::Role::Camera)
        throw policy::KeyError(file.string() + ": a " + std::string(policy::roleName(key.role())) +
                               " key, not a camera key");
    return key;
}

// Everything the daemon loads at start beyond the config and the masks, each problem reported
// as "FILE: key: message". Returns the number of problems.
int checkWhatTheDaemonLoads(const std::string& path, const daemon::DaemonConfig& config, const ProblemSink& report) {
    int problems = 0;
    auto check = [&](const char* key, auto&& load) {
        try {
            load();
        } catch (const std::exception& e) {
            report(path, std::string(key) + ": " + e.what());
            ++problems;
        }
    };
    check("encoder", [&] { recorder::checkElementsAvailable(config.recorder); });
    if (const auto& ep = config.retrieval) {
        std::optional<policy::SecretKey> cameraKey;
        check("retrieval.camera_key", [&] { cameraKey.emplace(loadCameraKey(ep->cameraKeyFile)); });
        check("retrieval.trust_file", [&] { (void)policy::TrustStore::load(ep->trustFile); });
        // The TLS key and certificate the endpoint will serve with: present, private, a pair.
        if (!ep->insecureHttp && cameraKey)
            check("retrieval.tls_key", [&] { (void)retrieval::tlsKeyRecordFor(ep->tlsCertFile, ep->tlsKeyFile, *cameraKey); });
    }
    return problems;
}

// What the composition root opens once and lends out. Members are destroyed in reverse order:
// BLE, the endpoint process's supervisor, stills, audit log, camera key, store.
struct Daemon {
    std::unique_ptr<store::SegmentStore> store;
    std::optional<policy::SecretKey> cameraKey;
    std::unique_ptr<policy::AuditLog> audit;
    std::unique_ptr<daemon::RecorderStillSource> stills;  // review stills from the recorder's tap
    std::unique_ptr<daemon::EndpointSupervisor> endpoint;  // the endpoint runs in a child process
    std::unique_ptr<ble::Service> ble;

    // After the recorder stopped: the endpoint and BLE stop, and the audit log records the stop.
    void stopServices() {
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

// The endpoint process writes only beneath its own directories (docs/endpoint-process.md), made
// here with mimamorid's rights. Nonce stores of versions that ran the endpoint in-process sat in
// state_dir itself; they move in once, so no granted request becomes new again.
void prepareEndpointDirs(const retrieval::EndpointConfig& ep, const std::filesystem::path& stateDir) {
    namespace fs = std::filesystem;
    for (const fs::path& dir : {ep.ownStateDir, ep.extractDir}) {
        fs::create_directories(dir);
        fs::permissions(dir, fs::perms::owner_all);
    }
    for (const char* name : {"nonces", "city-log-nonces"}) {
        const fs::path old = stateDir / name, now = ep.ownStateDir / name;
        if (fs::exists(old) && !fs::exists(now)) {
            fs::rename(old, now);
            common::fsyncDirectory(ep.ownStateDir);
            common::fsyncDirectory(stateDir);
            common::logInfo("mimamorid", "moved {} to {}", old.string(), now.string());
        }
    }
}

// Opens the store, and with retrieval configured the camera key and the audit log (recording the
// start), and makes the endpoint process's directories. Throws on setup problems (unreadable
// key, tampered audit log).
void openShared(Daemon& d, const Loaded& loaded, const common::Clock& clock) {
    const recorder::RecorderConfig& config = loaded.config.recorder;
    d.store = store::SegmentStore::open(config.store, clock);
    if (!loaded.config.retrieval) return;
    d.cameraKey.emplace(loadCameraKey(loaded.config.retrieval->cameraKeyFile));
    std::filesystem::create_directories(config.stateDir);
    // One file per fiscal year in state/audit/; a single-file log of earlier versions moves in.
    policy::AuditOptions auditOptions;
    auditOptions.legacyFile = config.stateDir / "audit.log";
    d.audit = std::make_unique<policy::AuditLog>(config.stateDir / "audit", *d.cameraKey, clock, auditOptions);
    d.audit->append(policy::audit::kDaemonStart,
                    {{"version", std::string(MIMAMORI_VERSION)},
                     {"camera", config.store.cameraId},
                     {"mask_hash", loaded.masks.sha256Hex},
                     {"retention_days", static_cast<std::int64_t>(config.store.retentionDays)}});
    prepareEndpointDirs(*loaded.config.retrieval, config.stateDir);
}

// The endpoint process (whose reported evidence holds the store keeps) and the BLE detector,
// after the recorder exists and before it starts: retention must never run without the holds.
void startServices(Daemon& d, const Loaded& loaded, const Options& options, recorder::Recorder& rec,
                   const common::Clock& clock) {
    const recorder::RecorderConfig& config = loaded.config.recorder;
    if (loaded.config.retrieval) {
        d.stills = std::make_unique<daemon::RecorderStillSource>(rec.stills());
        daemon::EndpointProcessConfig process;
        process.executable = "/proc/self/exe";  // this very binary, even if an upgrade replaced the file
        process.configFile = std::filesystem::absolute(options.config);
        process.verbose = options.verbose;
        process.address = loaded.config.retrieval->address;
        d.endpoint = std::make_unique<daemon::EndpointSupervisor>(
            process, *d.audit, *d.store, daemon::RecorderSide{[&rec] { return rec.maskSha256(); }, d.stills.get()});
        d.endpoint->start();
    }
    d.ble = ble::Service::start(loaded.config.ble, config.store.cameraId, config.stateDir, clock);
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
    page.sections.push_back({"files", "/etc/mimamori/mimamorid.json          the config (docs/config.md)\n"
                                      "/etc/mimamori/masks.json              the privacy masks (docs/mask-file.md)\n"
                                      "/var/lib/mimamori/keys/               the day keys of the ring (key_dir)\n"
                                      "/var/lib/mimamori/state/              state_dir: health.json, the audit log\n"
                                      "/var/lib/mimamori/state/endpoint/     the endpoint process's nonce stores, the\n"
                                      "                                      only part of state_dir it may write\n"
                                      "/var/lib/mimamori/state/extracts/     extract_dir: plans of granted extracts\n"
                                      "/media/sdcard/mimamori/ring/          the encrypted ring (storage.path)\n"
                                      "Paths as the packaged config sets them; extract_dir by its default.\n"});
    page.sections.push_back({"exit status", "0  stopped by SIGTERM or SIGINT, or a valid --check-config\n"
                                            "1  the config, the masks or the start failed\n"
                                            "2  bad usage\n"});
    page.sections.push_back({"see also", "mimamori(1), systemctl(1), and the formats in /usr/share/doc/mimamori/\n"});
    return common::renderManPage(page);
}

int main(int argc, char** argv) {
    // The endpoint process mimamorid starts (docs/endpoint-process.md); not for use by hand.
    if (argc >= 4 && !std::strcmp(argv[1], "--endpoint-child") && !std::strcmp(argv[2], "--config")) {
        if (argc == 5 && !std::strcmp(argv[4], "--verbose")) common::setLogLevel(common::LogLevel::Debug);
        return daemon::runEndpointChild(argv[3]);
    }
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

    const ProblemSink report{options->check};
    auto loaded = load(options->config, report);
    if (!loaded) return 1;

    if (options->check) {
        if (checkWhatTheDaemonLoads(options->config, loaded->config, report) > 0) return 1;
        const recorder::RecorderConfig& config = loaded->config.recorder;
        std::printf("%s: valid (camera %s, %s source, %zu masks, retention %d days)\n", options->config.c_str(),
                    config.store.cameraId.c_str(), config.source.kind.c_str(), loaded->masks.masks.size(),
                    config.store.retentionDays);
        return 0;
    }

    try {
        common::SystemClock clock;
        daemon::ServiceNotifier notifier;
        Daemon d;
        struct StopServices {
            Daemon& d;
            ~StopServices() { d.stopServices(); }
        } stopServices{d};
        openShared(d, *loaded, clock);
        recorder::RecorderOptions recorderOptions;
        recorderOptions.exitAtEndOfStream = options->exitAtEos;
        recorder::Recorder recorder(loaded->config.recorder, std::move(loaded->masks), *d.store, d.audit.get(),
                                    clock, recorderOptions);
        // Destroyed before the recorder: the supervisor's thread answers the endpoint's questions
        // (the mask hash, stills) from the recorder, so it must stop first. A sanitized run
        // caught it reading a destroyed recorder at shutdown.
        struct StopEndpoint {
            Daemon& d;
            ~StopEndpoint() {
                if (d.endpoint) d.endpoint->stop();
            }
        } stopEndpoint{d};
        startServices(d, *loaded, *options, recorder, clock);
        return daemon::runRecorder(recorder, &notifier);
    } catch (const std::exception& e) {
        common::logError("mimamorid", "cannot start: {}", e.what());
        return 1;
    }
}

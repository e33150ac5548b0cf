// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori fleet collect`: every camera's new audit lines and health record into the city's archive.
#include "cli.hpp"

#include "mimamori/city/archive.hpp"
#include "mimamori/city/fleet.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/retrieval/city_log.hpp"
#include "mimamori/retrieval/client.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mimamori::cli {
namespace {

// At most this many answers per camera and run (each up to 4 MiB of lines): a camera that
// keeps saying "more follows" cannot keep a worker forever.
constexpr int kMaxAnswersPerCamera = 1000;

// What one camera's collection came to: one row of the summary table.
struct Outcome {
    bool reached = false;           // at least one answer opened and verified
    std::uint64_t stored = 0;       // entries appended to the archive in this run
    std::uint64_t unsignedTail = 0; // entries after the camera's last checkpoint: not stored yet
    std::string problem;            // empty: none; else one line, already escaped for display
};

// Parses a whole number in [low, high] for `option`, or throws UsageError.
int wholeNumber(const std::string& text, const char* option, int low, int high) {
    int value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr != text.data() + text.size() || value < low || value > high)
        throw UsageError(fmt::format("{}: a whole number from {} to {}", option, low, high));
    return value;
}

// One camera: ask for what follows the archive's end until the camera says it has sent
// everything up to its checkpoint, storing each answer's verified, signed lines before asking
// again. Never throws: anything that goes wrong is this camera's problem, not the run's.
Outcome collectOne(const city::FleetCamera& camera, const std::filesystem::path& archiveDir,
                   const policy::SecretKey& cityKey, const common::Clock& clock,
                   const retrieval::CityLogClientOptions& options) {
    Outcome out;
    try {
        const policy::PublicKey key = policy::loadPublicKey(camera.keyFile);
        // A wrong file in FLEET.json is the city's mistake, not the camera log's: not recorded.
        if (key.role != policy::Role::Camera)
            throw std::runtime_error(fmt::format("{}: a {} key, not a camera key", camera.keyFile.string(),
                                                 policy::roleName(key.role)));
        city::CameraArchive archive(archiveDir, camera.id);
        for (int answers = 0; answers < kMaxAnswersPerCamera; ++answers) {
            const auto answer =
                retrieval::collectCityLog(camera.url, camera.id, key, cityKey, archive.end().seq, clock, options);
            // Once an answer verified with the key: the archive keeps that key (so a camera never
            // reached gets no folder), or says that it was replaced.
            if (!out.reached) {
                if (std::string replaced = archive.adoptKey(key); !replaced.empty()) {
                    archive.recordProblem(replaced, clock.nowUtc());
                    out.problem = common::escapeControls(replaced);
                    return out;
                }
            }
            out.reached = true;
            std::string lines;
            for (const auto& line : answer.lines) (lines += line) += '\n';
            const city::IngestResult result = archive.ingest(lines, answer.checkpoint, clock.nowUtc(), answer.complete);
            if (!result.problem.empty()) {  // ingest wrote it to the camera's problems file, and nothing else
                out.problem = common::escapeControls(result.problem);
                return out;
            }
            if (!answer.health.empty()) archive.storeHealth(answer.health, clock.nowUtc());
            out.stored += result.stored;
            out.unsignedTail = result.unsignedTail;
            if (answer.complete) return out;
            if (result.stored == 0) {
                // More follows, but no checkpoint among these lines to store them by: asking
                // again would bring the same answer.
                out.problem = fmt::format("the camera sends {} lines after entry {} without a checkpoint among them",
                                          answer.lines.size(), answer.afterSeq);
                return out;
            }
        }
        out.problem = fmt::format("more than {} answers in one run; run again to continue", kMaxAnswersPerCamera);
    } catch (const retrieval::FetchError& e) {
        out.problem = e.what();  // unreachable, too slow, refused, or an answer that does not verify; escaped
    } catch (const std::exception& e) {
        out.problem = common::escapeControls(e.what());
    }
    return out;
}

// Cameras done / total on stderr: a bar redrawn in place on a terminal, else one line per camera.
class Progress {
public:
    explicit Progress(std::size_t total) : total_(total), terminal_(::isatty(STDERR_FILENO) == 1) {
        if (terminal_) draw();
    }
    void done(const city::FleetCamera& camera, const Outcome& outcome) {
        const std::lock_guard lock(mutex_);
        ++done_;
        if (terminal_) {
            draw();
            return;
        }
        fmt::print(stderr, "fleet collect: {}/{} {}: {}\n", done_, total_, camera.id,
                   outcome.problem.empty() ? "collected" : "problem");
    }

private:
    void draw() const {
        constexpr std::size_t kWidth = 40;
        const std::size_t filled = total_ == 0 ? kWidth : done_ * kWidth / total_;
        fmt::print(stderr, "\r[{}{}] {}/{} cameras{}", std::string(filled, '#'), std::string(kWidth - filled, '.'),
                   done_, total_, done_ == total_ ? "\n" : "");
    }

    const std::size_t total_;
    const bool terminal_;
    std::size_t done_ = 0;
    std::mutex mutex_;
};

int runCollect(const Args& args) {
    args.expectPositionals(0, "");
    const int jobs = wholeNumber(args.option("--jobs").value_or("16"), "--jobs", 1, 256);
    retrieval::CityLogClientOptions options;
    options.insecureHttp = args.flag("--insecure-http");
    options.exchangeTimeoutSeconds = wholeNumber(args.option("--timeout").value_or("120"), "--timeout", 1, 3600);
    options.connectTimeoutSeconds = std::min(options.connectTimeoutSeconds, options.exchangeTimeoutSeconds);

    const auto fleet = city::loadFleet(args.required("--fleet"));
    const policy::SecretKey cityKey = policy::loadSecretKey(args.required("--key"));
    if (cityKey.role() != policy::Role::City)
        throw std::runtime_error(fmt::format("{}: a {} key, not a city key", args.required("--key"),
                                             policy::roleName(cityKey.role())));
    (void)cityKey.boxPublic();  // throws KeyError saying why for an older city key: no camera can answer it
    const std::filesystem::path archiveDir = args.required("--archive");
    std::filesystem::create_directories(archiveDir);
    const common::SystemClock clock;
    ignoreBrokenConnections();  // a camera that resets fails its own collection, not the run

    // Each worker takes the next camera: an unreachable or slow camera holds only its own
    // worker, for at most the client's timeouts per answer.
    std::vector<Outcome> outcomes(fleet.size());
    std::atomic<std::size_t> next{0};
    Progress progress(fleet.size());
    {
        std::vector<std::jthread> workers;
        const auto count = std::min(static_cast<std::size_t>(jobs), fleet.size());
        for (std::size_t w = 0; w < count; ++w)
            workers.emplace_back([&] {
                for (std::size_t i = next++; i < fleet.size(); i = next++) {
                    outcomes[i] = collectOne(fleet[i], archiveDir, cityKey, clock, options);
                    progress.done(fleet[i], outcomes[i]);
                }
            });
    }  // joins every worker

    std::size_t idWidth = 6;  // "camera"
    for (const auto& camera : fleet) idWidth = std::max(idWidth, camera.id.size());
    fmt::print("{:<{}}  {:<7}  {:>11}  {:>13}  {}\n", "camera", idWidth, "reached", "new entries", "unsigned tail",
               "problems");
    std::size_t problems = 0, reached = 0;
    std::uint64_t stored = 0;
    for (std::size_t i = 0; i < fleet.size(); ++i) {
        const Outcome& o = outcomes[i];
        problems += o.problem.empty() ? 0 : 1;
        reached += o.reached ? 1 : 0;
        stored += o.stored;
        fmt::print("{:<{}}  {:<7}  {:>11}  {:>13}  {}\n", fleet[i].id, idWidth, o.reached ? "yes" : "no", o.stored,
                   o.unsignedTail, o.problem.empty() ? "-" : o.problem);
    }
    fmt::print("{} cameras: {} reached, {} new entries, {} with a problem\n", fleet.size(), reached, stored, problems);
    return problems > 0 ? 1 : 0;
}

const Registrar collectCommand(Command{
    "fleet", "collect", "collect every camera's new audit lines and health record into the city's archive",
    "usage: mimamori fleet collect --fleet FLEET.json --key CITY_SECRET --archive DIR [--jobs N]\n"
    "                              [--timeout SECONDS] [--insecure-http]\n"
    "\n"
    "Asks each camera of FLEET.json over its city-only log route, signed with the city key, for\n"
    "the audit lines after the archive's last entry and for its health record (docs/fleet.md).\n"
    "Every new line is verified against the archived chain and the camera's checkpoints before\n"
    "it is stored; a camera whose log no longer extends the archive (cut back, rewritten, key\n"
    "replaced) is a problem, written to its problems file, and nothing of the archive is\n"
    "overwritten. The health record is kept, one per day.\n"
    "\n"
    "  --fleet FILE       the cameras: id, URL, public key file (docs/fleet.md)\n"
    "  --key FILE         the city's secret key (with its X25519 part)\n"
    "  --archive DIR      the archive (created)\n"
    "  --jobs N           cameras collected at once, 1 to 256 (default 16)\n"
    "  --timeout SECONDS  per answer, from before connecting to its last byte (default\n"
    "                     120); a connection attempt under way then ends first (TCP and\n"
    "                     TLS at most 10 s each)\n"
    "  --insecure-http    allow http:// URLs (tests only)\n"
    "\n"
    "Prints the cameras done on stderr (a bar on a terminal, else a line per camera) and a\n"
    "table on stdout: camera, reached, new entries, unsigned tail, problems.\n"
    "\n"
    "exit status: 0 every camera collected, 1 a camera with a problem or the run could not\n"
    "start, 2 bad usage\n",
    {"--fleet", "--key", "--archive", "--jobs", "--timeout"},
    {"--insecure-http"},
    runCollect});

}  // namespace
}  // namespace mimamori::cli

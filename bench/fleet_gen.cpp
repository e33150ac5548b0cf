// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// A realistic fiscal year for a fleet, written by each camera's real audit log and collected into
// an archive through the archive's verifying ingest (docs/fleet.md). Prints the collect
// benchmark: lines verified per second against reading the same bytes.
//
//   fleet_gen --out ARCHIVE [--cameras 1475] [--year 2025] [--provisions 300] [--refusals 120]
//             [--broken 0] [--scratch /dev/shm] [--seed 1]
#include "mimamori/city/archive.hpp"
#include "mimamori/city/fiscal_year.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace mimamori;
using common::UtcMicros;
using policy::AuditFields;

constexpr UtcMicros kDay = common::kMicrosPerDay;
constexpr UtcMicros kHour = 3600 * common::kMicrosPerSecond;

struct Event {
    UtcMicros time;
    std::string type;
    AuditFields fields;
};

struct Options {
    std::filesystem::path out;
    std::filesystem::path scratch = "/dev/shm";
    int cameras = 1475;
    int year = 2025;
    int provisions = 300;
    int refusals = 120;
    int broken = 0;
    std::uint64_t seed = 1;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string name = argv[i], value = argv[i + 1];
        if (name == "--out") o.out = value;
        else if (name == "--scratch") o.scratch = value;
        else if (name == "--cameras") o.cameras = std::stoi(value);
        else if (name == "--year") o.year = std::stoi(value);
        else if (name == "--provisions") o.provisions = std::stoi(value);
        else if (name == "--refusals") o.refusals = std::stoi(value);
        else if (name == "--broken") o.broken = std::stoi(value);
        else if (name == "--seed") o.seed = std::stoull(value);
        else throw std::runtime_error("unknown option " + name);
    }
    if (o.out.empty()) throw std::runtime_error("usage: fleet_gen --out ARCHIVE [--cameras N] ...");
    return o;
}

std::string t(UtcMicros v) { return common::formatUtc(v); }

// The fleet's rare events (provisions, refusals, mask changes, gaps), each on a random camera.
std::map<int, std::vector<Event>> rareEvents(const Options& o, const city::FiscalYearRange& range, std::mt19937_64& rng) {
    std::map<int, std::vector<Event>> byCamera;
    std::uniform_int_distribution<int> camera(0, o.cameras - 1);
    std::uniform_int_distribution<UtcMicros> when(range.begin + kDay, range.end - kDay);
    const std::vector<std::string> bodies = {"兵庫県警察加古川警察署", "兵庫県警察高砂警察署", "兵庫県警察本部刑事部",
                                             "神戸地方検察庁姫路支部", "加古川市消防本部"};
    std::uniform_int_distribution<std::size_t> body(0, bodies.size() - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    for (int i = 0; i < o.provisions; ++i) {
        const UtcMicros at = when(rng);
        const int p = percent(rng);
        const char* ground = p < 85 ? "criminal-investigation" : p < 95 ? "emergency" : "law";
        const std::string id = fmt::format("{:032x}", rng());
        auto& ev = byCamera[camera(rng)];
        ev.push_back({at, "request_received", {{"request_id", id}, {"bytes", std::int64_t{1100}}, {"remote", std::string("10.20.0.7")}}});
        ev.push_back({at, "request_granted",
                      {{"request_id", id}, {"ground", std::string(ground)}, {"article", std::string("Art. 7(1)")},
                       {"reference", fmt::format("加古川署刑第{}号", i + 1000)}, {"purpose", std::string("捜査")},
                       {"body", bodies[body(rng)]}, {"officer", std::string("警部補 山田")}, {"police_key", std::string("kakogawa-ps")},
                       {"approver", std::string("city-office")}, {"from", t(at - 2 * kDay)}, {"to", t(at - 2 * kDay + 600 * common::kMicrosPerSecond)}}});
        ev.push_back({at + 600 * common::kMicrosPerSecond, "extract_delivered",
                      {{"request_id", id}, {"bytes", std::int64_t{73'000'000}}, {"sealed_bytes", std::int64_t{73'001'000}},
                       {"actual_from", t(at - 2 * kDay)}, {"actual_to", t(at - 2 * kDay + 600 * common::kMicrosPerSecond)},
                       {"remote", std::string("10.20.0.7")}}});
    }
    const std::vector<std::string> reasons = {"disclosure_request", "expired", "unknown_police_key", "range_not_held",
                                              "no_approval"};
    std::uniform_int_distribution<std::size_t> reason(0, reasons.size() - 1);
    for (int i = 0; i < o.refusals; ++i)
        byCamera[camera(rng)].push_back(
            {when(rng), "request_refused",
             {{"request_id", fmt::format("{:032x}", rng())}, {"reason", reasons[reason(rng)]}, {"text", std::string("refused")}}});
    for (int i = 0; i < o.cameras / 3; ++i)
        byCamera[camera(rng)].push_back({when(rng), "mask_changed", {{"old_hash", std::string(64, 'a')}, {"new_hash", std::string(64, 'b')}, {"masks", std::int64_t{4}}}});
    for (int i = 0; i < o.cameras * 2; ++i) {
        const UtcMicros start = when(rng);
        byCamera[camera(rng)].push_back({start, "recording_gap",
                                         {{"start", t(start)}, {"reason", std::string("source lost: Could not read from resource")},
                                          {"end", t(start + (1 + percent(rng)) * 60 * common::kMicrosPerSecond)}}});
    }
    return byCamera;
}

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int main(int argc, char** argv) try {
    const Options o = parse(argc, argv);
    const auto range = city::fiscalYearRange(o.year);
    std::mt19937_64 rng(o.seed);
    auto rare = rareEvents(o, range, rng);
    std::filesystem::create_directories(o.out);
    const auto scratch = o.scratch / fmt::format("fleet-gen-{}", ::getpid());
    std::filesystem::create_directories(scratch);

    std::uint64_t lines = 0, bytes = 0;
    std::chrono::steady_clock::duration ingestTime{}, readTime{};
    for (int cam = 0; cam < o.cameras; ++cam) {
        const std::string id = fmt::format("kakogawa-{:04}", cam + 1);
        const auto key = policy::generateKey(policy::Role::Camera, id);
        std::vector<Event> events = std::move(rare[cam]);
        events.push_back({range.begin + kHour, "daemon_start",
                          {{"version", std::string("0.1.0")}, {"camera", id}, {"mask_hash", std::string(64, 'a')}, {"retention_days", std::int64_t{12}}}});
        // Steady state: one retention run and one key advance per day, a checkpoint each night.
        for (UtcMicros day = range.begin + kDay; day < range.end; day += kDay) {
            events.push_back({day + 2 * kHour, "retention_deleted",
                              {{"segments", std::int64_t{8640}}, {"bytes", std::int64_t{10'600'000'000}},
                               {"from", t(day - 13 * kDay)}, {"to", t(day - 12 * kDay)}, {"reason", std::string("age")}}});
            events.push_back({day + 2 * kHour, "key_advanced", {{"advances", std::int64_t{1}}}});
            events.push_back({day + 3 * kHour, "checkpoint", {}});
        }
        std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.time < b.time; });

        const auto logPath = scratch / (id + ".log");
        {
            common::ManualClock clock(range.begin);
            policy::AuditLog log(logPath, key, clock, {.checkpointEvery = 64, .statePath = {}, .legacyFile = {}});
            for (const auto& e : events) {
                clock.stepWall(e.time - clock.nowUtc());
                if (e.type == "checkpoint")
                    (void)log.checkpoint();
                else
                    log.append(e.type, e.fields);
            }
            clock.stepWall(range.end - kHour - clock.nowUtc());
            log.close();
        }
        const auto cp = policy::verifyAuditLog(logPath, key.publicKey().signKey).lastCheckpoint.value();

        // The collect benchmark: read the bytes (the floor), then verify and store them.
        const auto r0 = std::chrono::steady_clock::now();
        std::string text;  // the log's files (one per fiscal year) as the camera's route sends them
        for (const auto& file : policy::auditLogFiles(logPath)) text += common::readFile(file);
        const auto r1 = std::chrono::steady_clock::now();
        city::CameraArchive archive(o.out, id);
        if (const auto problem = archive.adoptKey(key.publicKey()); !problem.empty()) throw std::runtime_error(problem);
        const auto result = archive.ingest(text, cp, range.end);
        const auto r2 = std::chrono::steady_clock::now();
        if (!result.problem.empty()) throw std::runtime_error(id + ": " + result.problem);
        readTime += r1 - r0;
        ingestTime += r2 - r1;
        lines += result.stored;
        bytes += text.size();
        archive.storeHealth(fmt::format(R"({{"format":"mimamori-health-1","camera_id":"{}","updated":"{}","gaps":[]}})",
                                        id, t(range.end - kHour)),
                            range.end - kHour);
        if (cam < o.broken)
            archive.recordProblem("the camera's log no longer extends the archive (cut back, rewritten or replaced) "
                                  "after entry 100 (simulated by fleet_gen)",
                                  range.end);
        std::filesystem::remove_all(logPath);  // the log's directory
        if ((cam + 1) % 100 == 0) fmt::print(stderr, "{} cameras\n", cam + 1);
    }
    std::filesystem::remove_all(scratch);
    fmt::print("cameras {}  lines {}  bytes {}\n", o.cameras, lines, bytes);
    fmt::print("verify+store {:.3f} s = {:.0f} lines/s; read the same bytes {:.3f} s = {:.0f} lines/s; ratio {:.1f}x\n",
               seconds(ingestTime), static_cast<double>(lines) / seconds(ingestTime), seconds(readTime),
               static_cast<double>(lines) / seconds(readTime), seconds(ingestTime) / seconds(readTime));
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "fleet_gen: {}\n", e.what());
    return 1;
}

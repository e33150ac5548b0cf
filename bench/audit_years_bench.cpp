// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's audit log over the years (issue 11): a realistic camera log written through the
// audit log's own API with an injectable clock, its size per fiscal year, and the time the
// camera takes to open it after 5 years against after 1 (start-up reads only from the last
// checkpoint, so the two must be alike), beside a full verification of each for contrast.
//
//   audit_years_bench [--dir /dev/shm] [--years 5] [--opens 50] [--seed 1]
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace mimamori;
using common::kMicrosPerDay;
using common::kMicrosPerSecond;
using common::UtcMicros;
namespace fs = std::filesystem;

constexpr UtcMicros kHour = 3600 * kMicrosPerSecond;

struct Options {
    fs::path dir = "/dev/shm";
    int years = 5;
    int opens = 50;
    std::uint64_t seed = 1;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string name = argv[i], value = argv[i + 1];
        if (name == "--dir") o.dir = value;
        else if (name == "--years") o.years = std::stoi(value);
        else if (name == "--opens") o.opens = std::stoi(value);
        else if (name == "--seed") o.seed = std::stoull(value);
        else throw std::runtime_error("usage: audit_years_bench [--dir DIR] [--years N] [--opens N] [--seed N]");
    }
    if (o.years < 1 || o.opens < 1) throw std::runtime_error("--years and --opens: at least 1");
    return o;
}

std::string t(UtcMicros v) { return common::formatUtc(v); }
std::string hex(std::mt19937_64& rng, int digits) {
    std::string s;
    while (static_cast<int>(s.size()) < digits) s += fmt::format("{:016x}", rng());
    return s.substr(0, static_cast<std::size_t>(digits));
}

// `days` days of one camera in steady state from `start`, as the daemon writes them: the day
// shredded at 02:00, the city's collection at 09:00 (its checkpoint, then logs_collected), and
// at random about 4 police requests a month (each received, then granted and delivered, or
// refused), 2 disclosure refusals a year, a recording gap a month, a restart a month
// (daemon_stop, daemon_start) and a mask change a year.
void writeDays(policy::AuditLog& log, common::ManualClock& clock, UtcMicros start, int days, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> chance(0, 1);
    const auto at = [&](UtcMicros when) { clock.stepWall(when - clock.nowUtc()); };
    for (int d = 0; d < days; ++d) {
        const UtcMicros day = start + d * kMicrosPerDay;
        at(day + 2 * kHour);
        log.append(policy::audit::kDayShredded, {{"day", t(day - 13 * kMicrosPerDay).substr(0, 10)},
                                                 {"segments", std::int64_t{8640}},
                                                 {"bytes", std::int64_t{10'617'000'000}},
                                                 {"reasons", std::string("retention")}});
        if (chance(rng) < 12.0 / 365) {
            at(day + 4 * kHour);
            log.append(policy::audit::kDaemonStop, {});
            at(day + 4 * kHour + 40 * kMicrosPerSecond);
            log.append(policy::audit::kDaemonStart, {{"version", std::string("0.1.0")},
                                                     {"camera", std::string("kakogawa-0412")},
                                                     {"mask_hash", hex(rng, 64)},
                                                     {"retention_days", std::int64_t{12}}});
        }
        if (chance(rng) < 12.0 / 365) {
            const UtcMicros gap = day + 5 * kHour;
            at(gap + 90 * kMicrosPerSecond);
            log.append(policy::audit::kRecordingGap, {{"start", t(gap)},
                                                      {"end", t(gap + 90 * kMicrosPerSecond)},
                                                      {"reason", std::string("source lost: Could not read from resource")}});
        }
        at(day + 9 * kHour);
        const auto checkpoint = log.checkpoint();
        log.append(policy::audit::kLogsCollected, {{"city_key", std::string("kakogawa-city")},
                                                   {"key_id", hex(rng, 16)},
                                                   {"from_seq", static_cast<std::int64_t>(checkpoint.seq) - 5},
                                                   {"to_seq", static_cast<std::int64_t>(checkpoint.seq)},
                                                   {"checkpoint", checkpoint.toString()},
                                                   {"complete", true},
                                                   {"request_sha256", hex(rng, 64)},
                                                   {"remote", std::string("10.20.0.2:51514")}});
        const bool request = chance(rng) < 48.0 / 365;
        const bool disclosure = chance(rng) < 2.0 / 365;
        if (request || disclosure) {
            const std::string id = hex(rng, 32), sha = hex(rng, 64);
            at(day + 14 * kHour);
            log.append(policy::audit::kRequestReceived, {{"request_id", id},
                                                         {"bytes", std::int64_t{1180}},
                                                         {"request_sha256", sha},
                                                         {"remote", std::string("10.20.0.7:40112")}});
            if (disclosure || chance(rng) < 0.2) {
                log.append(policy::audit::kRequestRefused,
                           {{"request_id", id},
                            {"request_sha256", sha},
                            {"reason", std::string(disclosure ? "disclosure_request" : "expired")},
                            {"text", std::string(disclosure ? "disclosure requests are refused (ordinance Art. 8)"
                                                            : "the request expired")}});
            } else {
                const UtcMicros from = day - 2 * kMicrosPerDay + 17 * kHour;
                log.append(policy::audit::kRequestGranted, {{"request_id", id},
                                                            {"request_sha256", sha},
                                                            {"ground", std::string("criminal-investigation")},
                                                            {"article", std::string("Art. 7(1)(3)")},
                                                            {"reference", std::string("加古川署刑第1234号")},
                                                            {"purpose", std::string("窃盗事件の捜査")},
                                                            {"body", std::string("兵庫県警察加古川警察署")},
                                                            {"officer", std::string("警部補 山田太郎")},
                                                            {"police_key", std::string("hyogo-kakogawa-1")},
                                                            {"approver", std::string("kakogawa-city")},
                                                            {"from", t(from)},
                                                            {"to", t(from + 600 * kMicrosPerSecond)}});
                at(day + 14 * kHour + 300 * kMicrosPerSecond);
                log.append(policy::audit::kExtractDelivered, {{"request_id", id},
                                                              {"request_sha256", sha},
                                                              {"bytes", std::int64_t{73'400'000}},
                                                              {"sha256", hex(rng, 64)},
                                                              {"sealed_bytes", std::int64_t{73'420'000}},
                                                              {"actual_from", t(from)},
                                                              {"actual_to", t(from + 600 * kMicrosPerSecond)},
                                                              {"remote", std::string("10.20.0.7:40118")}});
            }
        }
        if (chance(rng) < 1.0 / 365) {
            at(day + 15 * kHour);
            log.append(policy::audit::kMaskChanged,
                       {{"old_hash", hex(rng, 64)}, {"new_hash", hex(rng, 64)}, {"masks", std::int64_t{5}}});
        }
    }
}

struct Opened {
    double medianMicros = 0;
    std::uint64_t linesVerified = 0;
    std::uint64_t entries = 0;
};

// Opens the log `opens` times as the daemon does at start (the key and clock it uses) and
// returns the median time of the constructor. The log ends with a checkpoint, so opening and
// closing it again writes nothing.
Opened timeOpens(const fs::path& dir, const policy::SecretKey& key, const common::Clock& clock, int opens) {
    std::vector<double> micros;
    Opened o;
    for (int i = 0; i < opens; ++i) {
        const auto start = std::chrono::steady_clock::now();
        const policy::AuditLog log(dir, key, clock);
        micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
        o.linesVerified = log.recovery().linesVerified;
        o.entries = log.recovery().entries;
    }
    std::sort(micros.begin(), micros.end());
    o.medianMicros = micros[micros.size() / 2];
    return o;
}

double timeVerify(const fs::path& dir, const policy::SecretKey& key) {
    const auto start = std::chrono::steady_clock::now();
    const auto result = policy::verifyAuditLog(dir, key.publicKey().signKey);
    if (!result.ok) throw std::runtime_error(fmt::format("{}: does not verify: {}", dir.string(), result.reason));
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) try {
    const Options o = parse(argc, argv);
    const policy::SecretKey key = policy::generateKey(policy::Role::Camera, "kakogawa-0412");
    const fs::path root = o.dir / fmt::format("audit-years-{}", ::getpid());
    const UtcMicros start = *common::parseUtc("2025-03-31T15:00:00Z");  // FY2025 begins (JST)
    const fs::path oneYear = root / "one-year", manyYears = root / "many-years";

    // The same camera history twice, cut after 1 year and after N: the two logs differ only in age.
    for (const auto& [dir, years] : {std::pair{oneYear, 1}, std::pair{manyYears, o.years}}) {
        std::mt19937_64 rng(o.seed);
        common::ManualClock clock(start);
        policy::AuditLog log(dir, key, clock);
        log.append(policy::audit::kDaemonStart, {{"version", std::string("0.1.0")},
                                                 {"camera", std::string("kakogawa-0412")},
                                                 {"mask_hash", hex(rng, 64)},
                                                 {"retention_days", std::int64_t{12}}});
        for (int y = 0; y < years; ++y) {  // each fiscal year whole, 365 or 366 days
            const auto begin = *common::parseUtc(fmt::format("{}-03-31T15:00:00Z", 2025 + y));
            const auto end = *common::parseUtc(fmt::format("{}-03-31T15:00:00Z", 2026 + y));
            writeDays(log, clock, begin, static_cast<int>((end - begin) / kMicrosPerDay), rng);
        }
        log.close();
    }

    fmt::print("camera log per fiscal year (steady state, {}):\n", root.string());
    std::uintmax_t total = 0;
    std::size_t totalEntries = 0;
    for (const auto& file : policy::auditLogFiles(manyYears)) {
        const auto entries = policy::readAuditLog(file).size();
        total += fs::file_size(file);
        totalEntries += entries;
        fmt::print("  {}  {:>7} entries  {:>9} bytes  ({:.1f} entries a day)\n", file.filename().string(), entries,
                   fs::file_size(file), static_cast<double>(entries) / 365.0);
    }
    fmt::print("  {} years: {} entries, {} bytes\n", o.years, totalEntries, total);

    // Opened at the end of the time each log covers, as a camera restarting then would.
    const common::ManualClock endOfOne(*common::parseUtc("2026-03-31T14:00:00Z"));
    const common::ManualClock endOfMany(*common::parseUtc(fmt::format("{}-03-31T14:00:00Z", 2025 + o.years)));
    const Opened one = timeOpens(oneYear, key, endOfOne, o.opens);
    const Opened many = timeOpens(manyYears, key, endOfMany, o.opens);
    fmt::print("open (median of {}): after 1 year {:.0f} us ({} entries, {} line(s) verified); after {} years {:.0f} us "
               "({} entries, {} line(s) verified); ratio {:.2f}x\n",
               o.opens, one.medianMicros, one.entries, one.linesVerified, o.years, many.medianMicros, many.entries,
               many.linesVerified, many.medianMicros / one.medianMicros);
    const double verifyOne = timeVerify(oneYear, key), verifyMany = timeVerify(manyYears, key);
    fmt::print("full verification for contrast (audit verify): after 1 year {:.1f} ms; after {} years {:.1f} ms; "
               "ratio {:.2f}x\n",
               verifyOne, o.years, verifyMany, verifyMany / verifyOne);
    fs::remove_all(root);
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "audit_years_bench: {}\n", e.what());
    return 1;
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori ring ls|verify`: what the encrypted ring on the card holds, and whether all of it is sound.
#include "cli.hpp"

#include "mimamori/common/time.hpp"
#include "mimamori/daemon/config.hpp"
#include "mimamori/store/segment_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace mimamori::cli {
namespace {

using common::kMicrosPerSecond;
using common::UtcMicros;

// Footage closer than this to the previous segment's end is continuous (segments are cut on
// keyframes, so consecutive segments meet within a frame).
constexpr UtcMicros kGapTolerance = kMicrosPerSecond;

std::string duration(UtcMicros micros) {
    const char* sign = micros < 0 ? "-" : "";
    if (micros < 0) micros = -micros;
    const std::int64_t s = micros / kMicrosPerSecond;
    if (s >= 86400) return fmt::format("{}{}d {:02}h{:02}m", sign, s / 86400, s / 3600 % 24, s / 60 % 60);
    if (s >= 3600) return fmt::format("{}{}h{:02}m{:02}s", sign, s / 3600, s / 60 % 60, s % 60);
    if (s >= 60) return fmt::format("{}{}m{:02}s", sign, s / 60, s % 60);
    return fmt::format("{}{}.{:01}s", sign, s, micros % kMicrosPerSecond / 100000);
}

std::string bytes(std::uint64_t b) {
    if (b >= (1ULL << 30)) return fmt::format("{} ({:.2f} GiB)", b, static_cast<double>(b) / (1ULL << 30));
    if (b >= (1ULL << 20)) return fmt::format("{} ({:.1f} MiB)", b, static_cast<double>(b) / (1ULL << 20));
    return fmt::format("{}", b);
}

std::unique_ptr<store::SegmentStore> openRing(const Args& args, recorder::RecorderConfig& config,
                                                 const common::Clock& clock) {
    args.expectPositionals(0, "");
    config = daemon::loadDaemonConfig(args.required("--config")).recorder;
    // Read-only: the daemon may be recording; its partial segment is left alone.
    return store::SegmentStore::openReadOnly(config.store, clock);
}

int runLs(const Args& args) {
    common::SystemClock clock;
    recorder::RecorderConfig config;
    const auto store = openRing(args, config, clock);
    const auto segments = store->all();
    const auto usage = store->usage();

    struct Gap {
        UtcMicros from, to;
    };
    std::vector<Gap> gaps;
    std::size_t clockSteps = 0, recovered = 0;
    UtcMicros covered = 0;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        const auto& s = segments[i];
        covered += std::max<UtcMicros>(0, s.end - s.start);
        recovered += s.recovered ? 1 : 0;
        if (i == 0) continue;
        const auto& prev = segments[i - 1];
        if (s.start - prev.end > kGapTolerance) gaps.push_back({prev.end, s.start});
        // A later segment labelled before the previous one ended: the wall clock stepped back.
        if (prev.end - s.start > kGapTolerance) ++clockSteps;
    }

    fmt::print("ring        {} (camera {})\n", config.store.storageDir.string(), config.store.cameraId);
    fmt::print("segments    {}{}{}\n", segments.size(),
               recovered ? fmt::format(", {} recovered after an interruption", recovered) : "",
               usage.partial ? fmt::format(", {} being written", usage.partial) : "");
    fmt::print("bytes       {}\n", bytes(usage.bytes));
    if (usage.oldest && usage.newest) {
        fmt::print("oldest      {}\n", common::formatUtcAndJst(*usage.oldest));
        fmt::print("newest      {}\n", common::formatUtcAndJst(*usage.newest));
        fmt::print("coverage    {} of footage over a span of {}\n", duration(covered),
                   duration(*usage.newest - *usage.oldest));
    } else {
        fmt::print("oldest      -\nnewest      -\ncoverage    none\n");
    }
    UtcMicros gapTotal = 0;
    for (const auto& g : gaps) gapTotal += g.to - g.from;
    fmt::print("gaps        {}{}\n", gaps.size(), gaps.empty() ? "" : fmt::format(", {} in all", duration(gapTotal)));
    auto largest = gaps;
    std::sort(largest.begin(), largest.end(), [](const Gap& a, const Gap& b) { return a.to - a.from > b.to - b.from; });
    const bool listAll = args.flag("--segments");
    for (std::size_t i = 0; i < largest.size() && (listAll || i < 5); ++i)
        fmt::print("            {} .. {} ({})\n", common::formatUtcAndJst(largest[i].from), common::formatUtcAndJst(largest[i].to),
                   duration(largest[i].to - largest[i].from));
    if (!listAll && largest.size() > 5) fmt::print("            ... {} more (--segments lists all)\n", largest.size() - 5);
    if (clockSteps) fmt::print("clock steps {} (segments labelled before their predecessor ended)\n", clockSteps);
    fmt::print("capacity    {}{}\n", bytes(usage.capacityBytes),
               config.store.byteLimit ? " (byte limit)" : " (free space above the floor)");
    if (usage.daysCapacityHolds > 0)
        fmt::print("holds       {:.1f} days at the recent bitrate; retention {} days{}\n", usage.daysCapacityHolds,
                   config.store.retentionDays,
                   usage.daysCapacityHolds < config.store.retentionDays ? " — RETENTION SHORTFALL" : "");
    else
        fmt::print("holds       unknown (no footage yet); retention {} days\n", config.store.retentionDays);
    for (const auto& f : store->openFindings()) fmt::print("finding     {}\n", f);

    if (listAll) {
        fmt::print("\n{:>16}  {:<27} {:<27} {:>10} {:>12}  {}\n", "sequence", "start", "end", "length", "bytes", "file");
        for (const auto& s : segments)
            fmt::print("{:>16}  {:<27} {:<27} {:>10} {:>12}  {}{}\n", s.sequence, common::formatUtc(s.start),
                       common::formatUtc(s.end), duration(s.end - s.start), s.bytesOnDisk,
                       s.path.filename().string(), s.recovered ? " (recovered)" : "");
    }
    return 0;
}

int runVerify(const Args& args) {
    common::SystemClock clock;
    recorder::RecorderConfig config;
    const auto store = openRing(args, config, clock);
    const auto segments = store->all();
    std::size_t bad = 0;
    std::uint64_t plaintextBytes = 0;
    for (const auto& s : segments) {
        // The plaintext is counted and dropped: verify never writes footage anywhere.
        const auto read = store->read(s, [&](std::span<const std::uint8_t> b) { plaintextBytes += b.size(); });
        if (!read) {
            ++bad;
            // The error text starts with the file name.
            fmt::print("BAD  {}\n", read.error());
        }
    }
    // Files the read-only open could not list are bad too.
    for (const auto& f : store->openFindings()) {
        ++bad;
        fmt::print("BAD  {}\n", f);
    }
    const auto usage = store->usage();
    fmt::print("verified {} segments, {} of video authenticated; {} bad{}\n", segments.size(), bytes(plaintextBytes),
               bad, usage.partial ? fmt::format("; {} being written (not checked)", usage.partial) : "");
    return bad == 0 ? 0 : 1;
}

const Registrar lsCommand(Command{
    "ring", "ls", "show what the encrypted ring holds: coverage, gaps, bytes, days the capacity holds",
    "usage: mimamori ring ls --config FILE [--segments]\n\n"
    "Lists the encrypted segment ring of the camera configured in FILE (read-only; safe while\n"
    "mimamorid records): segment count, bytes, oldest and newest footage, coverage and gaps,\n"
    "and how many days the capacity holds at the recent bitrate. --segments lists every\n"
    "segment and every gap. Nothing is decrypted.\n"
    "\nexit status: 0 shown, 1 unreadable config or ring, 2 bad usage\n",
    {"--config"},
    {"--segments"},
    runLs});

const Registrar verifyCommand(Command{
    "ring", "verify", "decrypt and authenticate every segment; exit 1 if any is bad",
    "usage: mimamori ring verify --config FILE\n\n"
    "Decrypts and authenticates every segment of the ring configured in FILE, chunk by chunk,\n"
    "and throws the plaintext away. Names each bad segment (tampered, truncated, undecryptable).\n"
    "Segments being written are not checked.\n"
    "\nexit status: 0 every segment is sound, 1 any is not (or the ring is unreadable), 2 bad usage\n",
    {"--config"},
    {},
    runVerify});

}  // namespace
}  // namespace mimamori::cli

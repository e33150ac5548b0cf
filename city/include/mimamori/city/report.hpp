// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The yearly operating report (ordinance Art. 9): figures from the archive, and their three
// renderings (docs/report.md).
#pragma once

#include "mimamori/city/fiscal_year.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace mimamori::city {

// The three grounds of Art. 7(1), in the order of the ordinance: law, emergency, criminal-investigation.
constexpr std::array<const char*, 3> kGrounds = {"law", "emergency", "criminal-investigation"};

struct ReportGap {
    UtcMicros start = 0;
    UtcMicros end = 0;
    bool endKnown = true;   // false: the log and the health records do not say; counted until the period ends
    std::string reason;
};

// Everything the report says about one camera. Plain value.
struct CameraFigures {
    std::string id;
    // Chain status: "ok", or what is wrong with this camera's archived log (a collection that found
    // it cut back or rewritten, or a break the report found). Its figures are then marked.
    std::string chainStatus = "ok";
    bool broken = false;
    std::string lastCheckpoint;        // "SEQ:HASH" of the last checkpoint in the year's file; empty: none
    std::uint64_t entries = 0;         // entries of the year read
    bool inOperation = false;          // any entry in the year
    UtcMicros operatingFrom = 0, operatingTo = 0;
    double recordedShare = 0;          // 0..1 of the operating time, gaps taken out
    std::vector<ReportGap> gaps;       // at most kMaxGapsListed; gapsTotal counts all
    std::uint64_t gapsTotal = 0;
    std::int64_t gapSeconds = 0;
    std::array<std::uint64_t, 3> provisions{};       // by ground (kGrounds)
    std::uint64_t extracts = 0;
    std::int64_t extractSeconds = 0;
    std::uint64_t extractBytes = 0;
    std::map<std::string, std::uint64_t> refusals;   // by reason code
    std::uint64_t maskChanges = 0;
    std::uint64_t maskReviews = 0;                  // review stills given (mask_review_still), Art. 4(4)
    std::int64_t oldestHeldSeconds = 0;             // the oldest footage it deleted, at deletion (age)
    std::int64_t retentionDays = 0;                 // its limit, from daemon_start; 0: not seen
    std::uint64_t daysShredded = 0;
};

constexpr std::size_t kMaxGapsListed = 50;

struct Report {
    int fiscalYear = 0;
    FiscalYearRange range;
    std::vector<CameraFigures> cameras;               // every camera folder, sorted by id
    std::map<std::string, std::uint64_t> provisionsByBody;  // requesting body -> provisions (whole fleet)
    std::array<std::array<std::uint64_t, 3>, 12> provisionsByMonth{};  // [April..March][ground]
};

// Reads every camera of the archive for the fiscal year (its audit-FY<year>.log, the previous
// file's last line, its problems file and its newest health record) one camera at a time and
// one line at a time, so memory does not grow with the fleet or the log. The chain of the
// year's file is checked again (seq and prev); checkpoint signatures were checked when the
// lines were collected (`mimamori audit verify DIR` checks them again). Throws ArchiveError.
[[nodiscard]] Report computeReport(const std::filesystem::path& archive, int fiscalYear);

// The renderings, with the same figures (docs/report.md).
[[nodiscard]] std::string renderJson(const Report& report, Lang lang);
[[nodiscard]] std::string renderCsv(const Report& report, Lang lang);
[[nodiscard]] std::string renderHtml(const Report& report, Lang lang);

}  // namespace mimamori::city

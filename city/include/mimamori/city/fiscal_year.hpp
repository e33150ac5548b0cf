// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Japanese fiscal years (April to March, by Japan Standard Time) and their era labels.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"

#include <string>

namespace mimamori::city {

using common::UtcMicros;

enum class Lang { Ja, En };

// [begin, end) in UTC: FY Y runs from Y-04-01 00:00 JST (Y-03-31T15:00Z) to (Y+1)-04-01 00:00 JST.
struct FiscalYearRange {
    UtcMicros begin = 0;
    UtcMicros end = 0;
};

// The fiscal year holding `t`, by JST: 2026-03-31T14:59:59Z is FY2025, 2026-03-31T15:00Z FY2026.
// The audit log's own (it names the log's files by it), so the archive splits the same way.
using policy::fiscalYearOf;
[[nodiscard]] FiscalYearRange fiscalYearRange(int year);
// 0 for April .. 11 for March (JST) of the fiscal year holding `t`.
[[nodiscard]] int fiscalMonthOf(UtcMicros t);
// The JST calendar day of `t` as "YYYY-MM-DD".
[[nodiscard]] std::string jstDay(UtcMicros t);
// 令和7年度 for 2025; 平成31年度／令和元年度 for 2019 (the era changed on 2019-05-01);
// 昭和63年度／平成元年度 for 1988. English: "FY2025 (Reiwa 7)", "FY2019 (Heisei 31 / Reiwa 1)".
// Years before 1926 are not supported (std::invalid_argument).
[[nodiscard]] std::string eraLabel(int year, Lang lang);

}  // namespace mimamori::city

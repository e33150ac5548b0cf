// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fiscal years by JST and era labels, on std::chrono's civil calendar.
#include "mimamori/city/fiscal_year.hpp"

#include <fmt/format.h>

#include <chrono>
#include <stdexcept>

namespace mimamori::city {
namespace {

using namespace std::chrono;

constexpr UtcMicros kJstOffset = 9 * 3600 * common::kMicrosPerSecond;

year_month_day jstDate(UtcMicros t) {
    // floor, so times before 1970 land on the right day too
    return year_month_day{floor<days>(sys_time<microseconds>{microseconds{t + kJstOffset}})};
}

UtcMicros jstMidnight(int y, unsigned m, unsigned d) {
    const sys_days date{year{y} / month{m} / std::chrono::day{d}};
    return duration_cast<microseconds>(date.time_since_epoch()).count() - kJstOffset;
}

// An era year: 元 for the first year, as official labels write it.
std::string eraYear(int n, Lang lang) {
    if (lang == Lang::Ja) return n == 1 ? std::string("元") : std::to_string(n);
    return std::to_string(n);
}

struct Era {
    int firstYear;      // the Gregorian year of the era's year 1
    const char* ja;
    const char* en;
};
// Showa began 1926-12-25, Heisei 1989-01-08, Reiwa 2019-05-01: each change falls inside a
// fiscal year (FY1988 and FY2019), which then carries both labels.
constexpr Era kShowa{1926, "昭和", "Showa"};
constexpr Era kHeisei{1989, "平成", "Heisei"};
constexpr Era kReiwa{2019, "令和", "Reiwa"};

std::string one(const Era& era, int y, Lang lang) {
    return lang == Lang::Ja ? fmt::format("{}{}", era.ja, eraYear(y - era.firstYear + 1, lang))
                            : fmt::format("{} {}", era.en, y - era.firstYear + 1);
}

}  // namespace

FiscalYearRange fiscalYearRange(int y) { return {jstMidnight(y, 4, 1), jstMidnight(y + 1, 4, 1)}; }

int fiscalMonthOf(UtcMicros t) {
    const auto m = static_cast<int>(static_cast<unsigned>(jstDate(t).month()));
    return (m + 8) % 12;  // April (4) -> 0, March (3) -> 11
}

std::string jstDay(UtcMicros t) {
    const auto d = jstDate(t);
    return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                       static_cast<unsigned>(d.day()));
}

std::string eraLabel(int y, Lang lang) {
    if (y < kShowa.firstYear + 1) throw std::invalid_argument(fmt::format("fiscal year {} is before 1927", y));
    std::string label;
    if (y == kReiwa.firstYear)
        label = lang == Lang::Ja ? one(kHeisei, y, lang) + "年度／" + one(kReiwa, y, lang)
                                 : one(kHeisei, y, lang) + " / " + one(kReiwa, y, lang);
    else if (y == kHeisei.firstYear - 1)
        label = lang == Lang::Ja ? one(kShowa, y, lang) + "年度／" + one(kHeisei, y + 1, lang)
                                 : one(kShowa, y, lang) + " / " + one(kHeisei, y + 1, lang);
    else if (y > kReiwa.firstYear)
        label = one(kReiwa, y, lang);
    else if (y >= kHeisei.firstYear)
        label = one(kHeisei, y, lang);
    else
        label = one(kShowa, y, lang);
    return lang == Lang::Ja ? label + "年度" : fmt::format("FY{} ({})", y, label);
}

}  // namespace mimamori::city

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// ISO 8601 UTC formatting/parsing without the C library's local-time machinery.
#include "mimamori/common/time.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cctype>

namespace mimamori::common {
namespace {

// Howard Hinnant's days_from_civil / civil_from_days: exact for the proleptic Gregorian calendar.
std::int64_t daysFromCivil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civilFromDays(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}

bool readDigits(std::string_view s, std::size_t& pos, std::size_t count, int& out) {
    if (pos + count > s.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const char c = s[pos + i];
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
        out = out * 10 + (c - '0');
    }
    pos += count;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
}

bool isLeap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace

std::string formatUtc(UtcMicros t) {
    std::int64_t days = t / kMicrosPerDay;
    std::int64_t rem = t % kMicrosPerDay;
    if (rem < 0) {
        rem += kMicrosPerDay;
        --days;
    }
    std::int64_t y;
    unsigned m, d;
    civilFromDays(days, y, m, d);
    const std::int64_t secs = rem / kMicrosPerSecond;
    const std::int64_t frac = rem % kMicrosPerSecond;
    std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", y, m, d, secs / 3600,
                                  (secs / 60) % 60, secs % 60);
    if (frac != 0) out += fmt::format(".{:06}", frac);
    out += 'Z';
    return out;
}

std::string formatJst(UtcMicros t) {
    constexpr UtcMicros kJstOffset = 9 * 3600 * kMicrosPerSecond;
    const UtcMicros local = t + kJstOffset;
    UtcMicros whole = local - ((local % kMicrosPerSecond) + kMicrosPerSecond) % kMicrosPerSecond;  // floor
    std::string text = formatUtc(whole);  // "YYYY-MM-DDTHH:MM:SSZ" of the shifted instant
    text[10] = ' ';
    text.back() = ' ';
    return text + "JST";
}

std::string formatUtcAndJst(UtcMicros t) { return fmt::format("{} ({})", formatUtc(t), formatJst(t)); }

std::optional<UtcMicros> parseUtc(std::string_view s) {
    std::size_t pos = 0;
    int year, month, day, hour, minute, second;
    if (!readDigits(s, pos, 4, year) || !expect(s, pos, '-') || !readDigits(s, pos, 2, month) ||
        !expect(s, pos, '-') || !readDigits(s, pos, 2, day))
        return std::nullopt;
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != ' ')) return std::nullopt;
    ++pos;
    if (!readDigits(s, pos, 2, hour) || !expect(s, pos, ':') || !readDigits(s, pos, 2, minute) ||
        !expect(s, pos, ':') || !readDigits(s, pos, 2, second))
        return std::nullopt;
    static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1) return std::nullopt;
    const int monthDays = kDaysInMonth[month - 1] + (month == 2 && isLeap(year) ? 1 : 0);
    if (day > monthDays || hour > 23 || minute > 59 || second > 59) return std::nullopt;

    std::int64_t micros = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t digits = 0;
        std::int64_t scale = 100000;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
            if (digits < 6) micros += (s[pos] - '0') * scale;
            scale /= 10;
            ++digits;
            ++pos;
        }
        if (digits == 0) return std::nullopt;
    }
    std::int64_t offsetSeconds = 0;
    if (pos < s.size() && s[pos] == 'Z') {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const int sign = s[pos] == '+' ? 1 : -1;
        ++pos;
        int oh, om;
        if (!readDigits(s, pos, 2, oh) || !expect(s, pos, ':') || !readDigits(s, pos, 2, om) ||
            oh > 23 || om > 59)
            return std::nullopt;
        offsetSeconds = sign * (oh * 3600 + om * 60);
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    const std::int64_t days = daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    const std::int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds;
    return seconds * kMicrosPerSecond + micros;
}

UtcMicros SystemClock::nowUtc() const {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t SystemClock::monotonicMicros() const {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

UtcMicros ManualClock::nowUtc() const {
    std::lock_guard lock(mutex_);
    return wall_;
}

std::int64_t ManualClock::monotonicMicros() const {
    std::lock_guard lock(mutex_);
    return monotonic_;
}

void ManualClock::advance(std::int64_t micros) {
    std::lock_guard lock(mutex_);
    wall_ += micros;
    monotonic_ += micros;
}

void ManualClock::stepWall(std::int64_t micros) {
    std::lock_guard lock(mutex_);
    wall_ += micros;
}

}  // namespace mimamori::common

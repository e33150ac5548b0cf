// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// UTC time as integer microseconds since the Unix epoch, ISO 8601 text, and injectable clocks.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace mimamori::common {

// Microseconds since 1970-01-01T00:00:00Z. Everything inside the product is UTC.
using UtcMicros = std::int64_t;

constexpr UtcMicros kMicrosPerSecond = 1'000'000;
constexpr UtcMicros kMicrosPerDay = 86'400 * kMicrosPerSecond;

// "2026-11-24T15:38:18Z", with ".123456" when the value has a fraction.
[[nodiscard]] std::string formatUtc(UtcMicros t);
// Japan Standard Time for the people who read it (UTC+9, no daylight saving):
// "2026-11-25 00:38:18 JST", seconds truncated.
[[nodiscard]] std::string formatJst(UtcMicros t);
// "2026-11-24T15:38:18Z (2026-11-25 00:38:18 JST)": UTC, which files and logs keep, with the
// city's own time beside it wherever a person reads a time.
[[nodiscard]] std::string formatUtcAndJst(UtcMicros t);
// Accepts YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); a space may stand for 'T'.
// Returns nullopt on anything else (no time zone means no answer: never guess local time).
[[nodiscard]] std::optional<UtcMicros> parseUtc(std::string_view text);

// The wall clock may step (NTP, LTE time); the monotonic one never goes back.
// Implementations are thread-safe.
class Clock {
public:
    virtual ~Clock() = default;
    [[nodiscard]] virtual UtcMicros nowUtc() const = 0;
    [[nodiscard]] virtual std::int64_t monotonicMicros() const = 0;
};

class SystemClock final : public Clock {
public:
    [[nodiscard]] UtcMicros nowUtc() const override;
    [[nodiscard]] std::int64_t monotonicMicros() const override;
};

// A clock tests move by hand: advance() moves both, stepWall() only the wall clock.
class ManualClock final : public Clock {
public:
    explicit ManualClock(UtcMicros start) : wall_(start) {}
    [[nodiscard]] UtcMicros nowUtc() const override;
    [[nodiscard]] std::int64_t monotonicMicros() const override;
    void advance(std::int64_t micros);
    void stepWall(std::int64_t micros);

private:
    mutable std::mutex mutex_;
    UtcMicros wall_ = 0;
    std::int64_t monotonic_ = 0;
};

}  // namespace mimamori::common

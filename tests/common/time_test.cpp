// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// UTC text round-trips and rejects anything without an explicit zone.
#include "mimamori/common/time.hpp"

#include <doctest/doctest.h>

using namespace mimamori::common;

TEST_CASE("UTC timestamps round-trip through ISO 8601 text") {
    const auto t = parseUtc("2026-11-24T15:38:18Z");
    REQUIRE(t);
    CHECK(*t == 1795534698LL * kMicrosPerSecond);
    CHECK(formatUtc(*t) == "2026-11-24T15:38:18Z");
    CHECK(formatUtc(*t + 123456) == "2026-11-24T15:38:18.123456Z");
    CHECK(parseUtc("2026-11-24T15:38:18.123456Z") == *t + 123456);
    CHECK(formatUtc(0) == "1970-01-01T00:00:00Z");
    CHECK(formatUtc(-1) == "1969-12-31T23:59:59.999999Z");
}

TEST_CASE("offsets such as JST are converted to UTC") {
    CHECK(parseUtc("2026-11-25T00:38:18+09:00") == parseUtc("2026-11-24T15:38:18Z"));
}

TEST_CASE("times without a zone or with impossible fields are rejected") {
    CHECK_FALSE(parseUtc("2026-11-24T15:38:18"));
    CHECK_FALSE(parseUtc("2026-02-30T00:00:00Z"));
    CHECK_FALSE(parseUtc("2026-13-01T00:00:00Z"));
    CHECK_FALSE(parseUtc("2026-11-24T24:00:00Z"));
    CHECK_FALSE(parseUtc("yesterday"));
    CHECK_FALSE(parseUtc("2026-11-24T15:38:18Zjunk"));
    CHECK(parseUtc("2028-02-29T00:00:00Z"));
}

TEST_CASE("a wall-clock step moves the wall clock only") {
    ManualClock clock(1000);
    clock.advance(10);
    clock.stepWall(-500);
    CHECK(clock.nowUtc() == 510);
    CHECK(clock.monotonicMicros() == 10);
}

TEST_CASE("JST beside UTC: nine hours ahead, across midnight and the year, seconds truncated") {
    const auto t = *parseUtc("2026-12-31T15:38:18.999999Z");
    CHECK(formatJst(t) == "2027-01-01 00:38:18 JST");
    CHECK(formatUtcAndJst(t) == "2026-12-31T15:38:18.999999Z (2027-01-01 00:38:18 JST)");
    CHECK(formatJst(*parseUtc("2026-11-24T10:00:00+09:00")) == "2026-11-24 10:00:00 JST");
    CHECK(formatJst(-1) == "1970-01-01 08:59:59 JST");  // before the epoch: floor, not toward zero
}

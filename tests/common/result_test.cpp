// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Tests of common::Result: a value or an error text, never both, never read the wrong way.
#include "mimamori/common/result.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

using mimamori::common::Error;
using mimamori::common::Result;
using mimamori::common::success;

namespace {

Result<int> half(int n) {
    if (n % 2 != 0) return Error{"odd: " + std::to_string(n)};
    return n / 2;
}

}  // namespace

TEST_CASE("a result holds either its value or its error text") {
    const Result<int> good = half(8);
    REQUIRE(good.ok());
    CHECK(static_cast<bool>(good));
    CHECK(good.value() == 4);
    CHECK(*good == 4);
    CHECK_THROWS_AS((void)good.error(), std::logic_error);

    const Result<int> bad = half(7);
    REQUIRE_FALSE(bad.ok());
    CHECK_FALSE(static_cast<bool>(bad));
    CHECK(bad.error() == "odd: 7");
}

TEST_CASE("reading the value of an error throws, naming the error, instead of reading garbage") {
    const Result<int> bad = half(3);
    try {
        (void)bad.value();
        FAIL("value() of an error returned");
    } catch (const std::logic_error& e) {
        CHECK(std::string(e.what()).find("odd: 3") != std::string::npos);
    }
}

TEST_CASE("a result carries move-only values and a string value is not taken for an error") {
    Result<std::unique_ptr<int>> owned = std::make_unique<int>(5);
    REQUIRE(owned.ok());
    const std::unique_ptr<int> taken = std::move(owned).value();
    CHECK(*taken == 5);

    const Result<std::string> text = std::string("a value, not an error");
    REQUIRE(text.ok());
    CHECK(text->size() == 21);
}

TEST_CASE("Result<void> is success or an error") {
    const Result<void> done = success();
    CHECK(done.ok());
    CHECK_THROWS_AS((void)done.error(), std::logic_error);
    const Result<void> failed = Error{"card removed"};
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error() == "card removed");
}

// Ignoring a returned Result is a warning (the class is [[nodiscard]]), an error under -Werror;
// that cannot be checked by running code. What can: a Result is not a bool or value in disguise.
static_assert(!std::is_convertible_v<Result<void>, bool>);
static_assert(!std::is_convertible_v<Result<int>, int>);

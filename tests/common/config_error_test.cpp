// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// ConfigError's one line, and how a bad value is shown in it.
#include "mimamori/common/config_error.hpp"

#include <doctest/doctest.h>

#include <string>

using mimamori::common::ConfigError;
using mimamori::common::shownValue;

TEST_CASE("every problem is in the one line, after the source") {
    ConfigError error("mimamorid.json", {"storage.path: missing", "retrieval.port: must be an integer (got \"x\")"});
    CHECK(std::string(error.what()) ==
          "mimamorid.json: storage.path: missing; retrieval.port: must be an integer (got \"x\")");
    CHECK(error.problems().size() == 2);
}

TEST_CASE("a short value is shown whole, a long one cut to 60 bytes ending in ...") {
    CHECK(shownValue("\"ten\"") == "\"ten\"");
    const std::string sixty(60, 'a');
    CHECK(shownValue(sixty) == sixty);
    const std::string shown = shownValue(std::string(1000, 'b'));
    CHECK(shown.size() == 60);
    CHECK(shown == std::string(57, 'b') + "...");
}

TEST_CASE("a cut never splits a UTF-8 character") {
    // 56 ASCII bytes, then 窓 (3 bytes) straddling byte 57: the cut backs off to before it.
    const std::string value = std::string(56, 'x') + "窓窓窓窓窓窓";
    CHECK(shownValue(value) == std::string(56, 'x') + "...");
    // Japanese text throughout: every cut lands on a character boundary.
    std::string japanese;
    for (int i = 0; i < 30; ++i) japanese += "窓";
    const std::string cut = shownValue(japanese);
    CHECK(cut == "窓窓窓窓窓窓窓窓窓窓窓窓窓窓窓窓窓窓窓...");  // 19 characters, 57 bytes
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// mimamorid's whole config: each section reaches its own module's parser, every section's
// problems are reported together, and the keys that must stay off the card are refused there.
#include "mimamori/common/config_error.hpp"
#include "mimamori/daemon/config.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

using mimamori::common::ConfigError;
using mimamori::daemon::parseDaemonConfig;
using nlohmann::json;

namespace {

json minimal() {
    return json::parse(R"({
        "camera_id": "cam-1",
        "storage": {"path": "/card/ring"},
        "mask_file": "/etc/mimamori/masks.json",
        "key_dir": "/var/lib/mimamori/keys",
        "state_dir": "/var/lib/mimamori/state"
    })");
}

json retrieval() {
    return {{"address", "127.0.0.1"}, {"port", 8443}, {"trust_file", "trust.json"},
            {"camera_key", "/var/lib/mimamori/camera.secret"}, {"insecure_http", true}};
}

std::vector<std::string> problemsOf(const json& doc) {
    try {
        (void)parseDaemonConfig(doc.dump(), "/etc/mimamori/mimamorid.json");
    } catch (const ConfigError& e) {
        return e.problems();
    }
    return {};
}

bool hasProblemStartingWith(const std::vector<std::string>& problems, const std::string& prefix) {
    return std::any_of(problems.begin(), problems.end(), [&](const std::string& p) { return p.rfind(prefix, 0) == 0; });
}

}  // namespace

TEST_CASE("without retrieval and ble sections there is no endpoint and BLE is off") {
    const auto c = parseDaemonConfig(minimal().dump(), "/etc/mimamori/mimamorid.json");
    CHECK(c.recorder.store.cameraId == "cam-1");
    CHECK(!c.retrieval);
    CHECK(!c.ble.enabled);
}

TEST_CASE("each section goes to its own parser, with paths relative to the config file") {
    json doc = minimal();
    doc["retrieval"] = retrieval();
    doc["ble"] = {{"enabled", false}};
    const auto c = parseDaemonConfig(doc.dump(), "/etc/mimamori/mimamorid.json");
    REQUIRE(c.retrieval);
    CHECK(c.retrieval->port == 8443);
    CHECK(c.retrieval->trustFile == "/etc/mimamori/trust.json");
    CHECK(c.retrieval->extractDir == "/var/lib/mimamori/state/extracts");  // under the recorder's state_dir
}

TEST_CASE("problems of every section are reported at once") {
    json doc = minimal();
    doc["storage"]["retention_days"] = 99;
    doc["retrieval"] = retrieval();
    doc["retrieval"]["port"] = "eighty";
    doc["ble"] = {{"enabled", false}, {"scaner", json::object()}};
    const auto problems = problemsOf(doc);
    INFO(json(problems).dump());
    CHECK(problems.size() == 3);
    CHECK(hasProblemStartingWith(problems, "storage.retention_days: "));
    CHECK(hasProblemStartingWith(problems, "retrieval.port: "));
    CHECK(hasProblemStartingWith(problems, "ble.scaner: "));
}

TEST_CASE("a section that is not an object is one problem naming it") {
    json doc = minimal();
    doc["retrieval"] = "on";
    doc["ble"] = 1;
    const auto problems = problemsOf(doc);
    REQUIRE(problems.size() == 2);
    CHECK(problems[0] == "retrieval: must be an object (got \"on\")");
    CHECK(problems[1] == "ble: must be an object (got 1)");
}

TEST_CASE("the trust file and the camera key are refused on the card") {
    json doc = minimal();
    doc["retrieval"] = retrieval();
    doc["retrieval"]["trust_file"] = "/card/ring/trust.json";
    doc["retrieval"]["camera_key"] = "/card/camera.secret";  // beside the ring, not in it: allowed
    const auto problems = problemsOf(doc);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0] == "retrieval.trust_file: must not be inside storage.path");
}

TEST_CASE("malformed JSON is one problem with its position, and unknown keys are named") {
    auto problems = problemsOf(json());  // null
    REQUIRE(problems.size() == 1);
    try {
        (void)parseDaemonConfig("{\"camera_id\": ", "broken.json");
        FAIL("no error");
    } catch (const ConfigError& e) {
        REQUIRE(e.problems().size() == 1);
        CHECK(e.problems()[0].find("not valid JSON") == 0);
        CHECK(std::string(e.what()).find("broken.json") != std::string::npos);
    }
    json doc = minimal();
    doc["retreival"] = retrieval();
    problems = problemsOf(doc);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0] == "retreival: unknown key");
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Tests of `mimamori ble export|status`: the city's collector gets a company's passages, only its
// own, and the queue loses them only after the output is durable.
#include "mimamori/ble/queue.hpp"
#include "../support/run_command.hpp"
#include "mimamori/ble/service.hpp"
#include "mimamori/common/file.hpp"
#include "support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

using namespace mimamori;
using namespace mimamori::ble;
namespace fs = std::filesystem;

namespace {

constexpr common::UtcMicros kNow = 1'790'000'000'000'000;

struct Setup {
    test::TempDir dir;
    fs::path config = dir.path() / "mimamorid.json";

    Setup() {
        std::ofstream(config) << R"({
          "camera_id": "kakogawa-0042",
          "storage": {"path": "ring"}, "mask_file": "masks.json", "key_dir": "keys", "state_dir": "state",
          "ble": {"companies": [
            {"name": "acme", "ibeacon": [{"uuid": "e2c56db5-dffb-48d2-b060-d0f5a71096e0"}]},
            {"name": "beta", "eddystone_uid": [{"namespace": "f7826da6bc5b71e0893e"}]}]}
        })";
    }
    PassageQueue queue(const std::string& company) {
        return PassageQueue(companyQueueDir(dir.path() / "state", company), company, {});
    }
    void add(const std::string& company, const std::string& tag) {
        Passage p;
        p.tagId = tag;
        p.cameraId = "kakogawa-0042";
        p.firstSeen = common::SystemClock().nowUtc() - 60 * common::kMicrosPerSecond;
        p.lastSeen = p.firstSeen + 30 * common::kMicrosPerSecond;
        p.maxRssi = -61;
        p.sightings = 4;
        queue(company).append({p}, common::SystemClock().nowUtc());
    }
    std::size_t queued(const std::string& company) { return queue(company).size(common::SystemClock().nowUtc()); }
};

// Runs the CLI through the shell; returns the exit status and stdout.
int run(const std::string& args, std::string* out = nullptr) {
    const std::string command = std::string(MIMAMORI_CLI) + " " + args + " 2>/dev/null";
    auto result = mimamori::testing::runCommand(command);
    if (out) *out = std::move(result.output);
    return result.status;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0, nl;
    while ((nl = text.find('\n', start)) != std::string::npos) {
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

}  // namespace

TEST_CASE("export writes one company's passages as JSON lines and only then empties its queue") {
    Setup s;
    s.add("acme", "ibeacon:a:1:1");
    s.add("acme", "ibeacon:a:1:2");
    s.add("beta", "eddystone:b:1");
    const auto out = s.dir.path() / "acme.jsonl";
    REQUIRE(run(fmt::format("ble export --config {} --company acme --out {}", s.config.string(), out.string())) == 0);
    const auto exported = lines(common::readFile(out));
    REQUIRE(exported.size() == 2);
    const auto first = passageFromJson(exported[0]);
    REQUIRE(first);
    CHECK(first->company == "acme");
    CHECK(first->tagId == "ibeacon:a:1:1");
    CHECK(first->seq == 1);
    CHECK(common::readFile(out).find("eddystone") == std::string::npos);
    CHECK(s.queued("acme") == 0);
    CHECK(s.queued("beta") == 1);  // another company's passages are not touched
}

TEST_CASE("export never overwrites an earlier file and then leaves the queue untouched") {
    Setup s;
    s.add("acme", "ibeacon:a:1:1");
    const auto out = s.dir.path() / "earlier.jsonl";
    std::ofstream(out) << "the collector has not fetched this yet\n";
    CHECK(run(fmt::format("ble export --config {} --company acme --out {}", s.config.string(), out.string())) == 1);
    CHECK(common::readFile(out) == "the collector has not fetched this yet\n");
    CHECK(s.queued("acme") == 1);
    const auto unwritable = s.dir.path() / "no-such-dir" / "out.jsonl";
    CHECK(run(fmt::format("ble export --config {} --company acme --out {}", s.config.string(),
                          unwritable.string())) == 1);
    CHECK(s.queued("acme") == 1);
}

TEST_CASE("export to standard output, and an unknown company is a usage error") {
    Setup s;
    s.add("beta", "eddystone:b:1");
    std::string text;
    REQUIRE(run(fmt::format("ble export --config {} --company beta", s.config.string()), &text) == 0);
    const auto exported = lines(text);
    REQUIRE(exported.size() == 1);
    CHECK(passageFromJson(exported[0])->tagId == "eddystone:b:1");
    CHECK(s.queued("beta") == 0);
    CHECK(run(fmt::format("ble export --config {} --company gamma", s.config.string())) == 2);
}

TEST_CASE("status lists each company's queue and its dropped and expired counters") {
    Setup s;
    s.add("acme", "ibeacon:a:1:1");
    std::string text;
    REQUIRE(run(fmt::format("ble status --config {}", s.config.string()), &text) == 0);
    const auto rows = lines(text);
    REQUIRE(rows.size() == 3);
    CHECK(rows[1].rfind("acme", 0) == 0);
    CHECK(rows[1].find(" 1 ") != std::string::npos);
    CHECK(rows[1].find("export only") != std::string::npos);
    CHECK(rows[2].rfind("beta", 0) == 0);
}

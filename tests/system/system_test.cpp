// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The whole camera as deployed: the real mimamorid recording the street clip with retrieval and
// the BLE detector enabled, driven only through the real `mimamori` CLI, HTTP on 127.0.0.1 and
// a BlueZ stand-in on a private D-Bus.
#include "../ble/support.hpp"
#include "../recorder/pipeline_support.hpp"
#include "../support/daemon_process.hpp"
#include "../support/run_command.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <regex>
#include <set>

using namespace mimamori;
using namespace mimamori::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kCli = MIMAMORI_BINARY_DIR "/apps/mimamori";
const std::string kClip = MIMAMORI_SOURCE_DIR "/../shared/data/street-vtest.avi";
const std::string kUuid = "e2c56db5dffb48d2b060d0f5a71096e0";

struct CliResult {
    int status = -1;
    std::string output;  // stdout and stderr
};

// Runs `mimamori ARGS` without a terminal (as a script would), capturing everything it prints.
CliResult cli(const std::string& args) {
    auto result = runCommand("setsid " + kCli + " " + args + " </dev/null 2>&1");
    return CliResult{result.status, std::move(result.output)};
}

std::string q(const fs::path& p) {
    std::string quoted = "'";
    quoted += p.string();
    quoted += '\'';
    return quoted;
}

std::multiset<std::string> auditTypes(const fs::path& log) {
    std::multiset<std::string> types;
    for (const auto& e : policy::readAuditLog(log)) types.insert(e.type);
    return types;
}

std::string requestArgs(const std::string& camera, common::UtcMicros from, common::UtcMicros to,
                        const fs::path& dir, const fs::path& out) {
    return "request create --camera " + camera + " --from " + common::formatUtc(from) + " --to " +
           common::formatUtc(to) + " --ground criminal-investigation --reference K-2026-001" +
           " --purpose 'hit and run at the crossing' --body 'Kakogawa Police Station'" +
           " --officer 'Sgt. Tanaka' --key " + q(dir / "police/station.secret") + " --out " + q(out);
}

}  // namespace

TEST_CASE("the deployed camera: records masked, serves an approved request, refuses and logs the rest, "
          "reports registered tags only") {
    REQUIRE(fs::exists(kClip));
    ble::test::TempDir tmp;
    const fs::path dir = tmp.path();

    // Keys and trust, made by the tools city staff and police use.
    REQUIRE(cli("keygen --role camera --name kakogawa-0042 --out " + q(dir / "camera")).status == 0);
    REQUIRE(cli("keygen --role police --name station --out " + q(dir / "police")).status == 0);
    REQUIRE(cli("keygen --role city --name city --out " + q(dir / "city")).status == 0);
    REQUIRE(cli("trust add " + q(dir / "trust.json") + " " + q(dir / "police/station.pub") + " " +
                q(dir / "city/city.pub")).status == 0);

    // The building's windows in the street clip (768x576), as in tests/masking.
    const Rect windows{0.42, 0.05, 0.75, 0.15};
    common::writeFileAtomic(dir / "masks.json", maskJson("kakogawa-0042", {windows}));

    // BlueZ stand-in with one adapter; a registered iBeacon and a passer-by's phone.
    ble::test::PrivateBus bus;
    ble::test::BluezMock mock(bus);
    mock.command("adapter-add hci0");

    const json config = {
        {"camera_id", "kakogawa-0042"},
        {"source", {{"kind", "file"}, {"location", kClip}, {"loop", true}, {"realtime", true}}},
        {"segment_seconds", 2},
        {"storage", {{"path", "ring"}, {"sync_interval_ms", 500}}},
        {"mask_file", "masks.json"},
        {"key_dir", "daykeys"},
        {"state_dir", "state"},
        {"retrieval", {{"address", "127.0.0.1"}, {"port", 0}, {"trust_file", "trust.json"},
                       {"camera_key", "camera/kakogawa-0042.secret"}}},
        {"ble", {{"enabled", true}, {"bus_address", bus.address()}, {"silence_seconds", 2},
                 {"companies", json::array({{{"name", "acme"},
                                             {"ibeacon", json::array({{{"uuid", "e2c56db5-dffb-48d2-b060-d0f5a71096e0"}}})}}})}}},
    };
    common::writeFileAtomic(dir / "mimamorid.json", config.dump(2));
    REQUIRE(cli("mask validate " + q(dir / "masks.json")).status == 0);

    Daemon daemon({"--config", (dir / "mimamorid.json").string()}, dir / "mimamorid.log");
    const std::string log = daemon.waitForLog("retrieval endpoint on 127.0.0.1:");
    std::smatch m;
    REQUIRE(std::regex_search(log, m, std::regex("retrieval endpoint on 127\\.0\\.0\\.1:([0-9]+)")));
    const std::string url = "https://127.0.0.1:" + m[1].str();
    daemon.waitForLog("recording: first frame at");
    const common::UtcMicros started = common::SystemClock().nowUtc();

    // A registered tag passes; a phone passes too.
    const std::string tagAddress = "11:22:33:44:55:66", phoneAddress = "66:55:44:33:22:11";
    const std::string tag = mock.command("device-add hci0 " + tagAddress);
    const std::string phone = mock.command("device-add hci0 " + phoneAddress);
    mock.command("mfr " + tag + " 0x004c:0215" + kUuid + "00070009c5");
    mock.command("mfr " + phone + " 0x0006:0109200211223344");
    for (int rssi : {-70, -60, -65}) {
        mock.command("rssi " + tag + " " + std::to_string(rssi));
        mock.command("rssi " + phone + " " + std::to_string(rssi));
    }

    // Record ~12 s, then ask for 4 s in the middle.
    std::this_thread::sleep_for(std::chrono::seconds(12));
    const common::UtcMicros from = (started / common::kMicrosPerSecond + 4) * common::kMicrosPerSecond;
    const common::UtcMicros to = from + 4 * common::kMicrosPerSecond;
    REQUIRE(cli(requestArgs("kakogawa-0042", from, to, dir, dir / "req.json")).status == 0);
    REQUIRE(cli("request approve " + q(dir / "req.json") + " --key " + q(dir / "city/city.secret") +
                " --trust " + q(dir / "trust.json") + " --out " + q(dir / "approved.json") + " --yes").status == 0);

    const CliResult fetched = cli("fetch " + q(dir / "approved.json") + " --camera-url " + url + " --key " +
                                  q(dir / "police/station.secret") + " --camera-key " +
                                  q(dir / "camera/kakogawa-0042.pub") + " --out " + q(dir / "clip"));
    INFO(fetched.output);
    REQUIRE(fetched.status == 0);
    REQUIRE(cli("verify " + q(dir / "clip") + " --camera-key " + q(dir / "camera/kakogawa-0042.pub")).status == 0);

    // The clip plays, covers the 4 s (10 fps), and the windows are black in every frame.
    const auto frames = runToFrames("filesrc location=\"" + (dir / "clip/clip.mp4").string() +
                                    "\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! "
                                    "video/x-raw,format=I420 ! appsink name=out");
    CHECK(frames.size() >= 40);
    int worstLuma = 0, worstChroma = 0;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto& f = frames[i];
        const PixelRect p = pixels(windows, f.width, f.height, 2);
        INFO("frame ", i, " of ", frames.size());
        const int luma = lumaStats(f, p.x0, p.y0, p.x1, p.y1).max;
        const int chroma = chromaDeviation(f, p.x0, p.y0, p.x1, p.y1);
        REQUIRE(luma <= 24);
        REQUIRE(chroma <= 8);
        worstLuma = std::max(worstLuma, luma);
        worstChroma = std::max(worstChroma, chroma);
    }
    MESSAGE("masked windows in the fetched clip: luma at most ", worstLuma, ", chroma off grey by at most ",
            worstChroma);

    // A replay of the same approved request, and a request for another camera: refused.
    CHECK(cli("fetch " + q(dir / "approved.json") + " --camera-url " + url + " --key " +
              q(dir / "police/station.secret") + " --camera-key " + q(dir / "camera/kakogawa-0042.pub") +
              " --out " + q(dir / "replay")).status == 1);
    REQUIRE(cli(requestArgs("kakogawa-9999", from, to, dir, dir / "other.json")).status == 0);
    REQUIRE(cli("request approve " + q(dir / "other.json") + " --key " + q(dir / "city/city.secret") +
                " --trust " + q(dir / "trust.json") + " --out " + q(dir / "other-approved.json") + " --yes").status == 0);
    CHECK(cli("fetch " + q(dir / "other-approved.json") + " --camera-url " + url + " --key " +
              q(dir / "police/station.secret") + " --camera-key " + q(dir / "camera/kakogawa-0042.pub") +
              " --out " + q(dir / "other")).status == 1);
    CHECK_FALSE(fs::exists(dir / "replay/clip.mp4"));
    CHECK_FALSE(fs::exists(dir / "other/clip.mp4"));

    // City staff move the mask: the change is audited.
    common::writeFileAtomic(dir / "masks.json", maskJson("kakogawa-0042", {windows, {0.0, 0.0, 0.1, 0.1}}));
    daemon.signal(SIGHUP);
    daemon.waitForLog("masks reloaded");

    // The tag's visit ends after 2 s of silence and is queued for its company only.
    const fs::path queue = dir / "state/ble/acme/queue.jsonl";
    REQUIRE(ble::test::waitUntil([&] { return fs::exists(queue) && fs::file_size(queue) > 0; },
                                 std::chrono::seconds(20)));

    daemon.signal(SIGTERM);
    CHECK(daemon.wait(30) == 0);

    const std::string passages = common::readFile(queue);
    CHECK(passages.find("ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:7:9") != std::string::npos);
    CHECK(passages.find("\"camera\":\"kakogawa-0042\"") != std::string::npos);
    const std::string state = ble::test::allBytesUnder(dir / "state");
    CHECK(state.find(phoneAddress) == std::string::npos);
    CHECK(state.find("66_55_44_33_22_11") == std::string::npos);
    CHECK(state.find("66554433") == std::string::npos);

    // Every event is in the audit log, which verifies against the camera's key.
    const fs::path audit = dir / "state/audit";
    const CliResult verified = cli("audit verify " + q(audit) + " --camera-key " + q(dir / "camera/kakogawa-0042.pub"));
    INFO(verified.output);
    CHECK(verified.status == 0);
    const auto types = auditTypes(audit);
    CHECK(types.count("daemon_start") == 1);
    CHECK(types.count("request_received") == 3);
    CHECK(types.count("request_granted") == 1);
    CHECK(types.count("request_refused") == 2);
    CHECK(types.count("extract_delivered") == 1);
    CHECK(types.count("mask_changed") == 1);
    CHECK(types.count("daemon_stop") == 1);
    CHECK(types.count("checkpoint") >= 1);
    const CliResult refusals = cli("audit show " + q(audit) + " --type request_refused");
    CHECK(refusals.output.find("replayed_nonce") != std::string::npos);
    CHECK(refusals.output.find("wrong_camera") != std::string::npos);

    // And the ring holds only authenticated ciphertext.
    CHECK(cli("ring verify --config " + q(dir / "mimamorid.json")).status == 0);
}

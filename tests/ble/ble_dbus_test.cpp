// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Integration tests of the BLE detector against python3-dbusmock's BlueZ on a private dbus-daemon,
// with HTTP receivers on 127.0.0.1.
#include "mimamori/ble/service.hpp"
#include "mimamori/common/file.hpp"
#include "support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <thread>

using namespace mimamori;
using namespace mimamori::ble;
using namespace std::chrono_literals;

namespace {

constexpr common::UtcMicros kStart = 1'790'000'000'000'000;  // 2026-09-21T...
constexpr std::int64_t kSecond = common::kMicrosPerSecond;
const std::string kUuid = "e2c56db5dffb48d2b060d0f5a71096e0";
const std::string kNamespace = "f7826da6bc5b71e0893e";
const std::string kEddystone = "0000feaa-0000-1000-8000-00805f9b34fb";

std::string configJson(const test::PrivateBus& bus, const std::string& acmeEndpoint = "",
                       const std::string& betaEndpoint = "", int sweepSeconds = 3600) {
    return fmt::format(R"({{
        "bus_address": "{}", "reattach_min_seconds": 0.05, "reattach_max_seconds": 0.5,
        "device_sweep_seconds": {}, "rssi_floor_dbm": -90,
        "delivery": {{"retry_min_seconds": 5, "retry_max_seconds": 60, "timeout_seconds": 2}},
        "companies": [
          {{"name": "acme", "endpoint": "{}", "ibeacon": [{{"uuid": "{}"}}]}},
          {{"name": "beta", "endpoint": "{}", "eddystone_uid": [{{"namespace": "{}"}}]}},
          {{"name": "gamma", "manufacturer": [{{"company_id": 2457, "prefix": "a1b2", "id_offset": 3, "id_length": 4}}]}}
        ]}})",
                       bus.address(), sweepSeconds, acmeEndpoint, kUuid, betaEndpoint, kNamespace);
}

// One private bus, the mock BlueZ with adapter hci0, a state dir and a hand-moved clock.
struct World {
    test::PrivateBus bus;
    test::BluezMock mock{bus};
    test::TempDir state;
    common::ManualClock clock{kStart};

    World() { mock.command("adapter-add hci0"); }

    std::unique_ptr<Service> start(const std::string& json) {
        auto service = Service::start(parseServiceConfig(json), "cam-0042", state.path(), clock);
        REQUIRE(service);
        REQUIRE(test::waitUntil([&] { return service->stats().scanner.attached; }));
        return service;
    }
    std::string device(const std::string& address) { return mock.command("device-add hci0 " + address); }
    std::vector<Passage> queued(const std::string& company) {
        PassageQueue q(companyQueueDir(state.path(), company), company, {});
        return q.peek(1000, clock.nowUtc());
    }
};

bool sightingsReach(const Service& s, std::uint64_t n) {
    return test::waitUntil([&] { return s.stats().sightings >= n; }) && s.stats().sightings == n;
}

}  // namespace

TEST_CASE("registered iBeacon, Eddystone and vendor tags produce exactly the expected passages, "
          "unregistered devices leave no trace") {
    World w;
    auto service = w.start(configJson(w.bus));
    CHECK(w.mock.command("discovering hci0") == "True le True");

    // Passers-by first: a phone with a vendor beacon, someone else's iBeacon, a bare device.
    const auto phone = w.device("5A:11:22:33:44:55");
    w.mock.command("mfr " + phone + " 0x0006:0109200211223344");
    w.mock.command("rssi " + phone + " -40");
    const auto foreign = w.device("4B:66:77:88:99:AA");
    w.mock.command("mfr " + foreign + " 0x004c:021500112233445566778899aabbccddeeff00010002c5");
    w.mock.command("rssi " + foreign + " -41");
    const auto bare = w.device("7C:DE:AD:BE:EF:00");
    w.mock.command("rssi " + bare + " -30");

    const auto ib = w.device("C0:00:00:00:00:01");
    w.mock.command("mfr " + ib + " 0x004c:0215" + kUuid + "00010002c5");
    w.mock.command("rssi " + ib + " -60");
    w.mock.command("rssi " + ib + " -55");
    const auto ed = w.device("C0:00:00:00:00:02");
    w.mock.command("svc " + ed + " " + kEddystone + ":00e7" + kNamespace + "0000000000ab");
    w.mock.command("rssi " + ed + " -70");
    const auto vendor = w.device("C0:00:00:00:00:03");
    w.mock.command("mfr " + vendor + " 0x0999:a1b2ff0102030499");
    for (int rssi : {-65, -66, -64}) w.mock.command(fmt::format("rssi {} {}", vendor, rssi));

    REQUIRE(sightingsReach(*service, 6));
    CHECK(service->stats().openVisits == 3);
    CHECK(service->stats().scanner.trackedDevices == 3);  // the tags only
    w.clock.advance(61 * kSecond);
    REQUIRE(test::waitUntil([&] { return service->stats().passagesQueued == 3; }));

    const auto acme = w.queued("acme");
    REQUIRE(acme.size() == 1);
    CHECK(acme[0].tagId == "ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:1:2");
    CHECK(acme[0].sightings == 2);
    CHECK(acme[0].cameraId == "cam-0042");
    CHECK(acme[0].firstSeen == kStart);
    CHECK(acme[0].maxRssi == doctest::Approx(-58.5));  // EWMA 0.3: -60, then -58.5
    const auto beta = w.queued("beta");
    REQUIRE(beta.size() == 1);
    CHECK(beta[0].tagId == "eddystone:" + kNamespace + ":0000000000ab");
    CHECK(beta[0].sightings == 1);
    const auto gamma = w.queued("gamma");
    REQUIRE(gamma.size() == 1);
    CHECK(gamma[0].tagId == "mfr:0999:01020304");
    CHECK(gamma[0].sightings == 3);

    service->stop();
    const auto bytes = test::allBytesUnder(w.state.path());
    for (const char* trace : {"5A:11:22:33:44:55", "5A_11", "5a1122334455", "0109200211223344",
                              "4B:66:77:88:99:AA", "00112233445566778899", "7C:DE:AD:BE:EF:00", "7cdeadbeef00",
                              "C0:00:00:00:00:0", "c00000000"})
        CHECK_MESSAGE(bytes.find(trace) == std::string::npos, trace);
}

TEST_CASE("RSSI updates extend a visit, silence splits visits, weak signals are ignored") {
    World w;
    auto service = w.start(configJson(w.bus));
    const auto tag = w.device("C0:00:00:00:00:01");
    w.mock.command("mfr " + tag + " 0x004c:0215" + kUuid + "00050006c5");
    w.mock.command("rssi " + tag + " -60");
    REQUIRE(sightingsReach(*service, 1));
    w.clock.advance(30 * kSecond);
    w.mock.command("rssi " + tag + " -120");  // below the floor: not a sighting
    w.mock.command("rssi " + tag + " -61");
    REQUIRE(sightingsReach(*service, 2));
    w.clock.advance(30 * kSecond);
    w.mock.command("rssi " + tag + " -62");
    REQUIRE(sightingsReach(*service, 3));
    w.clock.advance(59 * kSecond);  // not yet silent long enough
    w.mock.command("rssi " + tag + " -63");
    REQUIRE(sightingsReach(*service, 4));
    w.clock.advance(61 * kSecond);
    REQUIRE(test::waitUntil([&] { return service->stats().passagesQueued == 1; }));
    w.mock.command("rssi " + tag + " -50");  // back after the silence: a second visit
    REQUIRE(sightingsReach(*service, 5));
    service->stop();  // shutdown queues the open visit
    const auto passages = w.queued("acme");
    REQUIRE(passages.size() == 2);
    CHECK(passages[0].sightings == 4);
    CHECK(passages[0].firstSeen == kStart);
    CHECK(passages[0].lastSeen == kStart + 119 * kSecond);
    CHECK(passages[1].sightings == 1);
    CHECK(passages[1].firstSeen == kStart + 180 * kSecond);
    CHECK(passages[1].seq == passages[0].seq + 1);
}

TEST_CASE("the scanner re-attaches after the adapter goes away and after bluetoothd restarts") {
    World w;
    auto service = w.start(configJson(w.bus));
    w.mock.command("adapter-remove hci0");
    REQUIRE(test::waitUntil([&] { return !service->stats().scanner.attached; }));
    w.mock.command("adapter-add hci0");
    REQUIRE(test::waitUntil([&] { return service->stats().scanner.attaches == 2; }));
    CHECK(service->stats().scanner.attached);

    auto tag = w.device("C0:00:00:00:00:01");
    w.mock.command("mfr " + tag + " 0x004c:0215" + kUuid + "00010002c5");
    w.mock.command("rssi " + tag + " -60");
    REQUIRE(sightingsReach(*service, 1));

    w.mock.restart();  // bluetoothd crashed and came back, without adapters for a moment
    REQUIRE(test::waitUntil([&] { return !service->stats().scanner.attached; }));
    w.mock.command("adapter-add hci0");
    REQUIRE(test::waitUntil([&] { return service->stats().scanner.attaches == 3; }));
    CHECK(w.mock.command("discovering hci0") == "True le True");
    tag = w.device("C0:00:00:00:00:01");
    w.mock.command("mfr " + tag + " 0x004c:0215" + kUuid + "00010002c5");
    w.mock.command("rssi " + tag + " -58");
    REQUIRE(sightingsReach(*service, 2));

    w.mock.stopService();  // gone for longer: the scanner waits for it
    REQUIRE(test::waitUntil([&] { return !service->stats().scanner.attached; }));
    w.mock.startService();
    w.mock.command("adapter-add hci0");
    REQUIRE(test::waitUntil([&] { return service->stats().scanner.attaches == 4; }));
    service->stop();
    const auto passages = w.queued("acme");
    REQUIRE(passages.size() == 1);  // the same visit across the restarts
    CHECK(passages[0].sightings == 2);
}

TEST_CASE("stale Device1 entries are removed from BlueZ so its cache stays bounded") {
    World w;
    auto service = w.start(configJson(w.bus, "", "", 1));
    for (int i = 0; i < 5; ++i) w.mock.command("rssi " + w.device(fmt::format("5A:00:00:00:00:{:02X}", i)) + " -40");
    const auto tag = w.device("C0:00:00:00:00:01");
    w.mock.command("mfr " + tag + " 0x004c:0215" + kUuid + "00010002c5");
    w.mock.command("rssi " + tag + " -60");
    CHECK(test::waitUntil([&] { return w.mock.command("devices") == "0"; }));
    // The counters follow the removals (and the InterfacesRemoved signals) a moment later.
    CHECK(test::waitUntil([&] { return service->stats().scanner.devicesRemoved >= 6; }));
    CHECK(test::waitUntil([&] { return service->stats().scanner.trackedDevices == 0; }));
    CHECK(service->stats().scanner.attached);
}

TEST_CASE("malformed manufacturer and service data over D-Bus is ignored without a crash") {
    World w;
    auto service = w.start(configJson(w.bus));
    const auto tag = w.device("C0:00:00:00:00:01");
    w.mock.command("bad " + tag + " ManufacturerData string");
    w.mock.command("bad " + tag + " ManufacturerData mfr-string-values");
    w.mock.command("bad " + tag + " ServiceData svc-int-keys");
    w.mock.command("bad " + tag + " ServiceData int");
    w.mock.command("bad " + tag + " RSSI string");
    w.mock.command("mfr " + tag + " 0x004c:0215" + kUuid);          // short iBeacon
    w.mock.command("svc " + tag + " " + kEddystone + ":00e7" + kNamespace);  // short Eddystone-UID
    w.mock.command("mfr " + tag + " 0x0999:a1b2ff01");               // vendor id cut off
    w.mock.command("rssi " + tag + " -50");
    // The same device, now well-formed: counted, and the scanner never detached.
    w.mock.command("mfr " + tag + " 0x004c:0215" + kUuid + "00010002c5");
    w.mock.command("rssi " + tag + " -51");
    REQUIRE(sightingsReach(*service, 1));
    CHECK(service->stats().scanner.attaches == 1);
    CHECK(service->stats().scanner.attached);
}

namespace {

// An HTTP receiver on 127.0.0.1 recording each POSTed body.
class Receiver {
public:
    explicit Receiver(int port = 0) {
        server_.Post("/passages", [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock(mutex_);
            bodies_.push_back(req.body);
            res.status = status;
            if (status == 302) res.set_header("Location", "http://127.0.0.1:1/elsewhere");
        });
        port_ = port == 0 ? server_.bind_to_any_port("127.0.0.1") : port;
        if (port != 0) REQUIRE(server_.bind_to_port("127.0.0.1", port));
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        // stop() before the accept loop runs would be lost and the join would hang.
        REQUIRE(test::waitUntil([&] { return server_.is_running(); }));
    }
    ~Receiver() {
        server_.stop();
        thread_.join();
    }
    int port() const { return port_; }
    std::string url() const { return fmt::format("http://127.0.0.1:{}/passages", port_); }
    std::atomic<int> status{200};  // what the receiver answers
    std::vector<std::string> bodies() {
        std::lock_guard lock(mutex_);
        return bodies_;
    }

private:
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::string> bodies_;
};

}  // namespace

TEST_CASE("each company's passages reach only its own endpoint, also after the receiver was down") {
    World w;
    Receiver acme;
    int betaPort = 0;
    { betaPort = Receiver().port(); }  // a port nobody listens on for now
    auto service = w.start(configJson(w.bus, acme.url(), fmt::format("http://127.0.0.1:{}/passages", betaPort)));
    const auto ib = w.device("C0:00:00:00:00:01");
    w.mock.command("mfr " + ib + " 0x004c:0215" + kUuid + "00010002c5");
    w.mock.command("rssi " + ib + " -60");
    const auto ed = w.device("C0:00:00:00:00:02");
    w.mock.command("svc " + ed + " " + kEddystone + ":00e7" + kNamespace + "0000000000ab");
    w.mock.command("rssi " + ed + " -70");
    REQUIRE(sightingsReach(*service, 2));
    w.clock.advance(61 * kSecond);

    REQUIRE(test::waitUntil([&] { return acme.bodies().size() == 1; }));
    const auto batch = nlohmann::json::parse(acme.bodies()[0]);
    CHECK(batch["camera"] == "cam-0042");
    CHECK(batch["company"] == "acme");
    REQUIRE(batch["passages"].size() == 1);
    CHECK(batch["passages"][0]["tag"] == "ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:1:2");
    CHECK(acme.bodies()[0].find("eddystone") == std::string::npos);
    REQUIRE(test::waitUntil([&] { return service->stats().deliveryFailures >= 1; }));
    CHECK(w.queued("acme").empty());  // acknowledged, so deleted
    CHECK(w.queued("beta").size() == 1);  // kept while its receiver is down

    Receiver beta(betaPort);
    w.clock.advance(5 * kSecond);  // the first back-off
    REQUIRE(test::waitUntil([&] { return beta.bodies().size() == 1; }));
    const auto betaBatch = nlohmann::json::parse(beta.bodies()[0]);
    CHECK(betaBatch["company"] == "beta");
    REQUIRE(betaBatch["passages"].size() == 1);
    CHECK(betaBatch["passages"][0]["tag"] == "eddystone:" + kNamespace + ":0000000000ab");
    CHECK(beta.bodies()[0].find("ibeacon") == std::string::npos);
    REQUIRE(test::waitUntil([&] { return w.queued("beta").empty(); }));
    CHECK(acme.bodies().size() == 1);  // nothing delivered twice
    CHECK(test::waitUntil([&] { return service->stats().passagesDelivered == 2; }));
}

TEST_CASE("only a 2xx answer deletes delivered passages; errors and redirects keep them") {
    test::TempDir dir;
    PassageQueue queue(dir.path() / "acme", "acme", {});
    std::vector<Passage> passages(5);
    for (std::size_t i = 0; i < passages.size(); ++i) {
        passages[i].tagId = fmt::format("mfr:0999:{:08x}", i);
        passages[i].firstSeen = passages[i].lastSeen = kStart;
    }
    queue.append(passages, kStart);
    Receiver receiver;
    DeliveryConfig config;
    config.batchSize = 2;
    for (int status : {500, 404, 302}) {
        receiver.status = status;
        const auto r = deliverPending(queue, receiver.url(), "cam-0042", config, kStart);
        CHECK(r.failed);
        CHECK(r.delivered == 0);
        CHECK(r.error == fmt::format("POST {}: HTTP {}", receiver.url(), status));
        CHECK(queue.size(kStart) == 5);
    }
    receiver.status = 204;
    const auto r = deliverPending(queue, receiver.url(), "cam-0042", config, kStart);
    CHECK_FALSE(r.failed);
    CHECK(r.delivered == 5);
    CHECK(queue.size(kStart) == 0);
    const auto bodies = receiver.bodies();
    REQUIRE(bodies.size() == 6);  // three refused, then batches of 2, 2 and 1
    CHECK(nlohmann::json::parse(bodies[3])["passages"].size() == 2);
    CHECK(nlohmann::json::parse(bodies[5])["passages"].size() == 1);
    CHECK(nlohmann::json::parse(bodies[5])["passages"][0]["seq"] == 5);
}

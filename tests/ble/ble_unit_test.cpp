// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Unit tests of ble/: decoders, aggregation, passages, the durable queue, config, D-Bus conversion.
#include "device_props.hpp"
#include "mimamori/ble/aggregator.hpp"
#include "mimamori/ble/queue.hpp"
#include "mimamori/ble/service.hpp"
#include "mimamori/ble/tags.hpp"
#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>

using namespace mimamori;
using namespace mimamori::ble;

namespace {

Bytes hex(std::string_view h) {
    std::string raw;
    REQUIRE(common::fromHex(h, raw));
    return Bytes(raw.begin(), raw.end());
}

const char* kUuid = "e2c56db5dffb48d2b060d0f5a71096e0";
const char* kNamespace = "f7826da6bc5b71e0893e";

Bytes iBeacon(std::string_view uuid, std::string_view majorMinor) {
    return hex(std::string("0215") + std::string(uuid) + std::string(majorMinor) + "c5");
}

std::vector<CompanyRules> rules() {
    CompanyRules acme{"acme", {}, {}, {}};
    IBeaconRule ib;
    auto u = hex(kUuid);
    std::copy(u.begin(), u.end(), ib.uuid.begin());
    acme.ibeacon.push_back(ib);
    CompanyRules beta{"beta", {}, {}, {}};
    EddystoneRule ed;
    auto n = hex(kNamespace);
    std::copy(n.begin(), n.end(), ed.namespaceId.begin());
    beta.eddystone.push_back(ed);
    CompanyRules gamma{"gamma", {}, {}, {}};
    gamma.manufacturer.push_back({0x0999, hex("a1b2"), 3, 4});
    return {acme, beta, gamma};
}

Advertisement ad(int rssi, std::int64_t t) {
    Advertisement a;
    a.address = "C0:FF:EE:00:00:01";
    a.rssi = rssi;
    a.time = 1'790'000'000'000'000 + t;
    a.monotonic = t;
    return a;
}

#if defined(__SANITIZE_ADDRESS__)
// ASan keeps freed blocks in quarantine (up to 256 MB), so the resident size grows by design in a
// sanitized build. The allocator's count of live heap bytes answers the same question there: is
// any state kept per address?
// Declared here: GCC installs no <sanitizer/allocator_interface.h>; libasan exports the function.
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
std::size_t memoryInUse() { return __sanitizer_get_current_allocated_bytes(); }
#else
std::size_t memoryInUse() {
    std::ifstream statm("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}
#endif

Passage passage(const std::string& tag, common::UtcMicros last) {
    Passage p;
    p.company = "acme";
    p.tagId = tag;
    p.cameraId = "cam-1";
    p.firstSeen = last - 5 * common::kMicrosPerSecond;
    p.lastSeen = last;
    p.maxRssi = -60.24;
    p.sightings = 3;
    return p;
}

constexpr common::UtcMicros kNow = 1'790'000'000'000'000;

}  // namespace

TEST_CASE("registered iBeacon, Eddystone-UID and vendor advertisements decode to the company's tag") {
    const TagDecoder decoder(rules());
    auto a = ad(-60, 0);
    a.manufacturerData[kAppleCompanyId] = iBeacon(kUuid, "00010002");
    auto s = decoder.decode(a);
    REQUIRE(s);
    CHECK(s->company == 0);
    CHECK(s->tagId == "ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:1:2");
    CHECK(s->rssi == -60);

    auto e = ad(-70, 0);
    e.serviceData[kEddystoneServiceUuid] = hex(std::string("00e7") + kNamespace + "0000000000ab");
    s = decoder.decode(e);
    REQUIRE(s);
    CHECK(s->company == 1);
    CHECK(s->tagId == "eddystone:f7826da6bc5b71e0893e:0000000000ab");

    auto v = ad(-50, 0);
    v.manufacturerData[0x0999] = hex("a1b2ff0102030499");
    s = decoder.decode(v);
    REQUIRE(s);
    CHECK(s->company == 2);
    CHECK(s->tagId == "mfr:0999:01020304");
}

TEST_CASE("advertisements that match no registered rule are not tags") {
    const TagDecoder decoder(rules());
    auto other = ad(-40, 0);
    other.manufacturerData[kAppleCompanyId] = iBeacon("00112233445566778899aabbccddeeff", "00010002");
    CHECK_FALSE(decoder.decode(other));
    auto phone = ad(-40, 0);
    phone.manufacturerData[0x0006] = hex("0109200211223344");  // a Windows phone's beacon
    phone.manufacturerData[kAppleCompanyId] = hex("1005031c0a1b2c");  // Apple "nearby"
    CHECK_FALSE(decoder.decode(phone));
    auto tlm = ad(-40, 0);  // Eddystone TLM (frame 0x20), not a UID
    tlm.serviceData[kEddystoneServiceUuid] = hex("20000bb80a000000000100000002");
    CHECK_FALSE(decoder.decode(tlm));
    auto wrongPrefix = ad(-40, 0);
    wrongPrefix.manufacturerData[0x0999] = hex("a1b3ff0102030499");
    CHECK_FALSE(decoder.decode(wrongPrefix));
    CHECK_FALSE(decoder.decode(ad(-40, 0)));
}

TEST_CASE("an iBeacon rule with a major only claims that major") {
    auto r = rules();
    r[0].ibeacon[0].major = 7;
    const TagDecoder decoder(r);
    auto a = ad(-60, 0);
    a.manufacturerData[kAppleCompanyId] = iBeacon(kUuid, "00070001");
    CHECK(decoder.decode(a));
    a.manufacturerData[kAppleCompanyId] = iBeacon(kUuid, "00080001");
    CHECK_FALSE(decoder.decode(a));
}

TEST_CASE("malformed manufacturer and service data of every length is ignored without a crash") {
    const TagDecoder decoder(rules());
    std::mt19937 rng(42);
    const Bytes good = iBeacon(kUuid, "00010002");
    const Bytes goodEddy = hex(std::string("00e7") + kNamespace + "0000000000ab");
    std::size_t matches = 0;
    for (std::size_t len = 0; len <= 40; ++len) {
        // Truncated and extended versions of valid frames, and random bytes.
        auto a = ad(-60, 0);
        Bytes cut(good.begin(), good.begin() + static_cast<long>(std::min(len, good.size())));
        while (cut.size() < len) cut.push_back(0x5a);
        a.manufacturerData[kAppleCompanyId] = cut;
        Bytes cutEddy(goodEddy.begin(), goodEddy.begin() + static_cast<long>(std::min(len, goodEddy.size())));
        while (cutEddy.size() < len) cutEddy.push_back(0);
        a.serviceData[kEddystoneServiceUuid] = cutEddy;
        Bytes random(len);
        for (auto& b : random) b = static_cast<std::uint8_t>(rng());
        a.manufacturerData[0x0999] = random;
        if (decoder.decode(a)) ++matches;
    }
    // Exactly the full-length frames: iBeacon at 23 bytes, Eddystone-UID at 18 and 20.
    CHECK(matches == 3);
}

TEST_CASE("rules of two companies that could claim the same advertisement are rejected") {
    auto r = rules();
    r[1].ibeacon = r[0].ibeacon;  // beta registers acme's UUID
    r[2].eddystone = r[1].eddystone;
    r[2].manufacturer.push_back({kAppleCompanyId, hex("0215"), 2, 16});  // covers every iBeacon
    const auto overlaps = findRuleOverlaps(r);
    REQUIRE(overlaps.size() == 4);
    CHECK(overlaps[0] == "acme ibeacon[0] and beta ibeacon[0] can match the same advertisement");
    CHECK(overlaps[1] == "acme ibeacon[0] and gamma manufacturer[1] can match the same advertisement");
    CHECK(overlaps[2] == "beta ibeacon[0] and gamma manufacturer[1] can match the same advertisement");
    CHECK(overlaps[3] == "beta eddystone_uid[0] and gamma eddystone_uid[0] register the same namespace");
    auto majors = rules();
    majors[1].ibeacon = majors[0].ibeacon;
    majors[0].ibeacon[0].major = 1;
    majors[1].ibeacon[0].major = 2;  // same UUID, disjoint majors: fine
    CHECK(findRuleOverlaps(majors).empty());
}

TEST_CASE("RSSI updates extend a visit and a silence splits visits") {
    PassageAggregator agg({60 * common::kMicrosPerSecond, -90, 0.5}, {"acme"}, "cam-7");
    const auto s = [](int rssi, std::int64_t seconds) {
        return TagSighting{0, "ibeacon:x:1:2", rssi, kNow + seconds * common::kMicrosPerSecond,
                           seconds * common::kMicrosPerSecond};
    };
    CHECK(agg.observe(s(-80, 0)));
    CHECK(agg.observe(s(-60, 30)));
    CHECK(agg.observe(s(-60, 89)));  // 59 s after the last one: same visit
    CHECK(agg.closeIdle(120 * common::kMicrosPerSecond).empty());
    CHECK(agg.observe(s(-70, 200)));  // 111 s of silence: a new visit
    auto closed = agg.closeIdle(200 * common::kMicrosPerSecond);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].sightings == 3);
    CHECK(closed[0].cameraId == "cam-7");
    CHECK(closed[0].company == "acme");
    CHECK(closed[0].firstSeen == kNow);
    CHECK(closed[0].lastSeen == kNow + 89 * common::kMicrosPerSecond);
    CHECK(closed[0].maxRssi == doctest::Approx(-65.0));  // EWMA: -80, -70, -65
    CHECK(agg.openVisits() == 1);
    closed = agg.closeIdle(260 * common::kMicrosPerSecond);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].sightings == 1);
    CHECK(agg.openVisits() == 0);
}

TEST_CASE("sightings below the RSSI floor or without an RSSI do not count") {
    PassageAggregator agg({60 * common::kMicrosPerSecond, -85, 0.3}, {"acme"}, "cam-7");
    CHECK_FALSE(agg.observe(TagSighting{0, "t", -86, kNow, 0}));
    CHECK_FALSE(agg.observe(TagSighting{0, "t", std::nullopt, kNow, 0}));
    CHECK(agg.openVisits() == 0);
    CHECK(agg.observe(TagSighting{0, "t", -85, kNow, 0}));
    CHECK(agg.closeAll().size() == 1);
}

TEST_CASE("100,000 unregistered random addresses leave no state and keep memory flat") {
    const TagDecoder decoder(rules());
    PassageAggregator agg({}, {"acme", "beta", "gamma"}, "cam-1");
    std::mt19937_64 rng(7);
    const Bytes otherBeacon = iBeacon("00112233445566778899aabbccddeeff", "00010002");
    const auto feed = [&](int count) {
        for (int i = 0; i < count; ++i) {
            const auto r = rng();
            // Built the way the scanner builds them, from D-Bus variants.
            std::map<std::string, sdbus::Variant> props;
            props["Address"] = sdbus::Variant(fmt::format("{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", r & 0xff,
                                                          (r >> 8) & 0xff, (r >> 16) & 0xff, (r >> 24) & 0xff,
                                                          (r >> 32) & 0xff, (r >> 40) & 0xc0));
            props["RSSI"] = sdbus::Variant(static_cast<std::int16_t>(-40 - static_cast<int>(r % 50)));
            std::map<std::uint16_t, sdbus::Variant> md;
            md[static_cast<std::uint16_t>(r >> 48)] = sdbus::Variant(std::vector<std::uint8_t>(8 + r % 20, 0x11));
            md[kAppleCompanyId] = sdbus::Variant(otherBeacon);
            props["ManufacturerData"] = sdbus::Variant(md);
            const auto u = detail::parseDeviceProperties(props);
            Advertisement a;
            a.address = *u.address;
            a.rssi = u.rssi;
            a.manufacturerData = *u.manufacturerData;
            a.time = kNow + i;
            a.monotonic = i;
            if (auto s = decoder.decode(a)) agg.observe(*s);
        }
    };
    feed(2'000);  // warm up the allocator
    const auto before = memoryInUse();
    feed(100'000);
    const auto after = memoryInUse();
    CHECK(agg.openVisits() == 0);
    CHECK(agg.pendingClosed() == 0);
    CHECK(agg.closeAll().empty());
    // Keeping even 16 bytes per address would add 1.6 MB.
    CHECK(after < before + 512 * 1024);
}

TEST_CASE("Device1 properties of the wrong D-Bus type are ignored at the boundary") {
    std::map<std::string, sdbus::Variant> props;
    props["Address"] = sdbus::Variant(std::int32_t{5});
    props["RSSI"] = sdbus::Variant(std::string("-50"));
    props["ManufacturerData"] = sdbus::Variant(std::string("0215"));
    std::map<std::string, sdbus::Variant> sd;
    sd["0000FEAA-0000-1000-8000-00805F9B34FB"] = sdbus::Variant(hex("00e7"));
    sd["0000feab-0000-1000-8000-00805f9b34fb"] = sdbus::Variant(std::string("not bytes"));
    props["ServiceData"] = sdbus::Variant(sd);
    const auto u = detail::parseDeviceProperties(props);
    CHECK_FALSE(u.address);
    CHECK_FALSE(u.rssi);
    CHECK_FALSE(u.manufacturerData);
    REQUIRE(u.serviceData);
    REQUIRE(u.serviceData->size() == 1);
    CHECK(u.serviceData->begin()->first == kEddystoneServiceUuid);  // lower-cased
    std::map<std::uint16_t, sdbus::Variant> md;
    md[0x004C] = sdbus::Variant(std::string("0215"));
    md[0x0999] = sdbus::Variant(hex("a1b2"));
    props["ManufacturerData"] = sdbus::Variant(md);
    const auto v = detail::parseDeviceProperties(props);
    REQUIRE(v.manufacturerData);
    CHECK(v.manufacturerData->size() == 1);
    CHECK(v.manufacturerData->count(0x0999) == 1);
    CHECK(detail::addressFromPath("/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF") == "AA:BB:CC:DD:EE:FF");
    CHECK(detail::addressFromPath("/org/bluez/hci0").empty());
}

TEST_CASE("a passage survives its JSON line and a torn line is not a passage") {
    auto p = passage("mfr:0999:01020304", kNow);
    p.seq = 41;
    const auto line = passageToJson(p);
    CHECK(line.find('\n') == std::string::npos);
    const auto back = passageFromJson(line);
    REQUIRE(back);
    CHECK(back->seq == 41);
    CHECK(back->tagId == p.tagId);
    CHECK(back->firstSeen == p.firstSeen);
    CHECK(back->lastSeen == p.lastSeen);
    CHECK(back->maxRssi == doctest::Approx(-60.2).epsilon(0.001));
    CHECK(back->sightings == 3);
    CHECK_FALSE(passageFromJson(line.substr(0, line.size() - 3)));
}

TEST_CASE("the queue keeps passages across reopening, in order, and removes only acknowledged ones") {
    test::TempDir dir;
    {
        PassageQueue q(dir.path() / "acme", "acme", {});
        q.append({passage("a", kNow), passage("b", kNow)}, kNow);
        q.append({passage("c", kNow)}, kNow);
    }
    PassageQueue q(dir.path() / "acme", "acme", {});
    auto all = q.peek(10, kNow);
    REQUIRE(all.size() == 3);
    CHECK(all[0].seq == 1);
    CHECK(all[2].seq == 3);
    CHECK(all[2].tagId == "c");
    q.remove(2);
    all = q.peek(10, kNow);
    REQUIRE(all.size() == 1);
    CHECK(all[0].tagId == "c");
    q.remove(3);
    CHECK(q.peek(10, kNow).empty());
    q.append({passage("d", kNow)}, kNow);
    CHECK(q.peek(10, kNow)[0].seq == 4);  // never reused, even after the queue was empty
}

TEST_CASE("a passage line torn by a power cut is dropped and later appends stay readable") {
    test::TempDir dir;
    PassageQueue q(dir.path() / "acme", "acme", {});
    q.append({passage("a", kNow)}, kNow);
    {
        std::ofstream f(dir.path() / "acme" / "queue.jsonl", std::ios::app);
        f << R"({"seq":2,"company":"acme","tag":"b","cam)";
    }
    CHECK(q.peek(10, kNow).size() == 1);
    q.append({passage("c", kNow)}, kNow);
    const auto all = q.peek(10, kNow);
    REQUIRE(all.size() == 2);
    CHECK(all[1].tagId == "c");
}

TEST_CASE("a full queue drops the oldest passages first and counts them, also after reopening") {
    test::TempDir dir;
    const auto lineBytes = passageToJson([] {
                               auto p = passage("tag-00", kNow);
                               p.seq = 10;
                               return p;
                           }()).size() + 1;
    {
        PassageQueue q(dir.path() / "acme", "acme", {lineBytes * 5, 12 * common::kMicrosPerDay});
        for (int i = 0; i < 8; ++i) q.append({passage(fmt::format("tag-{:02}", i), kNow)}, kNow);
        const auto kept = q.peek(100, kNow);
        REQUIRE(kept.size() == 5);
        CHECK(kept.front().tagId == "tag-03");
        CHECK(kept.back().tagId == "tag-07");
    }
    PassageQueue q(dir.path() / "acme", "acme", {lineBytes * 5, 12 * common::kMicrosPerDay});
    CHECK(q.counters().droppedFull == 3);
}

TEST_CASE("undelivered passages older than the age limit are removed and counted") {
    test::TempDir dir;
    PassageQueue q(dir.path() / "acme", "acme", {1 << 20, 12 * common::kMicrosPerDay});
    q.append({passage("old", kNow - 13 * common::kMicrosPerDay), passage("new", kNow - common::kMicrosPerDay)},
             kNow - common::kMicrosPerDay);
    const auto left = q.peek(10, kNow);
    REQUIRE(left.size() == 1);
    CHECK(left[0].tagId == "new");
    CHECK(q.counters().expired == 1);
    const auto bytes = test::allBytesUnder(dir.path());
    CHECK(bytes.find("\"old\"") == std::string::npos);
}

TEST_CASE("a queue only ever holds its own company's passages") {
    test::TempDir dir;
    PassageQueue q(dir.path() / "beta", "beta", {});
    q.append({passage("a", kNow)}, kNow);  // labelled acme by mistake
    CHECK(q.peek(10, kNow)[0].company == "beta");
}

TEST_CASE("drain removes nothing when writing the export fails") {
    test::TempDir dir;
    PassageQueue q(dir.path() / "acme", "acme", {});
    q.append({passage("a", kNow), passage("b", kNow)}, kNow);
    CHECK_THROWS(q.drain([](const std::vector<Passage>&) { throw common::FileError("disk full"); }, kNow));
    CHECK(q.size(kNow) == 2);
    std::vector<std::string> seen;
    CHECK(q.drain([&](const std::vector<Passage>& ps) {
              for (const auto& p : ps) seen.push_back(p.tagId);
          }, kNow) == 2);
    CHECK(seen == std::vector<std::string>{"a", "b"});
    CHECK(q.size(kNow) == 0);
}

TEST_CASE("the ble config parses every documented key") {
    const auto c = parseServiceConfig(R"({
        "enabled": true, "bus_address": "unix:path=/run/test", "adapter": "hci1",
        "silence_seconds": 45, "rssi_floor_dbm": -80, "rssi_smoothing": 0.5,
        "device_sweep_seconds": 20, "reattach_min_seconds": 0.5, "reattach_max_seconds": 10,
        "queue_max_bytes": 100000, "retention_days": 7,
        "delivery": {"batch_size": 50, "timeout_seconds": 3, "retry_min_seconds": 2, "retry_max_seconds": 60},
        "companies": [
          {"name": "acme", "endpoint": "https://acme.example/passages",
           "ibeacon": [{"uuid": "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", "major": 3}]},
          {"name": "beta", "eddystone_uid": [{"namespace": "f7826da6bc5b71e0893e"}]},
          {"name": "gamma", "manufacturer": [{"company_id": 2457, "prefix": "a1b2", "id_offset": 3, "id_length": 4}]}
        ]})");
    CHECK(c.enabled);
    CHECK(c.scanner.busAddress == "unix:path=/run/test");
    CHECK(c.scanner.adapter == "hci1");
    CHECK(c.aggregator.silenceMicros == 45 * common::kMicrosPerSecond);
    CHECK(c.aggregator.rssiFloor == -80);
    CHECK(c.scanner.reattachMinMicros == 500'000);
    CHECK(c.queue.maxBytes == 100000);
    CHECK(c.queue.maxAgeMicros == 7 * common::kMicrosPerDay);
    CHECK(c.delivery.batchSize == 50);
    REQUIRE(c.companies.size() == 3);
    CHECK(c.companies[0].rules.ibeacon[0].major == 3);
    CHECK(c.companies[0].rules.ibeacon[0].uuid[0] == 0xe2);
    CHECK(c.companies[1].endpoint.empty());
    CHECK(c.companies[2].rules.manufacturer[0].companyId == 0x0999);
    CHECK_FALSE(parseServiceConfig("").enabled);
}

TEST_CASE("a bad ble config reports every problem with its key") {
    try {
        (void)parseServiceConfig(R"({"silence_seconds": "long", "retention_days": 30, "colour": 1,
            "companies": [{"name": "Acme Corp", "endpoint": "ftp://x", "ibeacon": [{"uuid": "1234"}]},
                          {"name": "beta"}]})");
        FAIL("expected a ConfigError");
    } catch (const common::ConfigError& e) {
        const auto& p = e.problems();
        const auto has = [&](const std::string& s) { return std::find(p.begin(), p.end(), s) != p.end(); };
        CHECK(has("ble.colour: unknown key"));
        CHECK(has("ble.silence_seconds: must be a number"));
        CHECK(has("ble.retention_days: must be between 1 and 14"));
        CHECK(has("ble.companies[0].name: must be 1-64 characters of a-z, 0-9, '_' or '-' (it names the queue directory)"));
        CHECK(has("ble.companies[0].endpoint: must be an http:// or https:// URL with a host"));
        CHECK(has("ble.companies[0].ibeacon[0].uuid: must be a 128-bit UUID such as e2c56db5-dffb-48d2-b060-d0f5a71096e0"));
        CHECK(has("ble.companies[1].ibeacon: a company needs at least one ibeacon, eddystone_uid or manufacturer rule"));
        CHECK(p.size() == 7);
    }
}

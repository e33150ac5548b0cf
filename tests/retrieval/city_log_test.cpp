// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The city log route against the real mimamorid on 127.0.0.1: a city key collects the audit
// lines, health record and checkpoint, sealed to it; every other body is refused and audited.
#include "fixture.hpp"
#include "../support/daemon_process.hpp"

#include "mimamori/retrieval/city_log.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <algorithm>
#include <map>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;
using mimamori::testing::freePort;

namespace {

constexpr UtcMicros kSec = kMicrosPerSecond;

// A body as §1 of docs/city-log-route.md spells it, signed by any key: what a forger or a
// police key holder can send, which buildCityLogRequest refuses to make.
std::string signedBody(const policy::SecretKey& signer, const std::string& camera, std::uint64_t after, UtcMicros issued,
                       UtcMicros expires, const std::string& nonceHex, const policy::BoxPublicKey& recipient) {
    std::string body = fmt::format(
        "mimamori-city-log-request-v1\ncamera: {}\nafter-seq: {}\nkey-id: {}\nrecipient-x25519: {}\nissued-at: {}\n"
        "expires-at: {}\nnonce: {}\n",
        camera, after, signer.keyId(), policy::toBase64(recipient), common::formatUtc(issued),
        common::formatUtc(expires), nonceHex);
    return body + "signature: " + policy::toBase64(policy::sign(signer, body)) + "\n";
}

// One line of `lines` joined with '\n' after each, as the log file holds them.
std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

}  // namespace

TEST_CASE("an older city key without an X25519 part cannot ask for the log, and says why") {
    const policy::SecretKey fresh = policy::generateKey(policy::Role::City, "old-city");
    policy::PublicKey pub = fresh.publicKey();
    pub.boxKey.reset();
    common::SecureBuffer sign(fresh.signSecret().size());
    std::copy(fresh.signSecret().begin(), fresh.signSecret().end(), sign.data());
    const policy::SecretKey old(pub, std::move(sign), common::SecureBuffer());
    CHECK_THROWS_WITH_AS((void)buildCityLogRequest(old, "kakogawa-0042", 0, 1'800'000'000 * kSec),
                         doctest::Contains("has no X25519 part"), policy::KeyError);
    const policy::SecretKey police = policy::generateKey(policy::Role::Police, "pd");
    CHECK_THROWS_AS((void)buildCityLogRequest(police, "kakogawa-0042", 0, 1'800'000'000 * kSec), policy::KeyError);
}

TEST_CASE("a city key collects lines, health and checkpoint from mimamorid; police, unknown, other-camera, expired "
          "and replayed bodies get 403, each audited") {
    TempDir dir;
    const CameraFixture fixture(dir.path());
    const policy::SecretKey stranger = policy::generateKey(policy::Role::City, "not-trusted");
    const int port = freePort();
    fixture.writeDaemonConfig(dir.path(), port, R"({"kind": "test", "width": 160, "height": 120, "framerate": 10})", 1);
    mimamori::testing::Daemon daemon({"--config", (dir.path() / "mimamorid.json").string()}, dir.path() / "daemon.log");
    daemon.waitForLog(fmt::format("127.0.0.1:{}", port));
    for (int i = 0; i < 100 && !fs::exists(dir.path() / "state" / "health.json"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string url = fmt::format("https://127.0.0.1:{}", port);
    const common::SystemClock clock;

    // 1. The whole log so far: it starts at seq 1 and ends with the checkpoint written for it.
    const CityLogAnswer first = collectCityLog(url, "kakogawa-0042", fixture.camera.publicKey(), fixture.city, 0, clock);
    REQUIRE(!first.lines.empty());
    CHECK(first.complete);
    CHECK(first.afterSeq == 0);
    CHECK(first.lines.front().starts_with(R"({"seq":1,)"));
    CHECK(first.lines.front().find("\"daemon_start\"") != std::string::npos);
    CHECK(first.throughSeq == first.checkpoint.seq);
    CHECK(first.lines.back().find("\"checkpoint\"") != std::string::npos);
    CHECK(policy::blake2b256Hex(first.lines.back()) == first.checkpoint.lineHash);
    const Json health = Json::parse(first.health);
    CHECK(health["camera_id"] == "kakogawa-0042");
    // The lines are the camera's own chain: they verify as a log with the camera key.
    common::writeFileAtomic(dir.path() / "collected.log", joined(first.lines));
    const auto verified = policy::verifyAuditLog(dir.path() / "collected.log", fixture.camera.publicKey().signKey);
    CHECK_MESSAGE(verified.ok, verified.reason);
    CHECK(verified.endsWithCheckpoint);

    // 2. Incremental: the next collection starts after what the city holds, with the first
    // collection's own logs_collected entry, and again ends signed.
    const CityLogAnswer second =
        collectCityLog(url, "kakogawa-0042", fixture.camera.publicKey(), fixture.city, first.throughSeq, clock);
    REQUIRE(!second.lines.empty());
    CHECK(second.lines.front().starts_with(fmt::format(R"({{"seq":{},)", first.throughSeq + 1)));
    const auto collected = std::find_if(second.lines.begin(), second.lines.end(), [](const std::string& l) {
        return l.find("\"logs_collected\"") != std::string::npos;
    });
    REQUIRE(collected != second.lines.end());
    const Json entry = Json::parse(*collected);
    CHECK(entry["fields"]["city_key"] == "kakogawa-city");
    CHECK(entry["fields"]["from_seq"] == 1);
    CHECK(entry["fields"]["to_seq"] == first.throughSeq);
    CHECK(entry["fields"]["checkpoint"] == first.checkpoint.toString());
    CHECK(second.complete);
    CHECK(second.lines.back().find("\"checkpoint\"") != std::string::npos);

    // 3. Bodies the camera must refuse, sent as raw HTTPS posts.
    httplib::SSLClient raw("127.0.0.1", port);
    raw.enable_server_certificate_verification(false);
    const UtcMicros now = clock.nowUtc() / kSec * kSec;
    const policy::BoxPublicKey& cityBox = fixture.city.boxPublic();
    auto post = [&](const std::string& body) {
        const auto res = raw.Post(std::string(kCityLogPath), body, "text/plain");
        REQUIRE(res);
        return std::make_pair(res->status, res->status == 200 ? std::string() : Json::parse(res->body)["error"].get<std::string>());
    };
    using Outcome = std::pair<int, std::string>;
    CHECK(post(signedBody(fixture.police, "kakogawa-0042", 0, now, now + 600 * kSec, std::string(32, 'a'),
                          fixture.police.boxPublic())) == Outcome{403, "not_city_key"});
    CHECK(post(signedBody(stranger, "kakogawa-0042", 0, now, now + 600 * kSec, std::string(32, 'b'),
                          stranger.boxPublic())) == Outcome{403, "unknown_city_key"});
    CHECK(post(signedBody(fixture.city, "kakogawa-0099", 0, now, now + 600 * kSec, std::string(32, 'c'), cityBox)) ==
          Outcome{403, "wrong_camera"});
    CHECK(post(signedBody(fixture.city, "kakogawa-0042", 0, now - 1200 * kSec, now - 660 * kSec, std::string(32, 'd'),
                          cityBox)) == Outcome{403, "expired"});
    CHECK(post(signedBody(fixture.city, "kakogawa-0042", 0, now, now + 601 * kSec, std::string(32, 'e'), cityBox)) ==
          Outcome{403, "lifetime_too_long"});
    std::string forged = signedBody(fixture.city, "kakogawa-0042", 5, now, now + 600 * kSec, std::string(32, 'f'), cityBox);
    forged.replace(forged.find("after-seq: 5"), 12, "after-seq: 0");
    CHECK(post(forged) == Outcome{403, "bad_city_signature"});
    CHECK(post("mimamori-city-log-request-v1\ngarbage\n") == Outcome{400, "malformed"});
    // A good body works once; the same bytes again are a replay.
    const std::string once = signedBody(fixture.city, "kakogawa-0042", second.throughSeq, now, now + 600 * kSec,
                                        std::string(32, '7'), cityBox);
    const auto good = raw.Post(std::string(kCityLogPath), once, "text/plain");
    REQUIRE(good);
    REQUIRE(good->status == 200);
    // Only the city key opens it, and it holds no more than the documented parts.
    const auto sealed = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(good->body.data()),
                                                      good->body.size());
    CHECK_THROWS_AS((void)openCityLogAnswer(sealed, fixture.police, fixture.camera.publicKey(), once), std::exception);
    const CityLogAnswer third = openCityLogAnswer(sealed, fixture.city, fixture.camera.publicKey(), once);
    CHECK(third.afterSeq == second.throughSeq);
    CHECK(post(once) == Outcome{403, "replayed_nonce"});
    // Someone on the link cannot pass an old answer off as the answer to a new body.
    const std::string another = signedBody(fixture.city, "kakogawa-0042", second.throughSeq, now, now + 600 * kSec,
                                           std::string(32, '8'), cityBox);
    CHECK_THROWS_WITH_AS((void)openCityLogAnswer(sealed, fixture.city, fixture.camera.publicKey(), another),
                         doctest::Contains("another request"), FetchError);

    daemon.signal(SIGTERM);
    CHECK(daemon.wait() == 0);

    // Every refusal is in the log with its reason, the trusted signer named where it verified.
    std::map<std::string, Json> refused;
    int collections = 0;
    for (const auto& e : policy::readAuditLog(dir.path() / "state" / "audit")) {
        const Json f = Json::parse(e.fieldsJson);
        if (e.type == "city_log_refused") refused[f["reason"].get<std::string>()] = f;
        if (e.type == "logs_collected") ++collections;
    }
    CHECK(collections == 3);
    for (const char* reason : {"not_city_key", "unknown_city_key", "wrong_camera", "expired", "lifetime_too_long",
                               "bad_city_signature", "malformed", "replayed_nonce"})
        CHECK_MESSAGE(refused.contains(reason), reason);
    CHECK(refused["not_city_key"]["city_key"] == "hyogo-kakogawa-1");
    CHECK(refused["not_city_key"]["key_id"] == fixture.police.keyId());
    CHECK(refused["replayed_nonce"]["city_key"] == "kakogawa-city");
    CHECK_FALSE(refused["unknown_city_key"].contains("city_key"));
    const auto verifiedAll =
        policy::verifyAuditLog(dir.path() / "state" / "audit", fixture.camera.publicKey().signKey);
    CHECK_MESSAGE(verifiedAll.ok, verifiedAll.reason);
}

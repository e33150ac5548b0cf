// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Extracts with no second copy at rest: the container produced again from the ring on every
// download (whole, resumed, after a restart) is byte for byte the one the manifest was signed
// for; a ring that changed fails the download loudly; the evidence hold keeps the footage.
#include "endpoint_http.hpp"
#include "fixture.hpp"

#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/extract_plan.hpp"
#include "mimamori/retrieval/manifest.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fmt/ranges.h>

#include <set>
#include <thread>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

namespace {

constexpr UtcMicros kSec = kMicrosPerSecond;

// POSTs the request; the extract id of the grant.
std::string grant(const World& w, const std::string& requestBytes) {
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    const auto res = cli.Post("/v1/requests", requestBytes, "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 202);
    return Json::parse(res->body)["extract_id"].get<std::string>();
}

struct Got {
    int status = 0;
    std::string body;
};

Got download(const World& w, const std::string& id, const std::string& range = {}) {
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    cli.set_read_timeout(30, 0);
    httplib::Headers headers;
    if (!range.empty()) headers.emplace("Range", range);
    Got g;
    // A connection the camera cuts short is an error to httplib; keep what arrived.
    const auto res = cli.Get("/v1/extracts/" + id, headers, [&](const httplib::Response& r) {
        g.status = r.status;
        return true;
    }, [&](const char* data, std::size_t n) {
        g.body.append(data, n);
        return true;
    });
    return g;
}

std::vector<std::string> fieldValues(const World& w, const std::string& type, const std::string& field) {
    std::vector<std::string> out;
    for (const auto& e : w.auditEntries())
        if (e.type == type) out.push_back(Json::parse(e.fieldsJson).value(field, ""));
    return out;
}

// The manifest the camera signed for `id`, its signature checked.
Manifest signedManifest(const World& w, const std::string& id) {
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    const auto res = cli.Get("/v1/extracts/" + id + "/manifest");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    std::string text, error;
    policy::Signature signature{};
    REQUIRE(unwrapSignedManifest(res->body, text, signature, error));
    REQUIRE(policy::verify(w.camera->publicKey().signKey, text, signature));
    const ParsedManifest parsed = parseManifest(text);
    REQUIRE(parsed.manifest);
    return *parsed.manifest;
}

std::string unsealWith(const policy::SecretKey& police, const std::string& sealed) {
    std::string plain;
    Unsealer u(police.boxPublic(), police.boxSecret(), [&](std::span<const std::uint8_t> b) { plain.append(b.begin(), b.end()); });
    u.write(std::span(reinterpret_cast<const std::uint8_t*>(sealed.data()), sealed.size()));
    u.finish();
    return plain;
}

std::set<std::uint64_t> sequencesInRing(const World& w) {
    std::set<std::uint64_t> out;
    for (const auto& s : w.store->all()) out.insert(s.sequence);
    return out;
}

void restartEndpoint(World& w) {
    w.endpoint.reset();
    w.startEndpoint(*w.store);
}

}  // namespace

TEST_CASE("the sealed container is produced again byte for byte: whole, resumed at any offset, after a restart") {
    World w;
    const fs::path requestFile = w.writeRequest(w.approved(w.request(kT0 + kSec, kT0 + 19 * kSec)));
    const fs::path out = w.dir.path() / "police";

    // The first download, cut at a third as a dropping LTE link would; the camera restarts; the
    // police run fetch again, which resumes where it stopped and verifies with the officer key.
    FetchOptions o = fetchOptions(w, requestFile, out);
    o.onProgress = [](std::uint64_t done, std::uint64_t total) { return done * 3 < total; };
    CHECK_THROWS_AS(fetchExtract(o), FetchError);
    const std::uint64_t cut = fs::file_size(out / kPartialFile);
    REQUIRE(cut > 0);
    restartEndpoint(w);
    o.cameraUrl = w.url();  // the restarted camera listens on another free port
    o.onProgress = nullptr;
    const FetchResult fetched = fetchExtract(o);
    CHECK(fetched.resumed);
    CHECK_MESSAGE(verifyExtractDir(out, w.camera->publicKey().signKey).ok, "verify after a resumed fetch");
    const std::string whole = common::readFile(out / kSealedFile);
    REQUIRE(whole.size() == fetched.manifest.sealedBytes);

    // Nothing of the footage is at rest on the camera: the plan alone.
    for (const auto& f : fs::directory_iterator(w.config.extractDir)) {
        const std::string name = f.path().filename().string();
        CHECK((name.ends_with(".plan") || name.ends_with(".delivered") || name.ends_with(".sent")));
    }
    std::string id;
    for (const auto& f : fs::directory_iterator(w.config.extractDir))
        if (f.path().extension() == ".plan") id = f.path().stem().string();
    REQUIRE(id.size() == 32);

    // Every resumption point gives exactly the rest of that one container: inside the header,
    // at and around chunk boundaries, mid-chunk, the last byte; a closed range too.
    const std::uint64_t chunk = kSealChunkBytes + kSealChunkOverhead;
    for (const std::uint64_t offset : {std::uint64_t{1}, std::uint64_t{115}, std::uint64_t{116}, std::uint64_t{117},
                                       kSealHeaderBytes + chunk, kSealHeaderBytes + chunk + 1,
                                       kSealHeaderBytes + chunk + 31'337, std::uint64_t{whole.size() / 2},
                                       std::uint64_t{whole.size() - 1}}) {
        CAPTURE(offset);
        const Got g = download(w, id, fmt::format("bytes={}-", offset));
        CHECK(g.status == 206);
        CHECK(g.body == whole.substr(offset));
    }
    const Got middle = download(w, id, "bytes=70000-140000");
    CHECK(middle.status == 206);
    CHECK(middle.body == whole.substr(70000, 70001));

    // After another restart the whole container once more, and it still opens with the key.
    restartEndpoint(w);
    const Got again = download(w, id);
    CHECK(again.status == 200);
    CHECK(again.body == whole);
    CHECK(countEntries(w, "extract_delivered") == 1);  // once per extract, however often it is fetched
}

TEST_CASE("footage altered after the hash pass fails the download loudly and audited; no other byte is sent") {
    World w;
    const std::string id = grant(w, w.approved(w.request(kT0 + kSec, kT0 + 19 * kSec)));
    waitReady(w, id);
    const Got good = download(w, id, "bytes=0-0");  // not a delivery: one byte
    REQUIRE(good.status == 206);
    // The container as the manifest promises it, kept here (the test's own copy).
    std::string whole;
    {
        const Got g = download(w, id);
        REQUIRE(g.status == 200);
        whole = g.body;
    }
    const auto segments = w.store->all();
    REQUIRE(segments.size() == 10);

    SUBCASE("a segment's bytes changed on the card (fails authentication)") {
        std::string bytes = common::readFile(segments[6].path);
        bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
        common::writeFileAtomic(segments[6].path, bytes);
    }
    SUBCASE("a segment gone (the card swapped or the file deleted)") {
        fs::remove(segments[6].path);
    }
    const Got broken = download(w, id);
    CHECK(broken.status == 200);
    CHECK(broken.body.size() < whole.size());
    CHECK(whole.compare(0, broken.body.size(), broken.body) == 0);  // a prefix of the signed container
    waitForEntries(w, "extract_download_failed", 1);
    const auto texts = fieldValues(w, "extract_download_failed", "text");
    REQUIRE(texts.size() == 1);
    CHECK(texts[0].find("segment " + std::to_string(segments[6].sequence)) != std::string::npos);
}

TEST_CASE("an evidence hold keeps a granted extract's footage from retention until delivery, the TTL or the ceiling") {
    World w;
    constexpr UtcMicros kDay = common::kMicrosPerDay;
    const auto all = sequencesInRing(w);
    REQUIRE(all.size() == 10);
    // The extract covers segments 2..4 ([kT0 + 2 s, kT0 + 8 s)); the ring's store time is kT0 + 1 h.
    auto requestHeld = [&](UtcMicros validFor = 24 * 3600 * kSec) {
        return w.approved(investigationRequest(w.cameraId, w.clock.nowUtc(), validFor, kT0 + 2 * kSec, kT0 + 8 * kSec,
                                               *w.police));
    };
    const std::set<std::uint64_t> held = {2, 3, 4};

    SUBCASE("past retention and across a restart, until delivered") {
        w.config.extractTtl = 13 * kDay;
        restartEndpoint(w);
        const std::string id = grant(w, requestHeld());
        waitReady(w, id);
        REQUIRE(countEntries(w, "evidence_hold") == 1);
        w.clock.advance(12 * kDay + kSec);  // past the 12-day retention
        restartEndpoint(w);                  // the hold is on disk, not only in memory
        (void)w.store->enforce();
        CHECK(fmt::format("{}", fmt::join(sequencesInRing(w), ",")) == "2,3,4");
        // Still downloadable: it opens with the officer's key and matches the signed manifest.
        const Got g = download(w, id);
        CHECK(g.status == 200);
        const Manifest m = signedManifest(w, id);
        CHECK(g.body.size() == m.sealedBytes);
        CHECK(sha256Hex(unsealWith(*w.police, g.body)) == m.mp4Sha256);
        waitForEntries(w, "evidence_hold_released", 1);
        CHECK(fieldValues(w, "evidence_hold_released", "reason") == std::vector<std::string>{"delivered"});
        (void)w.store->enforce();
        CHECK(sequencesInRing(w).empty());
    }
    SUBCASE("until the TTL when never delivered") {
        w.config.extractTtl = 13 * kDay;
        restartEndpoint(w);
        const std::string id = grant(w, requestHeld());
        waitReady(w, id);
        w.clock.advance(12 * kDay + kSec);
        (void)w.store->enforce();
        CHECK(sequencesInRing(w) == held);
        w.clock.advance(kDay);  // the TTL is over: the plan goes, and the hold with it
        CHECK(download(w, id).status == 404);
        CHECK(fieldValues(w, "evidence_hold_released", "reason") == std::vector<std::string>{"expired"});
        (void)w.store->enforce();
        CHECK(sequencesInRing(w).empty());
    }
    SUBCASE("never past the policy's 14-day ceiling") {
        w.config.extractTtl = 14 * kDay;
        restartEndpoint(w);
        w.clock.advance(2 * kDay);  // granted two days after the footage was recorded
        const std::string id = grant(w, requestHeld());
        waitReady(w, id);
        w.clock.advance(12 * kDay + kSec);  // the footage is 14 days old, the grant 12
        (void)w.store->enforce();
        CHECK(sequencesInRing(w).empty());
        httplib::Client cli("127.0.0.1", w.endpoint->port());
        CHECK(cli.Get("/v1/extracts/" + id + "/manifest")->status == 200);  // the grant is still known
        CHECK(fieldValues(w, "evidence_hold_released", "reason") == std::vector<std::string>{"ceiling"});
        const Got g = download(w, id);
        CHECK(g.body.empty());
        waitForEntries(w, "extract_download_failed", 1);
        CHECK(countEntries(w, "extract_download_failed") == 1);
    }
}

TEST_CASE("the plan file round-trips byte for byte and refuses what docs/extract-plan.md does not allow") {
    ExtractPlan p;
    p.extractId = std::string(32, 'a');
    p.requestId = "KKG-2026-1234";
    p.requestSha256 = std::string(64, 'b');
    p.ground = "criminal-investigation";
    p.reference = "照会 1234";
    p.grantedAt = kT0 + 3600 * kSec;
    p.from = kT0;
    p.to = kT0 + 10 * kSec;
    p.seal.sealedKey.fill(7);
    p.seal.streamHeader.fill(9);
    store::SegmentInfo s;
    s.sequence = 5;
    s.start = kT0;
    s.end = kT0 + 10 * kSec;
    s.bytesOnDisk = 123456;
    p.recipe.segments = {s};
    const std::string granted = serializePlan(p);
    const ParsedPlan back = parsePlan(granted);
    REQUIRE_MESSAGE(back.plan, back.error);
    CHECK(serializePlan(*back.plan) == granted);
    CHECK_FALSE(back.plan->hashed());

    CHECK_FALSE(parsePlan(granted.substr(0, granted.size() - 1)).plan);           // cut short
    CHECK_FALSE(parsePlan(granted.substr(0, granted.size() / 2) + "\n").plan);    // torn
    std::string unknown = granted;
    unknown.insert(1, "\"x\":1,");
    CHECK_FALSE(parsePlan(unknown).plan);
    ExtractPlan formatsWithoutManifest = p;
    formatsWithoutManifest.recipe.formats = {ParameterSets{{{0x67, 1}}, {{0x68, 1}}}};
    CHECK(parsePlan(serializePlan(formatsWithoutManifest)).error.find("formats are present exactly when") !=
          std::string::npos);
}

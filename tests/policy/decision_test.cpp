// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's decision as a table: one row per refusal reason, plus the grants at the edges.
#include "mimamori/policy/decision.hpp"

#include "mimamori/policy/nonce_store.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace mimamori::policy;
using mimamori::common::kMicrosPerSecond;
using mimamori::common::parseUtc;

namespace {

constexpr UtcMicros kHour = 3600 * kMicrosPerSecond;

UtcMicros at(const char* text) { return *parseUtc(text); }

// Keys, a trust file and a ring; each row bends one thing of an otherwise grantable request.
struct World {
    SecretKey police = generateKey(Role::Police, "hyogo-pd");
    SecretKey city = generateKey(Role::City, "kakogawa-city");
    SecretKey strangerPolice = generateKey(Role::Police, "stranger-pd");
    SecretKey strangerCity = generateKey(Role::City, "other-city");
    TrustStore trust;
    UtcMicros now = at("2026-11-24T12:00:00Z");

    World() {
        trust.add(police.publicKey());
        trust.add(city.publicKey());
    }

    Request request() const {
        Request r = newRequest(now - kHour, 24 * kHour);
        r.cameraId = "kakogawa-0412";
        r.from = at("2026-11-24T10:00:00Z");
        r.to = at("2026-11-24T10:00:10Z");
        r.groundWord = "criminal-investigation";
        r.reference = "加古川署刑第1234号";
        r.purpose = "theft at the school gate";
        r.body = "Hyogo Prefectural Police";
        r.officer = "Sgt. Tanaka";
        r.recipient = police.boxPublic();
        return r;
    }

    SignedRequest approved(const Request& r) const {
        SignedRequest s = signRequest(r, police);
        approveRequest(s, city);
        return s;
    }

    DecisionInput input(const std::string& bytes) const {
        DecisionInput in;
        in.requestBytes = bytes;
        in.trust = &trust;
        in.cameraId = "kakogawa-0412";
        in.now = now;
        in.nonceSeen = [](std::span<const std::uint8_t>) { return false; };
        in.held = {{at("2026-11-24T09:00:00Z"), at("2026-11-24T11:30:00Z")}};
        return in;
    }
};

struct Row {
    const char* name;
    RefusalReason expected;
    std::function<std::string(const World&)> bytes;  // the envelope to decide on
    std::function<void(DecisionInput&)> bend = [](DecisionInput&) {};
};

std::string withRequest(const World& w, const std::function<void(Request&)>& change) {
    Request r = w.request();
    change(r);
    return serializeSignedRequest(w.approved(r));
}

std::string withSigned(const World& w, const std::function<void(SignedRequest&)>& change) {
    SignedRequest s = w.approved(w.request());
    change(s);
    return serializeSignedRequest(s);
}

std::string unchanged(const World& w) { return serializeSignedRequest(w.approved(w.request())); }

}  // namespace

TEST_CASE("decision table: each rule refuses with its own reason, the rest is granted") {
    const World world;
    const std::vector<Row> rows = {
        {"a proper request", RefusalReason::None, unchanged},
        {"garbage bytes", RefusalReason::Malformed, [](const World&) { return std::string("{\"body\":"); }},
        {"disclosure request (Art. 8)", RefusalReason::DisclosureRequest,
         [](const World& w) { return withRequest(w, [](Request& r) { r.groundWord = "disclosure"; }); }},
        {"unknown ground", RefusalReason::UnknownGround,
         [](const World& w) { return withRequest(w, [](Request& r) { r.groundWord = "marketing"; }); }},
        {"signed by an untrusted police key", RefusalReason::UnknownPoliceKey,
         [](const World& w) {
             SignedRequest s = signRequest(w.request(), w.strangerPolice);
             approveRequest(s, w.city);
             return serializeSignedRequest(s);
         }},
        {"signed by the city key in the police's place", RefusalReason::UnknownPoliceKey,
         [](const World& w) {
             return withSigned(w, [&w](SignedRequest& s) {
                 s.police = {w.city.keyId(), sign(w.city, s.body)};
                 s.approval->signature = sign(w.city, approvalMessage(s.body, s.police.signature));
             });
         }},
        {"police signature damaged", RefusalReason::BadPoliceSignature,
         [](const World& w) { return withSigned(w, [](SignedRequest& s) { s.police.signature[0] ^= 1; }); }},
        {"body changed after signing (range widened)", RefusalReason::BadPoliceSignature,
         [](const World& w) {
             return withSigned(w, [](SignedRequest& s) {
                 const auto pos = s.body.find("10:00:10Z");
                 s.body.replace(pos, 9, "11:00:10Z");
             });
         }},
        {"no city approval", RefusalReason::NoApproval,
         [](const World& w) { return serializeSignedRequest(signRequest(w.request(), w.police)); }},
        {"approved by an untrusted city key", RefusalReason::ApprovalNotByCity,
         [](const World& w) {
             SignedRequest s = signRequest(w.request(), w.police);
             approveRequest(s, w.strangerCity);
             return serializeSignedRequest(s);
         }},
        {"approved by the (trusted) police key", RefusalReason::ApprovalNotByCity,
         [](const World& w) {
             return withSigned(w, [&w](SignedRequest& s) {
                 s.approval = SignatureBlock{w.police.keyId(), sign(w.police, approvalMessage(s.body, s.police.signature))};
             });
         }},
        {"approval signature damaged", RefusalReason::BadApprovalSignature,
         [](const World& w) { return withSigned(w, [](SignedRequest& s) { s.approval->signature[5] ^= 1; }); }},
        {"approval lifted from another request", RefusalReason::BadApprovalSignature,
         [](const World& w) {
             const SignedRequest other = w.approved(w.request());
             return withSigned(w, [&other](SignedRequest& s) { s.approval = other.approval; });
         }},
        {"addressed to another camera", RefusalReason::WrongCamera,
         [](const World& w) { return withRequest(w, [](Request& r) { r.cameraId = "kakogawa-0413"; }); }},
        // Issued in 2000, expiring in 9999: the security review's request, granted before.
        {"valid from 2000 to 9999", RefusalReason::LifetimeTooLong,
         [](const World& w) {
             return withRequest(w, [](Request& r) {
                 r.issuedAt = at("2000-01-01T00:00:00Z");
                 r.expiresAt = at("9999-12-31T23:59:59Z");
             });
         }},
        {"valid for 30 days and a second", RefusalReason::LifetimeTooLong,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.issuedAt = w.now - kHour;
                 r.expiresAt = r.issuedAt + 30 * 24 * kHour + kMicrosPerSecond;
             });
         }},
        {"valid for exactly 30 days", RefusalReason::None,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.issuedAt = w.now - kHour;
                 r.expiresAt = r.issuedAt + 30 * 24 * kHour;
             });
         }},
        {"valid for 3 days with a 2-day maximum configured", RefusalReason::LifetimeTooLong,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.issuedAt = w.now - kHour;
                 r.expiresAt = r.issuedAt + 72 * kHour;
             });
         },
         [](DecisionInput& in) { in.maxLifetime = 48 * kHour; }},
        {"expiring before it is issued", RefusalReason::LifetimeInverted,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.issuedAt = w.now - kHour;
                 r.expiresAt = w.now - 2 * kHour;
             });
         }},
        {"expiring the instant it is issued", RefusalReason::LifetimeInverted,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.issuedAt = w.now;
                 r.expiresAt = w.now;
             });
         }},
        {"issued an hour from now", RefusalReason::NotYetValid,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.issuedAt = w.now + kHour;
                 r.expiresAt = w.now + 2 * kHour;
             });
         }},
        {"issued a minute ahead (within clock skew)", RefusalReason::None,
         [](const World& w) { return withRequest(w, [&w](Request& r) { r.issuedAt = w.now + 60 * kMicrosPerSecond; }); }},
        {"expired a second ago", RefusalReason::Expired,
         [](const World& w) { return withRequest(w, [&w](Request& r) { r.expiresAt = w.now - kMicrosPerSecond; }); }},
        {"expiring right now", RefusalReason::None,
         [](const World& w) { return withRequest(w, [&w](Request& r) { r.expiresAt = w.now; }); }},
        {"nonce seen before", RefusalReason::ReplayedNonce, unchanged,
         [](DecisionInput& in) { in.nonceSeen = [](std::span<const std::uint8_t>) { return true; }; }},
        {"empty range", RefusalReason::RangeEmpty,
         [](const World& w) { return withRequest(w, [](Request& r) { r.to = r.from; }); }},
        {"reversed range", RefusalReason::RangeEmpty,
         [](const World& w) { return withRequest(w, [](Request& r) { std::swap(r.from, r.to); }); }},
        {"range ending in the future", RefusalReason::RangeInFuture,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.from = w.now - 10 * kMicrosPerSecond;
                 r.to = w.now + kMicrosPerSecond;
             });
         },
         [](DecisionInput& in) { in.held = {{in.now - kHour, in.now + kHour}}; }},
        {"range of 6 h and a second", RefusalReason::RangeTooLong,
         [](const World& w) { return withRequest(w, [](Request& r) { r.from = r.to - 6 * kHour - kMicrosPerSecond; }); },
         [](DecisionInput& in) { in.held = {{0, in.now}}; }},
        {"range of exactly 6 h", RefusalReason::None,
         [](const World& w) {
             return withRequest(w, [&w](Request& r) {
                 r.to = w.now - kHour;
                 r.from = r.to - 6 * kHour;
             });
         },
         [](DecisionInput& in) { in.held = {{0, in.now}}; }},
        {"a 4 h range with a 3 h maximum configured", RefusalReason::RangeTooLong,
         [](const World& w) { return withRequest(w, [](Request& r) { r.from = r.to - 4 * kHour; }); },
         [](DecisionInput& in) {
             in.maxRange = 3 * kHour;
             in.held = {{0, in.now}};
         }},
        {"range starting before the ring's oldest footage", RefusalReason::RangeNotHeld, unchanged,
         [](DecisionInput& in) { in.held = {{at("2026-11-24T10:00:05Z"), at("2026-11-24T11:00:00Z")}}; }},
        {"range with a recording gap inside", RefusalReason::RangeNotHeld, unchanged,
         [](DecisionInput& in) {
             in.held = {{at("2026-11-24T09:00:00Z"), at("2026-11-24T10:00:03Z")},
                        {at("2026-11-24T10:00:07Z"), at("2026-11-24T11:00:00Z")}};
         }},
        {"range over segment pieces meeting within the slack, unordered", RefusalReason::None, unchanged,
         [](DecisionInput& in) {
             in.held = {{at("2026-11-24T10:00:05.5Z"), at("2026-11-24T11:00:00Z")},
                        {at("2026-11-24T09:00:00Z"), at("2026-11-24T10:00:05Z")}};
         }},
        {"nothing recorded", RefusalReason::RangeNotHeld, unchanged, [](DecisionInput& in) { in.held.clear(); }},
    };

    for (const Row& row : rows) {
        const std::string name = row.name;
        CAPTURE(name);
        const std::string bytes = row.bytes(world);
        DecisionInput in = world.input(bytes);
        row.bend(in);
        const Decision d = decide(in);
        CHECK_MESSAGE(d.reason == row.expected, row.name, ": got ", reasonCode(d.reason), " (", d.text, ")");
        CHECK(d.granted == (row.expected == RefusalReason::None));
        CHECK_FALSE(d.text.empty());
        CHECK(d.request.has_value() == (row.expected != RefusalReason::Malformed));
    }
}

TEST_CASE("a granted decision names the signer, the approver and the article") {
    const World w;
    const std::string bytes = unchanged(w);
    const Decision d = decide(w.input(bytes));
    REQUIRE(d.granted);
    CHECK(d.policeName == "hyogo-pd");
    CHECK(d.approverName == "kakogawa-city");
    CHECK(d.text.find("Art. 7(1)(3)") != std::string::npos);
    CHECK(reasonCode(RefusalReason::DisclosureRequest) == "disclosure_request");
}

TEST_CASE("no single-byte change of an approved request is ever granted") {
    const World w;
    const std::string good = unchanged(w);
    REQUIRE(decide(w.input(good)).granted);
    const std::size_t closing = good.rfind('}');
    for (std::size_t i = 0; i < closing; ++i) {
        std::string bent = good;
        bent[i] = static_cast<char>(bent[i] ^ 0x01);
        // 0x20^1 is '!' and 0x0a^1 is 0x0b: no flip turns JSON whitespace into other whitespace.
        const Decision d = decide(w.input(bent));
        CHECK_MESSAGE(!d.granted, "byte ", i, " flipped was granted");
    }
}

TEST_CASE("a granted nonce is refused as a replay, also after the store is reopened") {
    const World w;
    test::TempDir dir;
    const std::string bytes = unchanged(w);
    {
        NonceStore nonces(dir / "nonces");
        CHECK(decideAndRecord(w.input(bytes), nonces).granted);
        const Decision again = decideAndRecord(w.input(bytes), nonces);
        CHECK(again.reason == RefusalReason::ReplayedNonce);
    }
    NonceStore reopened(dir / "nonces");
    CHECK(reopened.size() == 1);
    CHECK(decideAndRecord(w.input(bytes), reopened).reason == RefusalReason::ReplayedNonce);

    // A refused request does not use up its nonce: asked again when valid, it is granted.
    const std::string other = unchanged(w);
    DecisionInput early = w.input(other);
    early.held.clear();
    CHECK(decideAndRecord(early, reopened).reason == RefusalReason::RangeNotHeld);
    // A grant also prunes nonces of requests that expired long ago, keeping the store bounded.
    const std::vector<std::uint8_t> stale(16, 0xAB);
    reopened.remember(stale, w.now - 3 * mimamori::common::kMicrosPerDay);
    CHECK(decideAndRecord(w.input(other), reopened).granted);
    CHECK_FALSE(reopened.seen(stale));
    CHECK(reopened.size() == 2);
}

TEST_CASE("after the clock steps two days ahead and back, an approved request cannot be replayed") {
    World w;
    test::TempDir dir;
    const UtcMicros rightTime = w.now;
    // Valid for another 23 h: a one-day prune margin alone does not protect it from a 2-day step.
    const std::string first = unchanged(w);
    const auto firstNonce = parseSignedRequest(first).request->request.nonce;
    NonceStore nonces(dir / "nonces");
    REQUIRE(decideAndRecord(w.input(first), nonces).granted);

    // The clock steps 2 days ahead (bad NTP or LTE time); another request, valid then, is
    // granted, and its grant prunes the nonces that look long expired by that clock.
    w.now = rightTime + 2 * mimamori::common::kMicrosPerDay;
    Request later = w.request();
    later.from = w.now - 2 * kHour;
    later.to = later.from + 10 * kMicrosPerSecond;
    const std::string second = serializeSignedRequest(w.approved(later));
    DecisionInput aheadInput = w.input(second);
    aheadInput.held = {{later.from - kHour, w.now}};
    REQUIRE(decideAndRecord(aheadInput, nonces).granted);
    CHECK_FALSE(nonces.seen(firstNonce));  // forgotten by the prune

    // The clock is set right again: the first request is inside its window once more, and is
    // refused as a replay, also by a store reopened from disk.
    w.now = rightTime;
    const Decision replay = decideAndRecord(w.input(first), nonces);
    CHECK_MESSAGE(replay.reason == RefusalReason::ReplayedNonce, reasonCode(replay.reason), ": ", replay.text);
    NonceStore reopened(dir / "nonces");
    CHECK(decideAndRecord(w.input(first), reopened).reason == RefusalReason::ReplayedNonce);
    // A new request expiring after the forgotten ones is still granted.
    Request fresh = w.request();
    fresh.expiresAt = w.now + 2 * mimamori::common::kMicrosPerDay;
    CHECK(decideAndRecord(w.input(serializeSignedRequest(w.approved(fresh))), reopened).granted);
}

TEST_CASE("two copies of one request racing on two threads are granted once") {
    const World w;
    test::TempDir dir;
    NonceStore nonces(dir / "nonces");
    const std::string bytes = unchanged(w);
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            if (decideAndRecord(w.input(bytes), nonces).granted) ++granted;
        });
    for (auto& t : threads) t.join();
    CHECK(granted == 1);
}

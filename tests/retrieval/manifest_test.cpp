// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The manifest reader is as strict as docs/extract-format.md: every member with its type, no
// unknown or repeated members, UTC text only in the documented form.
#include "mimamori/retrieval/manifest.hpp"

#include "mimamori/common/time.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace mimamori;
using namespace mimamori::retrieval;

namespace {

Manifest sample() {
    Manifest m;
    m.requestId = "case-42";
    m.cameraId = "kakogawa-0042";
    m.requestSha256 = std::string(64, 'a');
    m.ground = "criminal-investigation";
    m.reference = "KKG-2026-1234";
    m.requestedFrom = *common::parseUtc("2026-11-18T11:06:45.500000Z");
    m.requestedTo = *common::parseUtc("2026-11-18T11:06:50Z");
    m.actualFrom = *common::parseUtc("2026-11-18T11:06:45Z");
    m.actualTo = *common::parseUtc("2026-11-18T11:06:51Z");
    m.frames = 144;
    m.timestampRepairs = 3;
    m.gaps = {{17, *common::parseUtc("2026-11-18T11:06:47Z"), *common::parseUtc("2026-11-18T11:06:48.250000Z"),
               "continuity counter jumps (TS byte 7520)"}};
    m.mp4Sha256 = std::string(64, 'b');
    m.mp4Bytes = 123456;
    m.sealedBytes = 123700;
    m.recipient = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    m.maskSha256 = std::string(64, 'c');
    m.software = "mimamori 0.1.0";
    m.createdAt = *common::parseUtc("2026-11-18T12:00:00.000001Z");
    m.cameraKeyId = "0123456789abcdef";
    return m;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const std::size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

std::string errorOf(const std::string& text) {
    const ParsedManifest p = parseManifest(text);
    CHECK_FALSE(p.manifest);
    return p.error;
}

}  // namespace

TEST_CASE("a manifest round-trips, with its timestamp repairs and gaps") {
    const Manifest m = sample();
    const std::string text = serializeManifest(m);
    CHECK(text.find("\"timestamp_repairs\": 3") != std::string::npos);
    CHECK(text.find("\"segment\": 17") != std::string::npos);
    const ParsedManifest p = parseManifest(text);
    REQUIRE_MESSAGE(p.manifest, p.error);
    CHECK(p.manifest->timestampRepairs == 3);
    CHECK(p.manifest->gaps == m.gaps);
    CHECK(p.manifest->actualTo == m.actualTo);
    CHECK(serializeManifest(*p.manifest) == text);
    Manifest none = m;
    none.gaps.clear();
    CHECK(serializeManifest(none).find("\"gaps\": []") != std::string::npos);
    CHECK(parseManifest(serializeManifest(none)).manifest);
}

TEST_CASE("the manifest reader refuses what the doc does not allow") {
    const std::string good = serializeManifest(sample());
    REQUIRE(parseManifest(good).manifest);

    SUBCASE("unknown members, at the top and inside objects") {
        CHECK(errorOf(replaced(good, "\"frames\"", "\"extra\": 1,\n  \"frames\"")) == "manifest: unknown member 'extra'");
        CHECK(errorOf(replaced(good, "\"to\": \"2026-11-18T11:06:51Z\"", "\"to\": \"2026-11-18T11:06:51Z\", \"x\": 0")) ==
              "manifest: unknown member 'actual.x'");
        CHECK(errorOf(replaced(good, "\"segment\": 17", "\"segment\": 17, \"y\": true")) ==
              "manifest: unknown member 'gaps[0].y'");
        CHECK(errorOf(replaced(good, "\"frames\"", "\"\\u001b[2J\": 1,\n  \"frames\"")).find("\\x1b") != std::string::npos);
    }
    SUBCASE("a member given twice") {
        CHECK(errorOf(replaced(good, "\"frames\": 144", "\"frames\": 144, \"frames\": 145")) ==
              "manifest: member 'frames' appears twice");
    }
    SUBCASE("times with an offset, a short fraction, a space, or no zone") {
        for (const char* t : {"2026-11-18T20:06:51+09:00", "2026-11-18T11:06:51.5Z", "2026-11-18 11:06:51Z",
                              "2026-11-18T11:06:51", "2026-11-18T11:06:51.0000001Z", "2026-11-18T11:06:51z"}) {
            CAPTURE(t);
            CHECK(errorOf(replaced(good, "2026-11-18T11:06:51Z", t)).find("manifest: actual.to is not UTC text") == 0);
        }
        CHECK(parseManifest(replaced(good, "2026-11-18T11:06:51Z", "2026-11-18T11:06:51.000000Z")).manifest);
    }
    SUBCASE("missing or mistyped members") {
        CHECK(errorOf(replaced(good, "\"timestamp_repairs\": 3", "\"timestamp_repairs\": -3")) ==
              "manifest: timestamp_repairs must be a whole number");
        CHECK(errorOf(replaced(good, "\"gaps\": [", "\"gapz\": [")) == "manifest: unknown member 'gapz'");
        CHECK(errorOf(replaced(good, "\"actual\": {", "\"actual\": [0], \"unused\": {")).find("manifest:") == 0);
        CHECK(errorOf(replaced(good, "\"recipient_x25519\": \"AAAA", "\"recipient_x25519\": \"AA")) ==
              "manifest: recipient_x25519 is not a base64 X25519 public key");
        CHECK(errorOf(replaced(good, "\"to\": \"2026-11-18T11:06:48.250000Z\"", "\"to\": \"2026-11-18T11:06:46Z\"")) ==
              "manifest: gaps[0].to is not after from");
    }
}

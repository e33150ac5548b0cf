// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Requests: exact-bytes signing, strict parsing, and graceful rejection of any damaged input.
#include "mimamori/policy/request.hpp"

#include "mimamori/common/time.hpp"

#include <doctest/doctest.h>
#include <sodium.h>

#include <string>

using namespace mimamori::policy;
using mimamori::common::kMicrosPerSecond;
using mimamori::common::parseUtc;

namespace {

Request sampleRequest(const SecretKey& police) {
    Request r = newRequest(*parseUtc("2026-11-24T12:00:00Z"), 24 * 3600 * kMicrosPerSecond);
    r.cameraId = "kakogawa-0412";
    r.from = *parseUtc("2026-11-24T10:00:00Z");
    r.to = *parseUtc("2026-11-24T10:00:10Z");
    r.groundWord = "criminal-investigation";
    r.ground = classifyGround(r.groundWord);
    r.reference = "加古川署刑第1234号";
    r.purpose = "theft of a bicycle at the school gate";
    r.body = "Hyogo Prefectural Police, Kakogawa Station";
    r.officer = "Sgt. Tanaka";
    r.recipient = police.boxPublic();
    return r;
}

// The canonical body of `r` with one line's value replaced.
std::string bodyWith(const Request& r, const std::string& field, const std::string& value) {
    std::string body = serializeRequest(r);
    const auto start = body.find("\n" + field + ": ") + 1;
    const auto end = body.find('\n', start);
    return body.replace(start, end - start, field + ": " + value);
}

}  // namespace

TEST_CASE("a signed and approved request survives the envelope byte for byte") {
    const SecretKey police = generateKey(Role::Police, "hyogo-pd");
    const SecretKey city = generateKey(Role::City, "kakogawa-city");
    const Request r = sampleRequest(police);
    SignedRequest signedReq = signRequest(r, police);
    CHECK(verify(police.publicKey().signKey, signedReq.body, signedReq.police.signature));
    CHECK(signedReq.police.keyId == police.keyId());

    const auto parsed = parseSignedRequest(serializeSignedRequest(signedReq));
    REQUIRE_MESSAGE(parsed.request, parsed.error);
    CHECK(parsed.request->body == signedReq.body);
    CHECK_FALSE(parsed.request->approval);
    const Request& back = parsed.request->request;
    CHECK(back.requestId == r.requestId);
    CHECK(back.cameraId == r.cameraId);
    CHECK(back.from == r.from);
    CHECK(back.to == r.to);
    CHECK(back.ground == Ground::CriminalInvestigation);
    CHECK(back.reference == r.reference);
    CHECK(back.purpose == r.purpose);
    CHECK(back.body == r.body);
    CHECK(back.officer == r.officer);
    CHECK(back.recipient == r.recipient);
    CHECK(back.issuedAt == r.issuedAt);
    CHECK(back.expiresAt == r.expiresAt);
    CHECK(back.nonce == r.nonce);
    CHECK(back.nonce.size() >= 16);

    SignedRequest approved = *parsed.request;
    approveRequest(approved, city);
    const auto again = parseSignedRequest(serializeSignedRequest(approved));
    REQUIRE_MESSAGE(again.request, again.error);
    REQUIRE(again.request->approval);
    CHECK(again.request->approval->keyId == city.keyId());
    CHECK(verify(city.publicKey().signKey, approvalMessage(again.request->body, again.request->police.signature),
                 again.request->approval->signature));
    // The approval binds the police signature too: a re-signed body does not carry it over.
    CHECK_FALSE(verify(city.publicKey().signKey, approvalMessage(again.request->body, Signature{}),
                       again.request->approval->signature));
}

TEST_CASE("only police keys sign requests and only city keys approve them") {
    const SecretKey police = generateKey(Role::Police, "p");
    const SecretKey city = generateKey(Role::City, "c");
    const SecretKey camera = generateKey(Role::Camera, "cam");
    CHECK_THROWS_AS(signRequest(sampleRequest(police), city), RequestError);
    SignedRequest s = signRequest(sampleRequest(police), police);
    CHECK_THROWS_AS(approveRequest(s, police), RequestError);
    CHECK_THROWS_AS(approveRequest(s, camera), RequestError);
}

TEST_CASE("every byte of the body is covered by the police signature") {
    const SecretKey police = generateKey(Role::Police, "p");
    const SignedRequest s = signRequest(sampleRequest(police), police);
    for (std::size_t i = 0; i < s.body.size(); ++i) {
        std::string bent = s.body;
        bent[i] = static_cast<char>(bent[i] ^ 0x01);
        CHECK_FALSE(verify(police.publicKey().signKey, bent, s.police.signature));
    }
}

TEST_CASE("disclosure and unknown grounds parse, so they can be refused by name") {
    const SecretKey police = generateKey(Role::Police, "p");
    Request r = sampleRequest(police);
    r.groundWord = "disclosure";
    auto parsed = parseSignedRequest(serializeSignedRequest(signRequest(r, police)));
    REQUIRE(parsed.request);
    CHECK(parsed.request->request.ground == Ground::Disclosure);
    CHECK(groundArticle(Ground::Disclosure) == "Art. 8");
    r.groundWord = "curiosity";
    parsed = parseSignedRequest(serializeSignedRequest(signRequest(r, police)));
    REQUIRE(parsed.request);
    CHECK(parsed.request->request.ground == Ground::Unknown);
    CHECK_FALSE(isGrantableGround(Ground::Unknown));
    CHECK(isGrantableGround(classifyGround("law")));
    CHECK(isGrantableGround(classifyGround("emergency")));
    CHECK(groundArticle(classifyGround("emergency")) == "Art. 7(1)(2)");
}

TEST_CASE("every truncation of a signed request is rejected with an error, never a crash") {
    const SecretKey police = generateKey(Role::Police, "p");
    const std::string full = serializeSignedRequest(signRequest(sampleRequest(police), police));
    // The final "\n" is optional JSON whitespace; cutting anything before the closing brace breaks it.
    const std::size_t closing = full.rfind('}');
    for (std::size_t n = 0; n < closing; ++n) {
        const auto parsed = parseSignedRequest(std::string_view(full).substr(0, n));
        CHECK_FALSE(parsed.request);
        CHECK_FALSE(parsed.error.empty());
    }
}

TEST_CASE("garbled, oversized and deeply nested input is rejected cleanly") {
    CHECK(parseSignedRequest("").error == "empty request");
    CHECK_FALSE(parseSignedRequest("\xff\xfe\x00garbage").request);
    CHECK_FALSE(parseSignedRequest("[1,2,3]").request);
    CHECK_FALSE(parseSignedRequest(R"({"format":"mimamori-signed-request-v1"})").request);
    const std::string oversized(kMaxSignedRequestBytes + 1, ' ');
    const auto big = parseSignedRequest(oversized);
    CHECK_FALSE(big.request);
    CHECK(big.error.find("limit") != std::string::npos);
    const std::string deep(kMaxSignedRequestBytes, '[');
    CHECK_FALSE(parseSignedRequest(deep).request);
    const std::string twice = R"({"format":"mimamori-signed-request-v1","body":"","body":"","police":{}})";
    CHECK(parseSignedRequest(twice).error.find("twice") != std::string::npos);
    std::string random(4096, '\0');
    randombytes_buf(random.data(), random.size());
    CHECK_FALSE(parseSignedRequest(random).request);
}

TEST_CASE("the body parser accepts only the canonical form") {
    const SecretKey police = generateKey(Role::Police, "p");
    const Request r = sampleRequest(police);
    const std::string body = serializeRequest(r);
    REQUIRE(parseRequestBody(body).request);

    auto rejects = [](const std::string& text) {
        const auto parsed = parseRequestBody(text);
        CHECK_FALSE(parsed.request);
        CHECK_FALSE(parsed.error.empty());
    };
    rejects(body.substr(0, body.size() - 1));                        // no final newline
    rejects(body + "extra: line\n");                                 // extra line
    rejects("\r" + body);                                            // not the magic line
    rejects(bodyWith(r, "from", "2026-11-24T19:00:00+09:00"));       // offset, not canonical Z
    rejects(bodyWith(r, "from", "2026-11-24T10:00:00.000000Z"));     // redundant fraction
    // docs/request-format.md: a fraction has exactly six digits, trailing zeros kept.
    rejects(bodyWith(r, "from", "2026-11-24T09:59:59.25Z"));         // two digits
    rejects(bodyWith(r, "from", "2026-11-24T09:59:59.5Z"));          // one digit
    rejects(bodyWith(r, "from", "2026-11-24T09:59:59.2500000Z"));    // seven digits
    rejects(bodyWith(r, "from", "2026-11-24T09:59:59.250000z"));     // lower-case z
    rejects(bodyWith(r, "from", "2026-11-24 09:59:59Z"));            // space for T
    CHECK(parseRequestBody(bodyWith(r, "from", "2026-11-24T09:59:59.250000Z")).request);
    rejects(bodyWith(r, "nonce", "ABCDEF0123456789ABCDEF0123456789"));  // uppercase hex
    rejects(bodyWith(r, "nonce", "00112233"));                       // too short
    rejects(bodyWith(r, "purpose", "two\tparts"));                   // control character
    rejects(bodyWith(r, "purpose", "bad \xc3\x28 utf-8"));           // invalid UTF-8
    rejects(bodyWith(r, "purpose", "overlong \xc0\xaf"));            // overlong encoding
    rejects(bodyWith(r, "ground", "Law"));                           // ground words are lowercase
    rejects(bodyWith(r, "camera", "cam/../x"));                      // not an id
    rejects(bodyWith(r, "recipient-x25519", "AAAA"));                // wrong key length
    auto lineOf = [&body](const std::string& field) {
        const auto start = body.find("\n" + field + ": ") + 1;
        return body.substr(start, body.find('\n', start) + 1 - start);
    };
    const std::string pair = lineOf("reference") + lineOf("purpose");  // adjacent in the format
    std::string swapped = body;
    const auto at = swapped.find(pair);
    REQUIRE(at != std::string::npos);
    rejects(swapped.replace(at, pair.size(), lineOf("purpose") + lineOf("reference")));  // out of order
}

TEST_CASE("serializing refuses fields that the format cannot carry") {
    const SecretKey police = generateKey(Role::Police, "p");
    Request r = sampleRequest(police);
    r.purpose = "line\nbreak";
    CHECK_THROWS_AS(serializeRequest(r), RequestError);
    r = sampleRequest(police);
    r.officer = "";
    CHECK_THROWS_AS(serializeRequest(r), RequestError);
    r = sampleRequest(police);
    r.nonce.resize(8);
    CHECK_THROWS_AS(serializeRequest(r), RequestError);
}

TEST_CASE("unknown and repeated member names are named by a hash in the error, never copied into it") {
    const SecretKey police = generateKey(Role::Police, "p");
    const std::string envelope = serializeSignedRequest(signRequest(sampleRequest(police), police));
    // ESC [2J (erase the screen), CR, a right-to-left override and a line that looks like an
    // audit entry: what a forger would put in a member name.
    const std::string name = "\x1b[2J\r\xe2\x80\xae     7  2026-11-24T12:00:00Z request_granted";
    const std::string escapedName = "\\u001b[2J\\r\xe2\x80\xae     7  2026-11-24T12:00:00Z request_granted";
    const std::string expectedHash = blake2b256Hex(name).substr(0, kMemberNameHashDigits);

    std::string unknown = envelope;
    unknown.insert(1, "\"" + escapedName + "\": 1,");
    const auto parsedUnknown = parseSignedRequest(unknown);
    REQUIRE_FALSE(parsedUnknown.request);
    CHECK(parsedUnknown.error == "unknown member with name hash " + expectedHash + " in request");

    std::string repeated = envelope;
    repeated.insert(1, "\"" + escapedName + "\": 1, \"" + escapedName + "\": 2,");
    const auto parsedRepeated = parseSignedRequest(repeated);
    REQUIRE_FALSE(parsedRepeated.request);
    CHECK(parsedRepeated.error == "member with name hash " + expectedHash + " appears twice in one object");

    // Names the format defines are still named as they are.
    std::string known = envelope;
    known.insert(1, "\"body\": \"\",");
    CHECK(parseSignedRequest(known).error == "member \"body\" appears twice in one object");
}

TEST_CASE("the description city staff approve from shows bidi overrides escaped, never applied") {
    const SecretKey police = generateKey(Role::Police, "p");
    Request r = sampleRequest(police);
    // Rendered raw, U+202E would make "...for 2 hours" read differently on the approver's screen.
    r.purpose = "theft \xe2\x80\xae" "sruoh 2 rof";
    r.officer = "Sgt. \xe2\x81\xa6Tanaka\xe2\x81\xa9";
    const std::string text = describeRequest(r);
    CHECK(text.find("\xe2\x80\xae") == std::string::npos);
    CHECK(text.find("\xe2\x81\xa6") == std::string::npos);
    CHECK(text.find("theft \\u202esruoh 2 rof") != std::string::npos);
    CHECK(text.find("Sgt. \\u2066Tanaka\\u2069") != std::string::npos);
    CHECK(text.find("加古川署刑第1234号") != std::string::npos);  // Japanese text stays as it is
}

TEST_CASE("a field that cannot be signed says why: the byte limit, a control character and where") {
    const SecretKey police = generateKey(Role::Police, "hyogo-kakogawa-1");
    const auto problem = [&](auto change) {
        Request r = sampleRequest(police);
        change(r);
        try {
            (void)serializeRequest(r);
        } catch (const RequestError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK(problem([](Request& r) { r.reference = "case\x1b[2J"; }) ==
          "request field 'reference' has a control character U+001B at byte 4 (see docs/request-format.md)");
    CHECK(problem([](Request& r) { r.officer = std::string(1500, 'a'); }) ==
          "request field 'officer' is 1500 bytes, the limit is 1024 (see docs/request-format.md)");
    CHECK(problem([](Request& r) { r.purpose = "\xe2\x80"; }) ==
          "request field 'purpose' is not valid UTF-8 at byte 0 (see docs/request-format.md)");
    CHECK(problem([](Request& r) { r.body = "next\xc2\x85line"; }) ==
          "request field 'requesting-body' has a control character U+0085 at byte 4 (see docs/request-format.md)");
    CHECK(problem([](Request& r) { r.cameraId = "cam 1"; }) ==
          "request field 'camera' has a byte 0x20 at byte 3; only A-Z a-z 0-9 . _ - are allowed (see docs/request-format.md)");
    CHECK(problem([](Request& r) { r.reference = "捜査関係事項照会書 第12号"; }) == "accepted");
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The police request for footage and its signed envelope (byte-exact format: docs/request-format.md).
// Signatures cover the exact body bytes as sent; nothing is ever re-serialised before verifying.
// Every function here works on values only (no global state) and may be called from any thread.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::policy {

using common::UtcMicros;

// The legal ground the request claims. Only the three Art. 7(1) grounds can ever be granted;
// `disclosure` (Art. 8) and any other word parse, so the camera can refuse them by name and log it.
enum class Ground {
    Law,                    // "law": Art. 7(1)(1), a law or order requires it
    Emergency,              // "emergency": Art. 7(1)(2), urgent protection of life, body, property
    CriminalInvestigation,  // "criminal-investigation": Art. 7(1)(3), an investigative body's request
    Disclosure,             // "disclosure": a disclosure request, always refused (Art. 8)
    MaskReview,             // "mask-review": a review still for the masks (Art. 4(3)-(4)), never footage
    Unknown,                // any other well-formed word
};

[[nodiscard]] Ground classifyGround(std::string_view word);
// "Art. 7(1)(3)" etc.; "Art. 8" for Disclosure; "Art. 4(3)-(4)" for MaskReview; "none" for Unknown.
[[nodiscard]] std::string_view groundArticle(Ground ground);
// True for the three Art. 7(1) grounds: the only ones footage is ever released under.
[[nodiscard]] bool isGrantableGround(Ground ground);

constexpr std::size_t kNonceMinBytes = 16;
constexpr std::size_t kNonceMaxBytes = 64;
constexpr std::size_t kMaxRequestBodyBytes = 8 * 1024;       // the canonical body
constexpr std::size_t kMaxSignedRequestBytes = 32 * 1024;    // the whole envelope on the wire
// Error texts name an unknown JSON member by this many hex digits of the BLAKE2b-256 of its
// name, never by the name (docs/request-format.md, "The envelope").
constexpr std::size_t kMemberNameHashDigits = 16;

// One request, as the body lines state it. Text fields are UTF-8 without control characters.
struct Request {
    int version = 1;
    std::string requestId;     // 1..64 of [A-Za-z0-9._-]; `request create` uses 32 random hex digits
    std::string cameraId;      // 1..64 of [A-Za-z0-9._-]
    UtcMicros from = 0;        // the range asked for, [from, to), UTC
    UtcMicros to = 0;
    std::string groundWord;    // as written: "law", "emergency", "criminal-investigation", ...
    Ground ground = Ground::Unknown;  // classifyGround(groundWord)
    std::string reference;     // case reference, e.g. the number of the 捜査関係事項照会書
    std::string purpose;
    std::string body;          // requesting body, e.g. "Hyogo Prefectural Police, Kakogawa Station"
    std::string officer;
    BoxPublicKey recipient{};  // X25519 key the extract is sealed to
    UtcMicros issuedAt = 0;
    UtcMicros expiresAt = 0;
    std::vector<std::uint8_t> nonce;  // kNonceMinBytes..kNonceMaxBytes random bytes
};

// Thrown by serializeRequest / signing for a request that breaks a field rule (names the field).
class RequestError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The canonical body bytes (docs/request-format.md). Throws RequestError naming the bad field.
[[nodiscard]] std::string serializeRequest(const Request& request);
// Parses canonical body bytes strictly. Returns the error text (naming the line) on failure.
struct ParsedBody {
    std::optional<Request> request;
    std::string error;
};
[[nodiscard]] ParsedBody parseRequestBody(std::string_view bytes);

struct SignatureBlock {
    KeyId keyId;
    Signature signature{};
};

// What travels: the exact body bytes, the police signature over them, and optionally the
// city's approval over approvalMessage(). `request` is parsed from `body`.
struct SignedRequest {
    std::string body;
    Request request;
    SignatureBlock police;
    std::optional<SignatureBlock> approval;
};

// The bytes the city signs: "mimamori-approval-v1\n" || body || police signature (64 raw bytes).
[[nodiscard]] std::string approvalMessage(std::string_view body, const Signature& policeSignature);

// Serialises and signs with the requester's key: a police key, or a city key for a
// `mask-review` request (docs/review-still.md). RequestError for any other key.
// The signature travels in the envelope's `police` member whichever role made it.
[[nodiscard]] SignedRequest signRequest(const Request& request, const SecretKey& requesterKey);
// Adds (or replaces) the approval signature. RequestError unless `key` is a city key, and when
// it is the key that signed the request: two people, not one.
void approveRequest(SignedRequest& request, const SecretKey& cityKey);

// The JSON envelope (docs/request-format.md), ending in one '\n'.
[[nodiscard]] std::string serializeSignedRequest(const SignedRequest& request);

// Never throws for bad input: truncated, garbled, oversized (> kMaxSignedRequestBytes) or
// otherwise malformed input yields `request` empty and one clear line in `error`.
// Signatures are NOT checked here (see decide()); only their shape is.
struct ParsedSignedRequest {
    std::optional<SignedRequest> request;
    std::string error;
};
[[nodiscard]] ParsedSignedRequest parseSignedRequest(std::string_view bytes);

// A fresh request with a random id and nonce, issued now and expiring after `validFor`.
[[nodiscard]] Request newRequest(UtcMicros now, UtcMicros validFor);

// Human-readable multi-line description (request show / approve prompt). Never contains secrets;
// every value goes through common::escapeControls (a bidi override shows as \u202e).
[[nodiscard]] std::string describeRequest(const Request& request);

}  // namespace mimamori::policy

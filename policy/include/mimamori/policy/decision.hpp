// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's decision on a retrieval request under the ordinance: a pure function of its input.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/request.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::policy {

class NonceStore;

enum class RefusalReason {
    None,                  // granted
    Malformed,             // the bytes do not parse as a signed request
    DisclosureRequest,     // ground "disclosure": refused under Art. 8
    UnknownGround,         // a ground outside Art. 7(1)(1)-(3)
    UnknownPoliceKey,      // the signer is not a police key in the trust file
    BadPoliceSignature,    // the police signature does not verify over the body
    NoApproval,            // no city approval
    ApprovalNotByCity,     // approved by a key that is not a city key in the trust file
    BadApprovalSignature,  // a city key, but the approval signature does not verify
    WrongCamera,           // addressed to another camera
    LifetimeInverted,      // expires-at is not after issued-at
    LifetimeTooLong,       // expires-at - issued-at > the configured maximum lifetime
    NotYetValid,           // now < issued-at (beyond the allowed clock skew)
    Expired,               // now > expires-at
    ReplayedNonce,         // this nonce was granted before
    RangeEmpty,            // to <= from
    RangeInFuture,         // to > now
    RangeTooLong,          // to - from > the configured maximum
    RangeNotHeld,          // the ring does not hold the whole range
    // Footage and review stills (docs/review-still.md):
    StillOnlyGround,       // footage asked for under "mask-review", a ground for review stills only
    UnknownRequesterKey,   // a still request's signer is not a city or police key in the trust file
    BadRequesterSignature, // a still request's signature does not verify over the body
    StillNotForPolice,     // a still asked for with a police key: stills are for the city only
    ApprovedByRequester,   // the key that signed the request also approved it
    UnmaskedNeedsMaskReview,  // the unmasked form asked for under a ground other than mask-review
};

// Stable snake_case word for logs and the audit log ("bad_police_signature").
[[nodiscard]] std::string_view reasonCode(RefusalReason reason);

// [start, end) in UTC microseconds.
struct TimeRange {
    UtcMicros start = 0;
    UtcMicros end = 0;
};

constexpr UtcMicros kDefaultMaxRange = 6 * 3600 * common::kMicrosPerSecond;
constexpr UtcMicros kDefaultClockSkew = 300 * common::kMicrosPerSecond;
constexpr UtcMicros kDefaultCoverageSlack = 2 * common::kMicrosPerSecond;
// A request's validity window (issued-at .. expires-at) may be at most this long; it also
// bounds how long the camera must remember a granted nonce. `request create` allows 720 h.
constexpr UtcMicros kDefaultMaxLifetime = 30 * common::kMicrosPerDay;

// Everything decide() looks at. Borrowed pointers/views must outlive the call.
struct DecisionInput {
    std::string_view requestBytes;           // the envelope exactly as received
    const TrustStore* trust = nullptr;       // required
    std::string_view cameraId;               // this camera
    UtcMicros now = 0;                       // the camera's UTC clock
    // True when this nonce was granted before. Required; called at most once.
    std::function<bool(std::span<const std::uint8_t>)> nonceSeen;
    // What the ring holds, any order, may overlap. Gaps of at most coverageSlack between
    // pieces count as held (segment boundaries sit on keyframes, not exact microseconds).
    std::vector<TimeRange> held;
    UtcMicros maxRange = kDefaultMaxRange;
    UtcMicros maxLifetime = kDefaultMaxLifetime;
    UtcMicros clockSkew = kDefaultClockSkew;  // tolerance for issued-at only, never for expiry
    UtcMicros coverageSlack = kDefaultCoverageSlack;
};

struct Decision {
    bool granted = false;
    RefusalReason reason = RefusalReason::Malformed;
    std::string text;                     // one line for the log and the HTTP answer; no secrets
    std::optional<SignedRequest> request;  // set whenever the bytes parsed
    std::string policeName;               // trust-file name of the police signer, when known
    std::string approverName;             // trust-file name of the city approver, when known
};

// Checks, in this order: malformed, ground (Art. 8 / unknown / mask-review), police key and signature,
// approval, camera id, validity window (inverted, too long, not yet valid, expired), nonce,
// range (empty, future, too long, not held).
// The first failing check is the reason. Pure: no I/O, no clock, no global state.
[[nodiscard]] Decision decide(const DecisionInput& input);

// The form of a review still: as recorded (masks applied) or unmasked (mask-review only).
enum class StillForm { Masked, Unmasked };
[[nodiscard]] std::string_view stillFormName(StillForm form);  // "masked", "unmasked"

// What decideStill() looks at: the fields of DecisionInput without the range ones, and the form.
struct StillDecisionInput {
    std::string_view requestBytes;
    const TrustStore* trust = nullptr;       // required
    std::string_view cameraId;
    UtcMicros now = 0;
    StillForm form = StillForm::Masked;
    UtcMicros maxLifetime = kDefaultMaxLifetime;
    UtcMicros clockSkew = kDefaultClockSkew;
};

// A request for one review still (docs/review-still.md, "What the camera checks"): malformed,
// ground (Art. 8 / unknown), requester (a trusted key whose signature verifies, and a city key:
// police keys get no stills), approval by another city key, camera id, validity window, form
// (unmasked only for mask-review), then the nonce, recorded durably on a grant as in
// decideAndRecord(). `request.police` holds the requester's signature; `policeName` its name.
[[nodiscard]] Decision decideStillAndRecord(const StillDecisionInput& input, NonceStore& nonces);

// decide() with the nonce store as the replay check; on a grant it records the nonce durably
// (until the request expires) before returning, atomically with the check, so two copies of
// one request racing on two threads cannot both be granted; then prunes long-expired nonces
// (NonceStore::prune(input.now)). `input.nonceSeen` is ignored.
[[nodiscard]] Decision decideAndRecord(const DecisionInput& input, NonceStore& nonces);

}  // namespace mimamori::policy

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The ordinance's rules for releasing footage, applied to one request in a fixed order.
#include "mimamori/policy/decision.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/policy/nonce_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace mimamori::policy {
namespace {

Decision refuse(Decision d, RefusalReason reason, std::string text) {
    d.granted = false;
    d.reason = reason;
    d.text = std::move(text);
    return d;
}

// True when [from, to) lies inside the union of `held`, bridging gaps up to `slack`.
bool rangeHeld(std::vector<TimeRange> held, UtcMicros from, UtcMicros to, UtcMicros slack) {
    std::sort(held.begin(), held.end(), [](const TimeRange& a, const TimeRange& b) { return a.start < b.start; });
    UtcMicros covered = from;  // everything in [from, covered) is held
    for (const auto& piece : held) {
        if (piece.end <= piece.start) continue;
        if (piece.start > covered + slack) break;  // a gap inside the range
        covered = std::max(covered, piece.end);
        if (covered >= to) return true;
    }
    return covered >= to;
}

std::string seconds(UtcMicros micros) {
    return fmt::format("{:.0f} s", static_cast<double>(micros) / static_cast<double>(common::kMicrosPerSecond));
}

std::string days(UtcMicros micros) {
    return fmt::format("{:.2f} days", static_cast<double>(micros) / static_cast<double>(common::kMicrosPerDay));
}

// What footage and still requests share in their decision.
struct CommonInput {
    std::string_view requestBytes;
    const TrustStore* trust = nullptr;
    std::string_view cameraId;
    UtcMicros now = 0;
    UtcMicros maxLifetime = 0;
    UtcMicros clockSkew = 0;
};

enum class Asked { Footage, Still };

// The requester of footage: a police key whose signature verifies.
std::optional<Decision> checkPoliceRequester(Decision& d, const TrustStore& trust) {
    const SignedRequest& sr = *d.request;
    const TrustedKey* police = trust.find(sr.police.keyId);
    if (!police || police->role != Role::Police)
        return refuse(std::move(d), RefusalReason::UnknownPoliceKey,
                      fmt::format("signing key {} is not a trusted police key", sr.police.keyId));
    d.policeName = police->name;
    if (!verify(police->signKey, sr.body, sr.police.signature))
        return refuse(std::move(d), RefusalReason::BadPoliceSignature,
                      fmt::format("police signature by {} ({}) does not verify", police->name, police->keyId));
    return std::nullopt;
}

// The requester of a still: a city key whose signature verifies. A police key is recognised
// (and refused by name) only once its signature holds, so that refusal is an authenticated one.
std::optional<Decision> checkCityRequester(Decision& d, const TrustStore& trust) {
    const SignedRequest& sr = *d.request;
    const TrustedKey* requester = trust.find(sr.police.keyId);
    if (!requester || (requester->role != Role::City && requester->role != Role::Police))
        return refuse(std::move(d), RefusalReason::UnknownRequesterKey,
                      fmt::format("signing key {} is not a trusted city or police key", sr.police.keyId));
    d.policeName = requester->name;
    if (!verify(requester->signKey, sr.body, sr.police.signature))
        return refuse(std::move(d), RefusalReason::BadRequesterSignature,
                      fmt::format("signature by {} ({}) does not verify", requester->name, requester->keyId));
    if (requester->role == Role::Police)
        return refuse(std::move(d), RefusalReason::StillNotForPolice,
                      fmt::format("{} is a police key: review stills are given to the city only", requester->name));
    return std::nullopt;
}

// Everything except the nonce (and, for footage, the range); the caller checks those after.
Decision decideWithoutNonce(const CommonInput& in, Asked asked) {
    Decision d;
    if (!in.trust) throw std::invalid_argument("decide: no trust store");
    auto parsed = parseSignedRequest(in.requestBytes);
    if (!parsed.request) return refuse(std::move(d), RefusalReason::Malformed, "malformed request: " + parsed.error);
    d.request = std::move(*parsed.request);
    const SignedRequest& sr = *d.request;
    const Request& r = sr.request;

    if (r.ground == Ground::Disclosure)
        return refuse(std::move(d), RefusalReason::DisclosureRequest,
                      "disclosure requests are refused (ordinance Art. 8)");
    if (r.ground == Ground::Unknown)
        return refuse(std::move(d), RefusalReason::UnknownGround,
                      fmt::format("ground '{}' is none of law, emergency, criminal-investigation (Art. 7(1)){}",
                                  r.groundWord, asked == Asked::Still ? ", mask-review" : ""));
    if (r.ground == Ground::MaskReview && asked == Asked::Footage)
        return refuse(std::move(d), RefusalReason::StillOnlyGround,
                      "ground 'mask-review' asks for a review still, never for footage");

    auto requesterRefusal = asked == Asked::Footage ? checkPoliceRequester(d, *in.trust)
                                                    : checkCityRequester(d, *in.trust);
    if (requesterRefusal) return std::move(*requesterRefusal);

    if (!sr.approval)
        return refuse(std::move(d), RefusalReason::NoApproval, "the request carries no city approval");
    const TrustedKey* city = in.trust->find(sr.approval->keyId);
    if (!city || city->role != Role::City)
        return refuse(std::move(d), RefusalReason::ApprovalNotByCity,
                      fmt::format("approval key {} is not a trusted city key", sr.approval->keyId));
    d.approverName = city->name;
    if (sr.approval->keyId == sr.police.keyId)
        return refuse(std::move(d), RefusalReason::ApprovedByRequester,
                      fmt::format("{} both signed and approved the request; a second city key must approve it",
                                  city->name));
    if (!verify(city->signKey, approvalMessage(sr.body, sr.police.signature), sr.approval->signature))
        return refuse(std::move(d), RefusalReason::BadApprovalSignature,
                      fmt::format("city approval by {} ({}) does not verify", city->name, city->keyId));

    if (r.cameraId != in.cameraId)
        return refuse(std::move(d), RefusalReason::WrongCamera,
                      fmt::format("request is for camera '{}', this is '{}'", r.cameraId, in.cameraId));
    if (r.expiresAt <= r.issuedAt)
        return refuse(std::move(d), RefusalReason::LifetimeInverted,
                      fmt::format("request expires at {}, not after it is issued ({})", common::formatUtc(r.expiresAt),
                                  common::formatUtc(r.issuedAt)));
    // Both are years 0000-9999, so the difference cannot overflow.
    if (r.expiresAt - r.issuedAt > in.maxLifetime)
        return refuse(std::move(d), RefusalReason::LifetimeTooLong,
                      fmt::format("request is valid for {}, longer than the maximum {}", days(r.expiresAt - r.issuedAt),
                                  days(in.maxLifetime)));
    if (in.now + in.clockSkew < r.issuedAt)
        return refuse(std::move(d), RefusalReason::NotYetValid,
                      fmt::format("request is not valid before {}", common::formatUtc(r.issuedAt)));
    if (in.now > r.expiresAt)
        return refuse(std::move(d), RefusalReason::Expired,
                      fmt::format("request expired at {}", common::formatUtc(r.expiresAt)));

    d.granted = true;
    d.reason = RefusalReason::None;
    return d;
}

CommonInput commonOf(const DecisionInput& in) {
    return {in.requestBytes, in.trust, in.cameraId, in.now, in.maxLifetime, in.clockSkew};
}

// The range checks, after the nonce.
Decision checkRange(Decision d, const DecisionInput& in) {
    const Request& r = d.request->request;
    if (r.to <= r.from)
        return refuse(std::move(d), RefusalReason::RangeEmpty,
                      fmt::format("range {} .. {} is empty", common::formatUtc(r.from), common::formatUtc(r.to)));
    if (r.to > in.now)
        return refuse(std::move(d), RefusalReason::RangeInFuture,
                      fmt::format("range ends at {}, after now ({})", common::formatUtc(r.to),
                                  common::formatUtc(in.now)));
    if (r.to - r.from > in.maxRange)
        return refuse(std::move(d), RefusalReason::RangeTooLong,
                      fmt::format("range is {}, longer than the maximum {}", seconds(r.to - r.from),
                                  seconds(in.maxRange)));
    if (!rangeHeld(in.held, r.from, r.to, in.coverageSlack))
        return refuse(std::move(d), RefusalReason::RangeNotHeld,
                      fmt::format("the recording does not hold all of {} .. {}", common::formatUtc(r.from),
                                  common::formatUtc(r.to)));
    d.granted = true;
    d.reason = RefusalReason::None;
    d.text = fmt::format("granted: {} under {} ({}), {} .. {}, requested by {} / {}, approved by {}", r.requestId,
                         groundArticle(r.ground), r.groundWord, common::formatUtc(r.from), common::formatUtc(r.to),
                         d.policeName, r.officer, d.approverName);
    return d;
}

Decision replayed(Decision d) {
    return refuse(std::move(d), RefusalReason::ReplayedNonce, "this request (its nonce) was already granted once");
}

}  // namespace

std::string_view reasonCode(RefusalReason reason) {
    switch (reason) {
        case RefusalReason::None: return "granted";
        case RefusalReason::Malformed: return "malformed";
        case RefusalReason::DisclosureRequest: return "disclosure_request";
        case RefusalReason::UnknownGround: return "unknown_ground";
        case RefusalReason::UnknownPoliceKey: return "unknown_police_key";
        case RefusalReason::BadPoliceSignature: return "bad_police_signature";
        case RefusalReason::NoApproval: return "no_approval";
        case RefusalReason::ApprovalNotByCity: return "approval_not_by_city";
        case RefusalReason::BadApprovalSignature: return "bad_approval_signature";
        case RefusalReason::WrongCamera: return "wrong_camera";
        case RefusalReason::LifetimeInverted: return "lifetime_inverted";
        case RefusalReason::LifetimeTooLong: return "lifetime_too_long";
        case RefusalReason::NotYetValid: return "not_yet_valid";
        case RefusalReason::Expired: return "expired";
        case RefusalReason::ReplayedNonce: return "replayed_nonce";
        case RefusalReason::RangeEmpty: return "range_empty";
        case RefusalReason::RangeInFuture: return "range_in_future";
        case RefusalReason::RangeTooLong: return "range_too_long";
        case RefusalReason::RangeNotHeld: return "range_not_held";
        case RefusalReason::StillOnlyGround: return "still_only_ground";
        case RefusalReason::UnknownRequesterKey: return "unknown_requester_key";
        case RefusalReason::BadRequesterSignature: return "bad_requester_signature";
        case RefusalReason::StillNotForPolice: return "still_not_for_police";
        case RefusalReason::ApprovedByRequester: return "approved_by_requester";
        case RefusalReason::UnmaskedNeedsMaskReview: return "unmasked_needs_mask_review";
    }
    return "unknown";
}

Decision decide(const DecisionInput& in) {
    if (!in.nonceSeen) throw std::invalid_argument("decide: no nonce check");
    Decision d = decideWithoutNonce(commonOf(in), Asked::Footage);
    if (!d.granted) return d;
    if (in.nonceSeen(d.request->request.nonce)) return replayed(std::move(d));
    return checkRange(std::move(d), in);
}

namespace {

// The nonce check and record of a decision that passed everything before it, then `after`
// (the checks that follow the nonce), all under the store's lock: of two racing copies one wins.
Decision recordNonce(Decision d, NonceStore& nonces, UtcMicros now, const std::function<Decision(Decision)>& after) {
    const Request& r = d.request->request;
    bool wasReplay = false;
    nonces.checkAndRemember(r.nonce, r.expiresAt, [&](bool known) {
        if (known) {
            wasReplay = true;
            return false;
        }
        d = after(std::move(d));
        return d.granted;
    });
    if (wasReplay) {
        const auto horizon = nonces.horizon();
        if (!nonces.seen(r.nonce) && horizon) {
            std::string text = fmt::format("the request expires at {}, not after {}, the latest expiry of the "
                                           "granted nonces the camera has forgotten: it may have been granted already",
                                           common::formatUtc(r.expiresAt), common::formatUtc(*horizon));
            return refuse(std::move(d), RefusalReason::ReplayedNonce, std::move(text));
        }
        return replayed(std::move(d));
    }
    if (d.granted) {
        // Grants are rare (a few a year), so pruning on each keeps the store bounded for free.
        try {
            nonces.prune(now);
        } catch (const std::exception& e) {
            common::logWarning("policy", "{}: pruning expired nonces failed: {}", nonces.path().string(), e.what());
        }
    }
    return d;
}

}  // namespace

Decision decideAndRecord(const DecisionInput& in, NonceStore& nonces) {
    Decision d = decideWithoutNonce(commonOf(in), Asked::Footage);
    if (!d.granted) return d;
    return recordNonce(std::move(d), nonces, in.now, [&](Decision granted) { return checkRange(std::move(granted), in); });
}

std::string_view stillFormName(StillForm form) { return form == StillForm::Unmasked ? "unmasked" : "masked"; }

Decision decideStillAndRecord(const StillDecisionInput& in, NonceStore& nonces) {
    Decision d = decideWithoutNonce({in.requestBytes, in.trust, in.cameraId, in.now, in.maxLifetime, in.clockSkew},
                                    Asked::Still);
    if (!d.granted) return d;
    const Request& r = d.request->request;
    if (in.form == StillForm::Unmasked && r.ground != Ground::MaskReview)
        return refuse(std::move(d), RefusalReason::UnmaskedNeedsMaskReview,
                      fmt::format("the unmasked form is given only for mask-review, not for ground '{}'", r.groundWord));
    return recordNonce(std::move(d), nonces, in.now, [&](Decision granted) {
        const Request& g = granted.request->request;
        granted.text = fmt::format("granted: {} still for {} under {} ({}), requested by {}, approved by {}",
                                   stillFormName(in.form), g.requestId, groundArticle(g.ground), g.groundWord,
                                   granted.policeName, granted.approverName);
        return granted;
    });
}

}  // namespace mimamori::policy

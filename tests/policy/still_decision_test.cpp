// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The camera's decision on review-still requests (docs/review-still.md): who may ask, who must
// approve, which form each ground gets; and that mask-review never releases footage.
#include "mimamori/policy/decision.hpp"

#include "mimamori/policy/nonce_store.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace mimamori::policy;
using mimamori::common::kMicrosPerSecond;
using mimamori::common::parseUtc;

namespace {

constexpr UtcMicros kHour = 3600 * kMicrosPerSecond;

struct StillWorld {
    SecretKey police = generateKey(Role::Police, "hyogo-pd");
    SecretKey staff = generateKey(Role::City, "kakogawa-staff");
    SecretKey manager = generateKey(Role::City, "kakogawa-manager");
    SecretKey stranger = generateKey(Role::City, "other-city");
    TrustStore trust;
    UtcMicros now = *parseUtc("2026-11-24T12:00:00Z");

    StillWorld() {
        trust.add(police.publicKey());
        trust.add(staff.publicKey());
        trust.add(manager.publicKey());
    }

    Request request(const char* ground) const {
        Request r = newRequest(now - kHour, 24 * kHour);
        r.cameraId = "kakogawa-0412";
        r.from = r.issuedAt;
        r.to = r.issuedAt;
        r.groundWord = ground;
        r.ground = classifyGround(ground);
        r.reference = "見守りカメラ点検 2026-11";
        r.purpose = "new house facing the camera: masks to be redrawn";
        r.body = "Kakogawa City, Crime Prevention Division";
        r.officer = "Suzuki";
        r.recipient = police.boxPublic();  // any X25519 key: the camera seals to what the body names
        return r;
    }

    // Signed by `requester` over the body, as signRequest would, whatever the key's role: the
    // camera must refuse what the tool would not make.
    static SignedRequest signedBy(const Request& r, const SecretKey& requester) {
        SignedRequest s;
        s.body = serializeRequest(r);
        s.request = *parseRequestBody(s.body).request;
        s.police.keyId = requester.keyId();
        s.police.signature = sign(requester, s.body);
        return s;
    }

    static std::string approvedBy(SignedRequest s, const SecretKey& approver) {
        s.approval = SignatureBlock{approver.keyId(), sign(approver, approvalMessage(s.body, s.police.signature))};
        return serializeSignedRequest(s);
    }

    StillDecisionInput input(const std::string& bytes, StillForm form) const {
        StillDecisionInput in;
        in.requestBytes = bytes;
        in.trust = &trust;
        in.cameraId = "kakogawa-0412";
        in.now = now;
        in.form = form;
        return in;
    }

    Decision decide(const std::string& bytes, StillForm form) const {
        test::TempDir dir;
        NonceStore nonces(dir / "nonces");
        return decideStillAndRecord(input(bytes, form), nonces);
    }
};

}  // namespace

TEST_CASE("review-still matrix: a city key asks, a second city key approves; police and one key twice refused") {
    const StillWorld w;
    const std::string review = StillWorld::approvedBy(StillWorld::signedBy(w.request("mask-review"), w.staff), w.manager);

    const Decision masked = w.decide(review, StillForm::Masked);
    CHECK(masked.granted);
    CHECK(masked.policeName == "kakogawa-staff");
    CHECK(masked.approverName == "kakogawa-manager");
    CHECK(w.decide(review, StillForm::Unmasked).granted);

    // Police keys get no stills, whatever the ground and the approval.
    for (const char* ground : {"mask-review", "criminal-investigation"}) {
        CAPTURE(ground);
        const std::string byPolice =
            StillWorld::approvedBy(StillWorld::signedBy(w.request(ground), w.police), w.manager);
        CHECK(w.decide(byPolice, StillForm::Masked).reason == RefusalReason::StillNotForPolice);
    }
    // One person cannot both ask and approve.
    const std::string twice = StillWorld::approvedBy(StillWorld::signedBy(w.request("mask-review"), w.staff), w.staff);
    const Decision same = w.decide(twice, StillForm::Masked);
    CHECK(same.reason == RefusalReason::ApprovedByRequester);
    CHECK(reasonCode(same.reason) == "approved_by_requester");
    // A city key the camera does not trust, as requester or approver.
    CHECK(w.decide(StillWorld::approvedBy(StillWorld::signedBy(w.request("mask-review"), w.stranger), w.manager),
                   StillForm::Masked)
              .reason == RefusalReason::UnknownRequesterKey);
    CHECK(w.decide(StillWorld::approvedBy(StillWorld::signedBy(w.request("mask-review"), w.staff), w.stranger),
                   StillForm::Masked)
              .reason == RefusalReason::ApprovalNotByCity);
    // Unapproved.
    CHECK(w.decide(serializeSignedRequest(StillWorld::signedBy(w.request("mask-review"), w.staff)), StillForm::Masked)
              .reason == RefusalReason::NoApproval);
    // Art. 8 and unknown words stay refused by name.
    CHECK(w.decide(StillWorld::approvedBy(StillWorld::signedBy(w.request("disclosure"), w.staff), w.manager),
                   StillForm::Masked)
              .reason == RefusalReason::DisclosureRequest);
}

TEST_CASE("the unmasked form is refused for every ground but mask-review; the masked form is not") {
    const StillWorld w;
    for (const char* ground : {"law", "emergency", "criminal-investigation"}) {
        CAPTURE(ground);
        const std::string other = StillWorld::approvedBy(StillWorld::signedBy(w.request(ground), w.staff), w.manager);
        const Decision unmasked = w.decide(other, StillForm::Unmasked);
        CHECK(unmasked.reason == RefusalReason::UnmaskedNeedsMaskReview);
        CHECK(reasonCode(unmasked.reason) == "unmasked_needs_mask_review");
        CHECK(w.decide(other, StillForm::Masked).granted);
    }
}

TEST_CASE("a still request is granted once: its nonce is spent") {
    const StillWorld w;
    const std::string review = StillWorld::approvedBy(StillWorld::signedBy(w.request("mask-review"), w.staff), w.manager);
    test::TempDir dir;
    NonceStore nonces(dir / "nonces");
    CHECK(decideStillAndRecord(w.input(review, StillForm::Unmasked), nonces).granted);
    CHECK(decideStillAndRecord(w.input(review, StillForm::Masked), nonces).reason == RefusalReason::ReplayedNonce);
}

TEST_CASE("mask-review never releases footage, even signed by police and approved by the city") {
    const StillWorld w;
    Request r = w.request("mask-review");
    r.from = w.now - 2 * kHour;
    r.to = w.now - kHour;
    const std::string bytes = StillWorld::approvedBy(signRequest(r, w.police), w.manager);
    DecisionInput in;
    in.requestBytes = bytes;
    in.trust = &w.trust;
    in.cameraId = "kakogawa-0412";
    in.now = w.now;
    in.nonceSeen = [](std::span<const std::uint8_t>) { return false; };
    in.held = {{w.now - 3 * kHour, w.now}};
    const Decision d = decide(in);
    CHECK(d.reason == RefusalReason::StillOnlyGround);
    CHECK(reasonCode(d.reason) == "still_only_ground");
}

TEST_CASE("the tool lets a city key sign only mask-review requests, and never approve its own") {
    const StillWorld w;
    SignedRequest s = signRequest(w.request("mask-review"), w.staff);
    CHECK_THROWS_AS(approveRequest(s, w.staff), RequestError);
    approveRequest(s, w.manager);
    CHECK(s.approval->keyId == w.manager.keyId());
    CHECK_THROWS_AS((void)signRequest(w.request("law"), w.staff), RequestError);
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The review still against the real mimamorid on 127.0.0.1, recording a test source of known
// content (a still SMPTE pattern): the review-still matrix, each case audited; the masked
// still black under the mask; the unmasked still the very frame the recorder saw.
#include "fixture.hpp"
#include "../support/daemon_process.hpp"

#include "mimamori/masking/preview.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/still.hpp"

#include <doctest/doctest.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <signal.h>

#include <cstring>

using namespace mimamori;
using mimamori::testing::freePort;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;
using Json = nlohmann::json;

namespace {

constexpr int kWidth = 160, kHeight = 120;
// Known content: a pattern that does not move, so any frame is the frame the recorder saw.
const std::string kSource = fmt::format(
    "videotestsrc is-live=true pattern=smpte75 ! video/x-raw,format=I420,width={},height={},framerate=10/1",
    kWidth, kHeight);

// One frame of `kSource`, produced here by GStreamer and packed as the still tap packs it.
std::vector<std::uint8_t> referenceFrame() {
    gst_init(nullptr, nullptr);
    GError* error = nullptr;
    GstElement* pipeline = gst_parse_launch((kSource + " ! appsink name=sink").c_str(), &error);
    REQUIRE_MESSAGE(pipeline, (error ? error->message : "no pipeline"));
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND);
    REQUIRE(sample);
    GstVideoInfo info;
    REQUIRE(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
    GstVideoFrame frame;
    REQUIRE(gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ));
    std::vector<std::uint8_t> packed;
    for (int p = 0; p < 3; ++p) {
        const int w = p == 0 ? kWidth : kWidth / 2, h = p == 0 ? kHeight : kHeight / 2;
        const auto* data = static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p));
        for (int y = 0; y < h; ++y)
            packed.insert(packed.end(), data + y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p),
                          data + y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p) + w);
    }
    gst_video_frame_unmap(&frame);
    gst_sample_unref(sample);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    return packed;
}

struct Recipient {
    policy::BoxPublicKey pub{};
    common::SecureBuffer secret{crypto_box_SECRETKEYBYTES};
    Recipient() { crypto_box_keypair(pub.data(), secret.data()); }
};

// A still request signed by `requester` (whatever its role: the camera must refuse what the
// tool would not make) and approved by `approver`.
std::string stillRequest(const std::string& ground, const policy::SecretKey& requester,
                         const policy::SecretKey& approver, const policy::BoxPublicKey& recipient) {
    const UtcMicros now = common::SystemClock().nowUtc();
    policy::Request r = policy::newRequest(now, 3600 * kMicrosPerSecond);
    r.cameraId = "kakogawa-0042";
    r.from = r.to = r.issuedAt;
    r.groundWord = ground;
    r.ground = policy::classifyGround(ground);
    r.reference = "見守りカメラ点検 2026-12";
    r.purpose = "a new house faces the camera";
    r.body = "Kakogawa City, Crime Prevention Division";
    r.officer = "Suzuki";
    r.recipient = recipient;
    policy::SignedRequest s;
    s.body = policy::serializeRequest(r);
    s.request = *policy::parseRequestBody(s.body).request;
    s.police = {requester.keyId(), policy::sign(requester, s.body)};
    s.approval = policy::SignatureBlock{approver.keyId(),
                                       policy::sign(approver, policy::approvalMessage(s.body, s.police.signature))};
    return policy::serializeSignedRequest(s);
}

masking::BgrImage decodePng(const fs::path& png) { return masking::readFrame(png, 0); }

// The pixel at (x, y) as B, G, R.
std::array<int, 3> at(const masking::BgrImage& img, int x, int y) {
    const std::size_t i = (static_cast<std::size_t>(y) * static_cast<std::size_t>(img.width) + static_cast<std::size_t>(x)) * 3;
    return {img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]};
}

}  // namespace

TEST_CASE("review stills from the real mimamorid: the matrix, black under the mask, the frame the recorder saw") {
    TempDir dir;
    const CameraFixture fixture(dir.path());
    const policy::SecretKey manager = policy::generateKey(policy::Role::City, "kakogawa-manager");
    {
        policy::TrustStore trust = policy::TrustStore::load(dir.path() / "trust.json");
        trust.add(manager.publicKey());
        common::writeFileAtomic(dir.path() / "trust.json", trust.toJson());
    }
    const int port = freePort();
    const Json config = {
        {"camera_id", "kakogawa-0042"},
        {"source", {{"kind", "pipeline"}, {"location", kSource}}},
        {"segment_seconds", 2},
        {"storage", {{"path", "ring"}}},
        {"mask_file", "masks.json"},
        {"key_dir", "daykeys"},
        {"state_dir", "state"},
        {"retrieval", {{"address", "127.0.0.1"}, {"port", port}, {"trust_file", "trust.json"},
                       {"camera_key", "keys/camera-0042.secret"}}},
    };
    common::writeFileAtomic(dir.path() / "mimamorid.json", config.dump(2));
    mimamori::testing::Daemon daemon({"--config", (dir.path() / "mimamorid.json").string()}, dir.path() / "daemon.log");
    daemon.waitForLog(fmt::format("127.0.0.1:{}", port));

    const Recipient recipient;
    const std::string url = fmt::format("https://127.0.0.1:{}", port);
    int serial = 0;
    // Writes the request and asks for the still; the manifest, or the camera's refusal code.
    auto ask = [&](const std::string& request, policy::StillForm form) -> std::pair<std::optional<StillManifest>, std::string> {
        const fs::path file = dir.path() / fmt::format("still-request-{}.json", ++serial);
        common::writeFileAtomic(file, request);
        StillFetchOptions o;
        o.requestFile = file;
        o.cameraUrl = url;
        o.cameraKeyFile = fixture.keys / "camera-0042.pub";
        o.outDir = dir.path() / fmt::format("still-{}", serial);
        o.form = form;
        try {
            return {fetchStill(o, recipient.pub, recipient.secret.bytes()), ""};
        } catch (const FetchError& e) {
            INFO(e.what());
            CHECK(e.httpStatus() == 403);
            return {std::nullopt, e.code()};
        }
    };
    const policy::SecretKey& staff = fixture.city;
    using policy::StillForm;

    // city + city, mask-review: both forms.
    const auto unmasked = ask(stillRequest("mask-review", staff, manager, recipient.pub), StillForm::Unmasked);
    REQUIRE(unmasked.first);
    const auto masked = ask(stillRequest("mask-review", staff, manager, recipient.pub), StillForm::Masked);
    REQUIRE(masked.first);
    CHECK(unmasked.first->form == StillForm::Unmasked);
    CHECK(masked.first->width == kWidth);
    CHECK(masked.first->height == kHeight);
    CHECK(masked.first->maskSha256 == masking::loadMaskFile(dir.path() / "masks.json").sha256Hex);
    CHECK(masked.first->recipient == policy::toBase64(recipient.pub));

    // Refused: a police key (even approved by the city), one city key signing twice, the
    // unmasked form for a ground other than mask-review.
    CHECK(ask(stillRequest("mask-review", fixture.police, manager, recipient.pub), StillForm::Masked).second ==
          "still_not_for_police");
    CHECK(ask(stillRequest("mask-review", staff, staff, recipient.pub), StillForm::Masked).second ==
          "approved_by_requester");
    CHECK(ask(stillRequest("criminal-investigation", staff, manager, recipient.pub), StillForm::Unmasked).second ==
          "unmasked_needs_mask_review");

    // The unmasked still is the frame the recorder saw, pixel for pixel.
    const masking::BgrImage open = decodePng(dir.path() / "still-1" / kStillFile);
    const masking::BgrImage expected = masking::packedYuvToBgr(referenceFrame(), kWidth, kHeight, masking::PixelFormat::I420);
    REQUIRE(open.width == kWidth);
    CHECK(open.pixels == expected.pixels);
    // The masked still: black well inside the mask ([0.1, 0.4] of the frame), the same
    // picture well outside it.
    const masking::BgrImage recorded = decodePng(dir.path() / "still-2" / kStillFile);
    int notBlack = 0, changedOutside = 0, openBlack = 0;
    for (int y = 0; y < kHeight; ++y)
        for (int x = 0; x < kWidth; ++x) {
            const bool inside = x >= 18 && x < 62 && y >= 14 && y < 46;
            const bool outside = x >= 72 || y >= 54;
            if (inside && at(recorded, x, y) != std::array<int, 3>{0, 0, 0}) ++notBlack;
            if (inside && at(open, x, y) == std::array<int, 3>{0, 0, 0}) ++openBlack;
            if (outside && at(recorded, x, y) != at(open, x, y)) ++changedOutside;
        }
    CHECK(notBlack == 0);
    CHECK(openBlack == 0);  // the pattern there is not black: the mask made it so
    CHECK(changedOutside == 0);

    daemon.signal(SIGTERM);
    CHECK(daemon.wait() == 0);
    // Every case audited: two stills with their form, three refusals with their reason.
    const std::filesystem::path auditDir = dir.path() / "state" / "audit";  // the daemon's log: its fiscal-year files
    std::string audit;
    for (const auto& entry : policy::readAuditLog(auditDir)) audit += entry.line + "\n";
    CHECK(audit.find(R"("mask_review_still")") != std::string::npos);
    CHECK(audit.find(R"("form":"unmasked")") != std::string::npos);
    CHECK(audit.find(R"("form":"masked")") != std::string::npos);
    for (const char* reason : {"still_not_for_police", "approved_by_requester", "unmasked_needs_mask_review"})
        CHECK_MESSAGE(audit.find(fmt::format(R"("reason":"{}")", reason)) != std::string::npos, reason);
    const policy::AuditVerifyResult verified =
        policy::verifyAuditLog(auditDir, fixture.camera.publicKey().signKey);
    CHECK_MESSAGE(verified.ok, verified.reason);
}

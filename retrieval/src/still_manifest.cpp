// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The review still's manifest: written in a fixed member order, read strictly.
#include "mimamori/retrieval/still.hpp"

#include "mimamori/common/text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace mimamori::retrieval {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::array<const char*, 16> kMembers = {
    "format",      "request_id", "camera_id",  "request_sha256", "ground",    "form",
    "taken_at",    "width",      "height",     "mask_sha256",    "png_sha256", "png_bytes",
    "sealed_bytes", "recipient_x25519", "software", "camera_key_id"};

bool isHex64(const std::string& s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string serializeStillManifest(const StillManifest& m) {
    Json j;
    j["format"] = kStillManifestFormat;
    j["request_id"] = m.requestId;
    j["camera_id"] = m.cameraId;
    j["request_sha256"] = m.requestSha256;
    j["ground"] = m.ground;
    j["form"] = policy::stillFormName(m.form);
    j["taken_at"] = common::formatUtc(m.takenAt);
    j["width"] = m.width;
    j["height"] = m.height;
    j["mask_sha256"] = m.maskSha256;
    j["png_sha256"] = m.pngSha256;
    j["png_bytes"] = m.pngBytes;
    j["sealed_bytes"] = m.sealedBytes;
    j["recipient_x25519"] = m.recipient;
    j["software"] = m.software;
    j["camera_key_id"] = m.cameraKeyId;
    return j.dump(2) + "\n";
}

ParsedStillManifest parseStillManifest(std::string_view text) {
    ParsedStillManifest out;
    // A repeated member is refused: which copy a reader would take is not defined.
    int depth = 0;
    std::vector<std::string> seen;
    std::string repeated;
    const Json::parser_callback_t noRepeats = [&](int, nlohmann::detail::parse_event_t event, Json& parsed) {
        using Event = nlohmann::detail::parse_event_t;
        if (event == Event::object_start) ++depth;
        if (event == Event::object_end) --depth;
        if (event == Event::key && depth == 1) {
            const std::string key = parsed.get<std::string>();
            if (std::find(seen.begin(), seen.end(), key) != seen.end() && repeated.empty()) repeated = key;
            seen.push_back(key);
        }
        return true;
    };
    const Json j = Json::parse(text.begin(), text.end(), noRepeats, false);
    if (j.is_discarded() || !j.is_object()) {
        out.error = "still manifest: not a JSON object";
        return out;
    }
    if (!repeated.empty()) {
        out.error = fmt::format("still manifest: member '{}' appears twice", common::escapeControls(repeated));
        return out;
    }
    for (const auto& item : j.items())
        if (std::find_if(kMembers.begin(), kMembers.end(), [&](const char* k) { return item.key() == k; }) ==
            kMembers.end()) {
            out.error = fmt::format("still manifest: unknown member '{}'", common::escapeControls(item.key()));
            return out;
        }
    std::string error;
    auto str = [&](const char* key) -> std::string {
        if (!error.empty()) return {};
        if (!j.contains(key) || !j[key].is_string()) {
            error = fmt::format("still manifest: {} must be a string", key);
            return {};
        }
        return j[key].get<std::string>();
    };
    auto num = [&](const char* key) -> std::uint64_t {
        if (!error.empty()) return 0;
        if (!j.contains(key) || !j[key].is_number_unsigned()) {
            error = fmt::format("still manifest: {} must be a non-negative integer", key);
            return 0;
        }
        return j[key].get<std::uint64_t>();
    };
    auto hash = [&](const char* key) -> std::string {
        std::string h = str(key);
        if (error.empty() && !isHex64(h)) error = fmt::format("still manifest: {} is not 64 lowercase hex digits", key);
        return h;
    };
    StillManifest m;
    if (str("format") != kStillManifestFormat && error.empty())
        error = fmt::format("still manifest: format is not \"{}\"", kStillManifestFormat);
    m.requestId = str("request_id");
    m.cameraId = str("camera_id");
    m.requestSha256 = hash("request_sha256");
    m.ground = str("ground");
    const std::string form = str("form");
    if (error.empty() && form != "masked" && form != "unmasked") error = "still manifest: form is not masked or unmasked";
    m.form = form == "unmasked" ? policy::StillForm::Unmasked : policy::StillForm::Masked;
    const std::string taken = str("taken_at");
    if (error.empty()) {
        const auto t = common::parseUtc(taken);
        if (!t || common::formatUtc(*t) != taken) error = "still manifest: taken_at is not UTC text in canonical form";
        else m.takenAt = *t;
    }
    m.width = num("width");
    m.height = num("height");
    m.maskSha256 = hash("mask_sha256");
    m.pngSha256 = hash("png_sha256");
    m.pngBytes = num("png_bytes");
    m.sealedBytes = num("sealed_bytes");
    m.recipient = str("recipient_x25519");
    if (error.empty()) {
        std::vector<std::uint8_t> key;
        if (!policy::fromBase64(m.recipient, key) || key.size() != policy::kBoxPublicKeyBytes)
            error = "still manifest: recipient_x25519 is not a base64 X25519 public key";
    }
    m.software = str("software");
    m.cameraKeyId = str("camera_key_id");
    if (!error.empty()) {
        out.error = error;
        return out;
    }
    out.manifest = std::move(m);
    return out;
}

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Manifest serialisation and strict parsing; signatures in base64 like every other file here.
#include "mimamori/retrieval/manifest.hpp"

#include "mimamori/common/text.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

namespace mimamori::retrieval {
namespace {

using Json = nlohmann::ordered_json;

bool isHex64(const std::string& s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// UTC text exactly as docs/extract-format.md has it: YYYY-MM-DDTHH:MM:SS, then nothing or a '.'
// and exactly 6 digits, then 'Z'. No offsets, no other fraction lengths, no space for 'T'.
bool isManifestUtc(const std::string& t) {
    auto digits = [&](std::size_t from, std::size_t n) {
        for (std::size_t i = from; i < from + n; ++i)
            if (t[i] < '0' || t[i] > '9') return false;
        return true;
    };
    if (t.size() != 20 && t.size() != 27) return false;
    if (!digits(0, 4) || t[4] != '-' || !digits(5, 2) || t[7] != '-' || !digits(8, 2) || t[10] != 'T' ||
        !digits(11, 2) || t[13] != ':' || !digits(14, 2) || t[16] != ':' || !digits(17, 2))
        return false;
    if (t.size() == 27 && (t[19] != '.' || !digits(20, 6))) return false;
    return t.back() == 'Z';
}

// The first member of `obj` not in `known`, or "".
std::string unknownMember(const Json& obj, std::initializer_list<const char*> known) {
    for (const auto& item : obj.items()) {
        const bool ok = std::any_of(known.begin(), known.end(), [&](const char* k) { return item.key() == k; });
        if (!ok) return item.key();
    }
    return {};
}

}  // namespace

std::string serializeManifest(const Manifest& m) {
    Json j;
    j["format"] = kManifestFormat;
    j["request_id"] = m.requestId;
    j["camera_id"] = m.cameraId;
    j["request_sha256"] = m.requestSha256;
    j["ground"] = m.ground;
    j["reference"] = m.reference;
    j["requested"] = {{"from", common::formatUtc(m.requestedFrom)}, {"to", common::formatUtc(m.requestedTo)}};
    j["actual"] = {{"from", common::formatUtc(m.actualFrom)}, {"to", common::formatUtc(m.actualTo)}};
    j["frames"] = m.frames;
    j["timestamp_repairs"] = m.timestampRepairs;
    j["gaps"] = Json::array();
    for (const FootageGap& g : m.gaps)
        j["gaps"].push_back({{"segment", g.segment},
                             {"from", common::formatUtc(g.from)},
                             {"to", common::formatUtc(g.to)},
                             {"reason", g.reason}});
    j["mp4"] = {{"sha256", m.mp4Sha256}, {"bytes", m.mp4Bytes}};
    j["sealed_bytes"] = m.sealedBytes;
    j["recipient_x25519"] = m.recipient;
    j["mask_sha256"] = m.maskSha256;
    j["software"] = m.software;
    j["created_at"] = common::formatUtc(m.createdAt);
    j["camera_key_id"] = m.cameraKeyId;
    return j.dump(2) + "\n";
}

ParsedManifest parseManifest(std::string_view text) {
    ParsedManifest out;
    // Duplicate member names are refused: which one a reader would take is not defined.
    std::vector<std::set<std::string>> seen;
    std::string duplicate;
    const Json::parser_callback_t noDuplicates = [&](int, nlohmann::detail::parse_event_t event, Json& parsed) {
        using Event = nlohmann::detail::parse_event_t;
        if (event == Event::object_start) seen.emplace_back();
        if (event == Event::object_end && !seen.empty()) seen.pop_back();
        if (event == Event::key && !seen.empty() && !seen.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty())
            duplicate = parsed.get<std::string>();
        return true;
    };
    Json j = Json::parse(text.begin(), text.end(), noDuplicates, false);
    if (j.is_discarded() || !j.is_object()) {
        out.error = "manifest: not a JSON object";
        return out;
    }
    if (!duplicate.empty()) {
        out.error = fmt::format("manifest: member '{}' appears twice", common::escapeControls(duplicate));
        return out;
    }
    std::string error;
    auto members = [&](const Json& obj, const std::string& path, std::initializer_list<const char*> known) {
        if (!error.empty() || !obj.is_object()) return;
        const std::string unknown = unknownMember(obj, known);
        if (!unknown.empty())
            error = fmt::format("manifest: unknown member '{}{}'", path, common::escapeControls(unknown));
    };
    auto object = [&](const Json& obj, const char* key, const std::string& path) -> const Json& {
        static const Json kEmpty = Json::object();
        if (!error.empty()) return kEmpty;
        if (!obj.contains(key) || !obj[key].is_object()) {
            error = fmt::format("manifest: {}{} must be an object", path, key);
            return kEmpty;
        }
        return obj[key];
    };
    auto str = [&](const Json& obj, const char* key, const std::string& path) -> std::string {
        if (!error.empty()) return {};
        if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) {
            error = fmt::format("manifest: {}{} must be a string", path, key);
            return {};
        }
        return obj[key].get<std::string>();
    };
    auto num = [&](const Json& obj, const char* key, const std::string& path) -> std::uint64_t {
        if (!error.empty()) return 0;
        if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number_unsigned()) {
            error = fmt::format("manifest: {}{} must be a whole number", path, key);
            return 0;
        }
        return obj[key].get<std::uint64_t>();
    };
    auto time = [&](const Json& obj, const char* key, const std::string& path) -> UtcMicros {
        const std::string t = str(obj, key, path);
        if (!error.empty()) return 0;
        const auto parsed = isManifestUtc(t) ? common::parseUtc(t) : std::nullopt;
        if (!parsed)
            error = fmt::format("manifest: {}{} is not UTC text YYYY-MM-DDTHH:MM:SS[.ffffff]Z: '{}'", path, key,
                                common::escapeControls(t));
        return parsed.value_or(0);
    };
    auto hash = [&](const Json& obj, const char* key, const std::string& path) -> std::string {
        std::string h = str(obj, key, path);
        if (error.empty() && !isHex64(h)) error = fmt::format("manifest: {}{} is not a SHA-256 hex digest", path, key);
        return h;
    };

    Manifest m;
    members(j, "", {"format", "request_id", "camera_id", "request_sha256", "ground", "reference", "requested",
                    "actual", "frames", "timestamp_repairs", "gaps", "mp4", "sealed_bytes", "recipient_x25519",
                    "mask_sha256", "software", "created_at", "camera_key_id"});
    if (str(j, "format", "") != kManifestFormat && error.empty())
        error = fmt::format("manifest: format is not '{}'", kManifestFormat);
    m.requestId = str(j, "request_id", "");
    m.cameraId = str(j, "camera_id", "");
    m.requestSha256 = hash(j, "request_sha256", "");
    m.ground = str(j, "ground", "");
    m.reference = str(j, "reference", "");
    const Json& requested = object(j, "requested", "");
    members(requested, "requested.", {"from", "to"});
    m.requestedFrom = time(requested, "from", "requested.");
    m.requestedTo = time(requested, "to", "requested.");
    const Json& actual = object(j, "actual", "");
    members(actual, "actual.", {"from", "to"});
    m.actualFrom = time(actual, "from", "actual.");
    m.actualTo = time(actual, "to", "actual.");
    m.frames = num(j, "frames", "");
    m.timestampRepairs = num(j, "timestamp_repairs", "");
    if (error.empty() && (!j.contains("gaps") || !j["gaps"].is_array())) error = "manifest: gaps must be an array";
    if (error.empty()) {
        std::size_t i = 0;
        for (const Json& g : j["gaps"]) {
            const std::string path = fmt::format("gaps[{}].", i++);
            if (!g.is_object()) {
                error = fmt::format("manifest: {} must be an object", path.substr(0, path.size() - 1));
                break;
            }
            members(g, path, {"segment", "from", "to", "reason"});
            FootageGap gap;
            gap.segment = num(g, "segment", path);
            gap.from = time(g, "from", path);
            gap.to = time(g, "to", path);
            gap.reason = str(g, "reason", path);
            if (error.empty() && gap.to <= gap.from) error = fmt::format("manifest: {}to is not after from", path);
            if (!error.empty()) break;
            m.gaps.push_back(std::move(gap));
        }
    }
    const Json& mp4 = object(j, "mp4", "");
    members(mp4, "mp4.", {"sha256", "bytes"});
    m.mp4Sha256 = hash(mp4, "sha256", "mp4.");
    m.mp4Bytes = num(mp4, "bytes", "mp4.");
    m.sealedBytes = num(j, "sealed_bytes", "");
    m.recipient = str(j, "recipient_x25519", "");
    if (error.empty()) {
        std::vector<std::uint8_t> key;
        if (!policy::fromBase64(m.recipient, key) || key.size() != 32)
            error = "manifest: recipient_x25519 is not a base64 X25519 public key";
    }
    m.maskSha256 = hash(j, "mask_sha256", "");
    m.software = str(j, "software", "");
    m.createdAt = time(j, "created_at", "");
    m.cameraKeyId = str(j, "camera_key_id", "");
    if (error.empty() && m.actualTo <= m.actualFrom) error = "manifest: actual range is empty";
    if (!error.empty()) {
        out.error = error;
        return out;
    }
    out.manifest = std::move(m);
    return out;
}

std::string formatSignature(const policy::Signature& signature) { return policy::toBase64(signature) + "\n"; }

std::optional<policy::Signature> parseSignature(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    std::vector<std::uint8_t> bytes;
    if (!policy::fromBase64(text, bytes) || bytes.size() != policy::kSignatureBytes) return std::nullopt;
    policy::Signature sig{};
    std::copy(bytes.begin(), bytes.end(), sig.begin());
    return sig;
}

std::string wrapSignedManifest(std::string_view manifestText, const policy::Signature& signature) {
    Json j;
    j["manifest"] = std::string(manifestText);
    j["signature"] = policy::toBase64(signature);
    return j.dump() + "\n";
}

bool unwrapSignedManifest(std::string_view body, std::string& manifestText, policy::Signature& signature,
                          std::string& error) {
    Json j = Json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("manifest") || !j["manifest"].is_string() ||
        !j.contains("signature") || !j["signature"].is_string()) {
        error = "the camera's manifest answer is not {\"manifest\": ..., \"signature\": ...}";
        return false;
    }
    auto sig = parseSignature(j["signature"].get<std::string>());
    if (!sig) {
        error = "the camera's manifest signature is not a base64 Ed25519 signature";
        return false;
    }
    manifestText = j["manifest"].get<std::string>();
    signature = *sig;
    return true;
}

}  // namespace mimamori::retrieval

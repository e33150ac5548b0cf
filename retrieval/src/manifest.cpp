// Manifest serialisation and strict parsing; signatures in base64 like every other file here.
#include "mimamori/retrieval/manifest.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace mimamori::retrieval {
namespace {

using Json = nlohmann::ordered_json;

bool isHex64(const std::string& s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
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
    Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        out.error = "manifest: not a JSON object";
        return out;
    }
    std::string error;
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
        const auto parsed = common::parseUtc(t);
        if (!parsed) error = fmt::format("manifest: {}{} is not a UTC time: '{}'", path, key, t);
        return parsed.value_or(0);
    };
    auto hash = [&](const Json& obj, const char* key, const std::string& path) -> std::string {
        std::string h = str(obj, key, path);
        if (error.empty() && !isHex64(h)) error = fmt::format("manifest: {}{} is not a SHA-256 hex digest", path, key);
        return h;
    };

    Manifest m;
    if (str(j, "format", "") != kManifestFormat && error.empty())
        error = fmt::format("manifest: format is not '{}'", kManifestFormat);
    m.requestId = str(j, "request_id", "");
    m.cameraId = str(j, "camera_id", "");
    m.requestSha256 = hash(j, "request_sha256", "");
    m.ground = str(j, "ground", "");
    m.reference = str(j, "reference", "");
    const Json empty = Json::object();
    const Json& requested = j.contains("requested") ? j["requested"] : empty;
    const Json& actual = j.contains("actual") ? j["actual"] : empty;
    const Json& mp4 = j.contains("mp4") ? j["mp4"] : empty;
    m.requestedFrom = time(requested, "from", "requested.");
    m.requestedTo = time(requested, "to", "requested.");
    m.actualFrom = time(actual, "from", "actual.");
    m.actualTo = time(actual, "to", "actual.");
    m.frames = num(j, "frames", "");
    m.mp4Sha256 = hash(mp4, "sha256", "mp4.");
    m.mp4Bytes = num(mp4, "bytes", "mp4.");
    m.sealedBytes = num(j, "sealed_bytes", "");
    m.recipient = str(j, "recipient_x25519", "");
    m.maskSha256 = str(j, "mask_sha256", "");
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

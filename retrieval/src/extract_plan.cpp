// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The extract plan file: serialisation and strict parsing (docs/extract-plan.md).
#include "mimamori/retrieval/extract_plan.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/retrieval/manifest.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <limits>

namespace mimamori::retrieval {
namespace {

using Json = nlohmann::ordered_json;

bool isLowerHex(const std::string& s, std::size_t size) {
    return s.size() == size && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

Json base64List(const std::vector<std::vector<std::uint8_t>>& items) {
    Json a = Json::array();
    for (const auto& item : items) a.push_back(policy::toBase64(item));
    return a;
}

// Reads members with their types; the first problem is kept, later reads answer defaults.
class Reader {
public:
    std::string error;

    void members(const Json& obj, std::string_view where, std::initializer_list<const char*> known) {
        if (!error.empty()) return;
        if (!obj.is_object()) {
            fail(fmt::format("{} must be an object", where));
            return;
        }
        if (obj.size() != known.size()) fail(fmt::format("{} must have exactly {} members", where, known.size()));
        for (const char* k : known)
            if (!obj.contains(k)) fail(fmt::format("{}.{} is missing", where, k));
    }
    std::string text(const Json& obj, const char* key) {
        if (!error.empty() || !obj.contains(key) || !obj[key].is_string()) return fail(fmt::format("{} must be a string", key)), std::string();
        return obj[key].get<std::string>();
    }
    std::uint64_t whole(const Json& obj, const char* key) {
        if (!error.empty() || !obj.contains(key) || !obj[key].is_number_unsigned()) return fail(fmt::format("{} must be a whole number", key)), 0;
        return obj[key].get<std::uint64_t>();
    }
    std::int64_t micros(const Json& obj, const char* key) {
        if (!error.empty() || !obj.contains(key) || !obj[key].is_number_integer()) return fail(fmt::format("{} must be an integer", key)), 0;
        return obj[key].get<std::int64_t>();
    }
    template <std::size_t N>
    std::array<std::uint8_t, N> fixed(const Json& obj, const char* key) {
        std::array<std::uint8_t, N> out{};
        std::vector<std::uint8_t> bytes;
        const std::string t = text(obj, key);
        if (error.empty() && (!policy::fromBase64(t, bytes) || bytes.size() != N))
            fail(fmt::format("{} must be {} bytes in base64", key, N));
        if (error.empty()) std::copy(bytes.begin(), bytes.end(), out.begin());
        return out;
    }
    std::vector<std::vector<std::uint8_t>> base64Items(const Json& obj, const char* key) {
        std::vector<std::vector<std::uint8_t>> out;
        if (!error.empty() || !obj.contains(key) || !obj[key].is_array()) return fail(fmt::format("{} must be an array", key)), out;
        for (const Json& item : obj[key]) {
            std::vector<std::uint8_t> bytes;
            if (!item.is_string() || !policy::fromBase64(item.get<std::string>(), bytes) || bytes.empty())
                return fail(fmt::format("{}: every item must be base64 bytes", key)), out;
            out.push_back(std::move(bytes));
        }
        return out;
    }
    void fail(std::string message) {
        if (error.empty()) error = "plan: " + std::move(message);
    }
};

}  // namespace

std::string serializePlan(const ExtractPlan& p) {
    Json j;
    j["format"] = kPlanFormat;
    j["extract_id"] = p.extractId;
    j["request_id"] = p.requestId;
    j["request_sha256"] = p.requestSha256;
    j["ground"] = p.ground;
    j["reference"] = p.reference;
    j["granted_at_us"] = p.grantedAt;
    j["from_us"] = p.from;
    j["to_us"] = p.to;
    j["recipient_x25519"] = policy::toBase64(p.recipient);
    j["sealed_key"] = policy::toBase64(p.seal.sealedKey);
    j["stream_header"] = policy::toBase64(p.seal.streamHeader);
    j["segments"] = Json::array();
    for (const store::SegmentInfo& s : p.recipe.segments)
        j["segments"].push_back(
            {{"sequence", s.sequence}, {"start_us", s.start}, {"end_us", s.end}, {"bytes", s.bytesOnDisk}});
    j["formats"] = Json::array();
    for (const ParameterSets& f : p.recipe.formats) j["formats"].push_back({{"sps", base64List(f.sps)}, {"pps", base64List(f.pps)}});
    j["manifest"] = p.manifest;
    j["signature"] = p.signature ? policy::toBase64(*p.signature) : std::string();
    return j.dump(-1, ' ', false, Json::error_handler_t::strict) + "\n";
}

ParsedPlan parsePlan(std::string_view text) {
    ParsedPlan out;
    if (text.size() > kMaxPlanBytes) {
        out.error = fmt::format("plan: {} bytes, more than {}", text.size(), kMaxPlanBytes);
        return out;
    }
    if (text.empty() || text.back() != '\n') {
        out.error = "plan: does not end with a newline (cut short)";
        return out;
    }
    const Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    Reader r;
    r.members(j, "plan", {"format", "extract_id", "request_id", "request_sha256", "ground", "reference", "granted_at_us", "from_us", "to_us",
                          "recipient_x25519", "sealed_key", "stream_header", "segments", "formats", "manifest",
                          "signature"});
    ExtractPlan p;
    if (r.error.empty() && r.text(j, "format") != kPlanFormat) r.fail("format is not " + std::string(kPlanFormat));
    p.extractId = r.text(j, "extract_id");
    if (r.error.empty() && !isLowerHex(p.extractId, 32)) r.fail("extract_id must be 32 lowercase hex digits");
    p.requestId = r.text(j, "request_id");
    p.requestSha256 = r.text(j, "request_sha256");
    if (r.error.empty() && !isLowerHex(p.requestSha256, 64)) r.fail("request_sha256 must be 64 lowercase hex digits");
    p.ground = r.text(j, "ground");
    p.reference = r.text(j, "reference");
    p.grantedAt = r.micros(j, "granted_at_us");
    p.from = r.micros(j, "from_us");
    p.to = r.micros(j, "to_us");
    if (r.error.empty() && p.to <= p.from) r.fail("to_us must be after from_us");
    p.recipient = r.fixed<policy::kBoxPublicKeyBytes>(j, "recipient_x25519");
    p.seal.sealedKey = r.fixed<kSealedKeyBytes>(j, "sealed_key");
    p.seal.streamHeader = r.fixed<crypto_secretstream_xchacha20poly1305_HEADERBYTES>(j, "stream_header");
    if (r.error.empty() && (!j["segments"].is_array() || j["segments"].empty())) r.fail("segments must be a non-empty array");
    if (r.error.empty()) {
        for (const Json& s : j["segments"]) {
            r.members(s, "segments[]", {"sequence", "start_us", "end_us", "bytes"});
            store::SegmentInfo info;
            info.sequence = r.whole(s, "sequence");
            info.start = r.micros(s, "start_us");
            info.end = r.micros(s, "end_us");
            info.bytesOnDisk = r.whole(s, "bytes");
            if (r.error.empty() && !p.recipe.segments.empty() && info.sequence <= p.recipe.segments.back().sequence)
                r.fail("segments must be in increasing sequence order");
            p.recipe.segments.push_back(info);
        }
    }
    if (r.error.empty() && !j["formats"].is_array()) r.fail("formats must be an array");
    if (r.error.empty()) {
        for (const Json& f : j["formats"]) {
            r.members(f, "formats[]", {"sps", "pps"});
            ParameterSets ps;
            ps.sps = r.base64Items(f, "sps");
            ps.pps = r.base64Items(f, "pps");
            p.recipe.formats.push_back(std::move(ps));
        }
    }
    p.manifest = r.text(j, "manifest");
    const std::string signature = r.text(j, "signature");
    if (r.error.empty() && p.manifest.empty() != signature.empty()) r.fail("manifest and signature come together");
    if (r.error.empty() && p.manifest.empty() != p.recipe.formats.empty())
        r.fail("formats are present exactly when the manifest is");
    if (r.error.empty() && !p.manifest.empty()) {
        p.signature = parseSignature(signature + "\n");
        if (!p.signature) r.fail("signature must be 64 bytes in base64");
        const ParsedManifest m = parseManifest(p.manifest);
        if (!m.manifest) r.fail(m.error);
        else p.recipe.gaps = m.manifest->gaps;
    }
    if (!r.error.empty()) {
        out.error = r.error;
        return out;
    }
    out.plan = std::move(p);
    return out;
}

}  // namespace mimamori::retrieval

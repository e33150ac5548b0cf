// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The request body (strict line format) and its JSON envelope with police and city signatures.
#include "mimamori/policy/request.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"

#include <sodium.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace mimamori::policy {
namespace {

constexpr std::string_view kBodyMagic = "mimamori-request 1";
constexpr std::string_view kEnvelopeFormat = "mimamori-signed-request-v1";
constexpr std::string_view kApprovalDomain = "mimamori-approval-v1\n";

// The body's fields, in the only order they may appear.
constexpr std::array<std::string_view, 13> kFieldOrder = {
    "request-id", "camera", "from", "to", "ground", "reference", "purpose",
    "requesting-body", "officer", "recipient-x25519", "issued-at", "expires-at", "nonce"};

constexpr std::size_t kMaxTextField = 1024;

bool isIdChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

// Why `s` is not a valid id, or nothing. Reasons name positions and limits, never the text.
std::optional<std::string> idProblem(std::string_view s) {
    if (s.empty()) return "is empty";
    if (s.size() > 64) return fmt::format("is {} bytes, the limit is 64", s.size());
    const auto bad = std::find_if_not(s.begin(), s.end(), isIdChar);
    if (bad != s.end())
        return fmt::format("has a byte 0x{:02X} at byte {}; only A-Z a-z 0-9 . _ - are allowed",
                           static_cast<unsigned char>(*bad), bad - s.begin());
    return std::nullopt;
}

bool validId(std::string_view s) { return !idProblem(s); }

std::optional<std::string> groundWordProblem(std::string_view s) {
    if (s.empty()) return "is empty";
    if (s.size() > 64) return fmt::format("is {} bytes, the limit is 64", s.size());
    const auto bad = std::find_if_not(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (bad != s.end())
        return fmt::format("has a byte 0x{:02X} at byte {}; only a-z 0-9 - are allowed", static_cast<unsigned char>(*bad),
                           bad - s.begin());
    return std::nullopt;
}

bool validGroundWord(std::string_view s) { return !groundWordProblem(s); }

// Why `s` is not well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without control
// characters within the byte limit, or nothing.
std::optional<std::string> textProblem(std::string_view s) {
    if (s.empty()) return "is empty";
    if (s.size() > kMaxTextField) return fmt::format("is {} bytes, the limit is {}", s.size(), kMaxTextField);
    std::size_t i = 0;
    const auto invalidAt = [](std::size_t at) { return fmt::format("is not valid UTF-8 at byte {}", at); };
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F) return fmt::format("has a control character U+{:04X} at byte {}", c, i);
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return invalidAt(i);
        }
        if (i + len > s.size()) return invalidAt(i);
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return invalidAt(i);
            cp = cp << 6 | (cc & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return invalidAt(i);
        if (cp >= 0x80 && cp <= 0x9F) return fmt::format("has a control character U+{:04X} at byte {}", cp, i);
        i += len;
    }
    return std::nullopt;
}

bool validText(std::string_view s) { return !textProblem(s); }

bool validNonceHex(std::string_view s) {
    if (s.size() < 2 * kNonceMinBytes || s.size() > 2 * kNonceMaxBytes || s.size() % 2 != 0) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Only the form formatUtc writes is accepted, so every instant has exactly one spelling.
std::optional<UtcMicros> parseCanonicalUtc(std::string_view s) {
    const auto t = common::parseUtc(s);
    if (!t || common::formatUtc(*t) != s) return std::nullopt;
    return t;
}

// How an error line names a JSON member: known names as they are; any other name only by a
// hash, because member names come from the network and an error line is stored in the audit
// log, logged and shown to people (a name could carry terminal controls or fake a line).
std::string memberLabel(std::string_view name) {
    static constexpr std::array<std::string_view, 6> kKnown = {"format", "body", "police", "approval", "key_id",
                                                               "signature"};
    if (std::find(kKnown.begin(), kKnown.end(), name) != kKnown.end()) return fmt::format("\"{}\"", name);
    return fmt::format("with name hash {}", blake2b256Hex(name).substr(0, kMemberNameHashDigits));
}

std::span<const std::uint8_t> asBytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void checkForSerialize(bool ok, std::string_view field) {
    if (!ok) throw RequestError(fmt::format("request field '{}' is invalid (see docs/request-format.md)", field));
}

// As above, saying why: the byte limit, a control character and where.
void checkForSerialize(const std::optional<std::string>& problem, std::string_view field) {
    if (problem) throw RequestError(fmt::format("request field '{}' {} (see docs/request-format.md)", field, *problem));
}

std::optional<SignatureBlock> parseSignatureBlock(const nlohmann::json& j, std::string_view name, std::string& error) {
    if (!j.is_object() || j.size() != 2 || !j.contains("key_id") || !j.contains("signature") ||
        !j["key_id"].is_string() || !j["signature"].is_string()) {
        error = fmt::format("\"{}\" must be an object with exactly \"key_id\" and \"signature\" strings", name);
        return std::nullopt;
    }
    SignatureBlock block;
    block.keyId = j["key_id"].get<std::string>();
    if (block.keyId.size() != 16 ||
        !std::all_of(block.keyId.begin(), block.keyId.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
        error = fmt::format("\"{}\".key_id must be 16 lowercase hex digits", name);
        return std::nullopt;
    }
    std::vector<std::uint8_t> sig;
    if (!fromBase64(j["signature"].get<std::string>(), sig) || sig.size() != kSignatureBytes) {
        error = fmt::format("\"{}\".signature must be base64 of {} bytes", name, kSignatureBytes);
        return std::nullopt;
    }
    std::copy(sig.begin(), sig.end(), block.signature.begin());
    return block;
}

}  // namespace

Ground classifyGround(std::string_view word) {
    if (word == "law") return Ground::Law;
    if (word == "emergency") return Ground::Emergency;
    if (word == "criminal-investigation") return Ground::CriminalInvestigation;
    if (word == "disclosure") return Ground::Disclosure;
    if (word == "mask-review") return Ground::MaskReview;
    return Ground::Unknown;
}

std::string_view groundArticle(Ground ground) {
    switch (ground) {
        case Ground::Law: return "Art. 7(1)(1)";
        case Ground::Emergency: return "Art. 7(1)(2)";
        case Ground::CriminalInvestigation: return "Art. 7(1)(3)";
        case Ground::Disclosure: return "Art. 8";
        case Ground::MaskReview: return "Art. 4(3)-(4)";
        case Ground::Unknown: return "none";
    }
    return "none";
}

bool isGrantableGround(Ground ground) {
    return ground == Ground::Law || ground == Ground::Emergency || ground == Ground::CriminalInvestigation;
}

std::string serializeRequest(const Request& r) {
    checkForSerialize(r.version == 1, "version");
    checkForSerialize(idProblem(r.requestId), "request-id");
    checkForSerialize(idProblem(r.cameraId), "camera");
    checkForSerialize(groundWordProblem(r.groundWord), "ground");
    checkForSerialize(textProblem(r.reference), "reference");
    checkForSerialize(textProblem(r.purpose), "purpose");
    checkForSerialize(textProblem(r.body), "requesting-body");
    checkForSerialize(textProblem(r.officer), "officer");
    checkForSerialize(r.nonce.size() >= kNonceMinBytes && r.nonce.size() <= kNonceMaxBytes, "nonce");
    std::string out;
    out += kBodyMagic;
    out += '\n';
    auto line = [&out](std::string_view name, std::string_view value) {
        out += name;
        out += ": ";
        out += value;
        out += '\n';
    };
    line("request-id", r.requestId);
    line("camera", r.cameraId);
    line("from", common::formatUtc(r.from));
    line("to", common::formatUtc(r.to));
    line("ground", r.groundWord);
    line("reference", r.reference);
    line("purpose", r.purpose);
    line("requesting-body", r.body);
    line("officer", r.officer);
    line("recipient-x25519", toBase64(r.recipient));
    line("issued-at", common::formatUtc(r.issuedAt));
    line("expires-at", common::formatUtc(r.expiresAt));
    line("nonce", common::toHex(r.nonce));
    if (out.size() > kMaxRequestBodyBytes)
        throw RequestError(fmt::format("request body is {} bytes, more than {}", out.size(), kMaxRequestBodyBytes));
    return out;
}

ParsedBody parseRequestBody(std::string_view bytes) {
    ParsedBody result;
    auto fail = [&result](std::string message) {
        result.error = std::move(message);
        return result;
    };
    if (bytes.size() > kMaxRequestBodyBytes)
        return fail(fmt::format("request body is {} bytes, more than {}", bytes.size(), kMaxRequestBodyBytes));
    std::vector<std::string_view> lines;
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        const std::size_t nl = bytes.find('\n', pos);
        if (nl == std::string_view::npos)
            return fail(fmt::format("request body line {} has no final newline (truncated?)", lines.size() + 1));
        lines.push_back(bytes.substr(pos, nl - pos));
        pos = nl + 1;
    }
    if (lines.empty() || lines[0] != kBodyMagic)
        return fail(fmt::format("request body line 1: expected '{}'", kBodyMagic));
    if (lines.size() != kFieldOrder.size() + 1)
        return fail(fmt::format("request body has {} lines, expected {}", lines.size(), kFieldOrder.size() + 1));

    Request r;
    std::array<std::string_view, kFieldOrder.size()> values{};
    for (std::size_t i = 0; i < kFieldOrder.size(); ++i) {
        const std::string_view line = lines[i + 1];
        const std::string_view name = kFieldOrder[i];
        if (line.size() < name.size() + 2 || line.substr(0, name.size()) != name ||
            line.substr(name.size(), 2) != ": ")
            return fail(fmt::format("request body line {}: expected '{}: ...'", i + 2, name));
        values[i] = line.substr(name.size() + 2);
    }
    auto bad = [&](std::size_t i, std::string_view rule) {
        return fail(fmt::format("request body line {} ({}): {}", i + 2, kFieldOrder[i], rule));
    };
    if (!validId(values[0])) return bad(0, "1-64 of A-Z a-z 0-9 . _ -");
    r.requestId = std::string(values[0]);
    if (!validId(values[1])) return bad(1, "1-64 of A-Z a-z 0-9 . _ -");
    r.cameraId = std::string(values[1]);
    const auto from = parseCanonicalUtc(values[2]);
    if (!from) return bad(2, "not a UTC time in canonical form (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)");
    r.from = *from;
    const auto to = parseCanonicalUtc(values[3]);
    if (!to) return bad(3, "not a UTC time in canonical form (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)");
    r.to = *to;
    if (!validGroundWord(values[4])) return bad(4, "1-64 of a-z 0-9 -");
    r.groundWord = std::string(values[4]);
    r.ground = classifyGround(r.groundWord);
    for (std::size_t i : {5u, 6u, 7u, 8u})
        if (!validText(values[i])) return bad(i, "1-1024 bytes of UTF-8 without control characters");
    r.reference = std::string(values[5]);
    r.purpose = std::string(values[6]);
    r.body = std::string(values[7]);
    r.officer = std::string(values[8]);
    std::vector<std::uint8_t> recipient;
    if (!fromBase64(values[9], recipient) || recipient.size() != kBoxPublicKeyBytes ||
        toBase64(recipient) != values[9])
        return bad(9, "base64 of 32 bytes");
    std::copy(recipient.begin(), recipient.end(), r.recipient.begin());
    const auto issued = parseCanonicalUtc(values[10]);
    if (!issued) return bad(10, "not a UTC time in canonical form (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)");
    r.issuedAt = *issued;
    const auto expires = parseCanonicalUtc(values[11]);
    if (!expires) return bad(11, "not a UTC time in canonical form (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)");
    r.expiresAt = *expires;
    std::string nonce;
    if (!validNonceHex(values[12]) || !common::fromHex(values[12], nonce))
        return bad(12, fmt::format("{}-{} bytes as lowercase hex", kNonceMinBytes, kNonceMaxBytes));
    r.nonce.assign(nonce.begin(), nonce.end());
    result.request = std::move(r);
    return result;
}

std::string approvalMessage(std::string_view body, const Signature& policeSignature) {
    std::string msg;
    msg.reserve(kApprovalDomain.size() + body.size() + policeSignature.size());
    msg += kApprovalDomain;
    msg += body;
    msg.append(reinterpret_cast<const char*>(policeSignature.data()), policeSignature.size());
    return msg;
}

SignedRequest signRequest(const Request& request, const SecretKey& requesterKey) {
    const bool cityReview = requesterKey.role() == Role::City && classifyGround(request.groundWord) == Ground::MaskReview;
    if (requesterKey.role() != Role::Police && !cityReview)
        throw RequestError(fmt::format("key '{}' is a {} key; requests are signed with a police key ({} only with "
                                       "a city key)",
                                       requesterKey.name(), roleName(requesterKey.role()), "mask-review"));
    SignedRequest out;
    out.body = serializeRequest(request);
    auto parsed = parseRequestBody(out.body);
    if (!parsed.request) throw RequestError(parsed.error);  // serialize and parse disagree: a bug
    out.request = std::move(*parsed.request);
    out.police.keyId = requesterKey.keyId();
    out.police.signature = sign(requesterKey, out.body);
    return out;
}

void approveRequest(SignedRequest& request, const SecretKey& cityKey) {
    if (cityKey.role() != Role::City)
        throw RequestError(fmt::format("key '{}' is a {} key; approvals are signed with a city key", cityKey.name(),
                                       roleName(cityKey.role())));
    if (cityKey.keyId() == request.police.keyId)
        throw RequestError(fmt::format("key '{}' signed this request; a second city key must approve it",
                                       cityKey.name()));
    SignatureBlock block;
    block.keyId = cityKey.keyId();
    block.signature = sign(cityKey, approvalMessage(request.body, request.police.signature));
    request.approval = block;
}

std::string serializeSignedRequest(const SignedRequest& request) {
    nlohmann::ordered_json doc;
    doc["format"] = std::string(kEnvelopeFormat);
    doc["body"] = toBase64(asBytes(request.body));
    doc["police"] = {{"key_id", request.police.keyId}, {"signature", toBase64(request.police.signature)}};
    if (request.approval)
        doc["approval"] = {{"key_id", request.approval->keyId}, {"signature", toBase64(request.approval->signature)}};
    return doc.dump(2) + "\n";
}

ParsedSignedRequest parseSignedRequest(std::string_view bytes) {
    ParsedSignedRequest result;
    auto fail = [&result](std::string message) {
        result.error = std::move(message);
        return result;
    };
    if (bytes.empty()) return fail("empty request");
    if (bytes.size() > kMaxSignedRequestBytes)
        return fail(fmt::format("request is {} bytes, more than the limit of {}", bytes.size(), kMaxSignedRequestBytes));
    // nlohmann's parser is iterative, so deep nesting cannot overflow the stack; the size cap
    // above bounds the memory it may take.
    // Duplicate member names are refused: readers that keep the first and readers that keep
    // the last would otherwise see different requests.
    std::vector<std::vector<std::string>> openObjects;
    std::optional<std::string> duplicate;
    const auto noDuplicates = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        if (event == Event::object_start) {
            openObjects.emplace_back();
        } else if (event == Event::object_end && !openObjects.empty()) {
            openObjects.pop_back();
        } else if (event == Event::key && !openObjects.empty()) {
            auto& names = openObjects.back();
            const std::string name = parsed.get<std::string>();
            if (std::find(names.begin(), names.end(), name) != names.end() && !duplicate) duplicate = name;
            names.push_back(name);
        }
        return true;
    };
    const nlohmann::json doc = nlohmann::json::parse(bytes.begin(), bytes.end(), noDuplicates, false);
    if (doc.is_discarded()) return fail("request is not valid JSON (truncated or garbled)");
    if (duplicate) return fail(fmt::format("member {} appears twice in one object", memberLabel(*duplicate)));
    if (!doc.is_object()) return fail("request must be a JSON object");
    for (const auto& [name, value] : doc.items())
        if (name != "format" && name != "body" && name != "police" && name != "approval")
            return fail(fmt::format("unknown member {} in request", memberLabel(name)));
    if (!doc.contains("format") || !doc["format"].is_string() || doc["format"].get<std::string>() != kEnvelopeFormat)
        return fail(fmt::format("\"format\" must be \"{}\"", kEnvelopeFormat));
    if (!doc.contains("body") || !doc["body"].is_string()) return fail("missing \"body\" string");
    std::vector<std::uint8_t> body;
    if (!fromBase64(doc["body"].get<std::string>(), body)) return fail("\"body\" is not valid base64");
    if (!doc.contains("police")) return fail("missing \"police\" signature");
    SignedRequest out;
    out.body.assign(body.begin(), body.end());
    auto parsed = parseRequestBody(out.body);
    if (!parsed.request) return fail(parsed.error);
    out.request = std::move(*parsed.request);
    auto police = parseSignatureBlock(doc["police"], "police", result.error);
    if (!police) return result;
    out.police = *police;
    if (doc.contains("approval")) {
        auto approval = parseSignatureBlock(doc["approval"], "approval", result.error);
        if (!approval) return result;
        out.approval = *approval;
    }
    result.request = std::move(out);
    return result;
}

Request newRequest(UtcMicros now, UtcMicros validFor) {
    common::ensureSodium();
    Request r;
    std::array<std::uint8_t, 16> id{};
    randombytes_buf(id.data(), id.size());
    r.requestId = common::toHex(id);
    r.nonce.resize(kNonceMinBytes);
    randombytes_buf(r.nonce.data(), r.nonce.size());
    // Whole seconds: the body carries no false precision and reads cleanly.
    r.issuedAt = now - now % common::kMicrosPerSecond;
    r.expiresAt = r.issuedAt + validFor;
    return r;
}

std::string describeRequest(const Request& r) {
    std::string out;
    // Text fields are police input and may hold bidi overrides (valid text): city staff must
    // see what they approve, never text reordered to read as something else.
    auto row = [&out](std::string_view label, std::string_view value) {
        out += fmt::format("  {:<18}{}\n", label, common::escapeControls(value));
    };
    row("request id", r.requestId);
    row("camera", r.cameraId);
    row("from", common::formatUtcAndJst(r.from));
    row("to", common::formatUtcAndJst(r.to));
    const double seconds = static_cast<double>(r.to - r.from) / static_cast<double>(common::kMicrosPerSecond);
    row("duration", fmt::format("{:.0f} s", seconds));
    row("ground", fmt::format("{} ({}{})", r.groundWord, groundArticle(r.ground),
                              isGrantableGround(r.ground) ? "" : ", cannot be granted"));
    row("case reference", r.reference);
    row("purpose", r.purpose);
    row("requesting body", r.body);
    row("officer", r.officer);
    row("recipient key", toBase64(r.recipient));
    row("issued at", common::formatUtcAndJst(r.issuedAt));
    row("expires at", common::formatUtcAndJst(r.expiresAt));
    row("nonce", common::toHex(r.nonce));
    return out;
}

}  // namespace mimamori::policy

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The city log route's body and answer, byte by byte (docs/city-log-route.md §1 and §4).
#include "mimamori/retrieval/city_log.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <charconv>

namespace mimamori::retrieval {
namespace {

constexpr std::string_view kRequestMagic = "mimamori-city-log-request-v1";
constexpr std::string_view kAnswerMagic = "mimamori-city-log-v1";
constexpr std::string_view kSignatureName = "signature: ";

bool isCameraId(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
           });
}

bool isLowerHex(std::string_view s, std::size_t size) {
    return s.size() == size &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A decimal whole number without sign or leading zeros, at most `max`.
std::optional<std::uint64_t> parseDecimal(std::string_view s, std::uint64_t max) {
    if (s.empty() || s.size() > 20 || (s.size() > 1 && s.front() == '0')) return std::nullopt;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v > max) return std::nullopt;
    return v;
}

std::optional<common::UtcMicros> parseCanonicalTime(std::string_view s) {
    const auto t = common::parseUtc(s);
    if (!t || common::formatUtc(*t) != s) return std::nullopt;
    return t;
}

template <std::size_t N>
bool decodeBase64(std::string_view text, std::array<std::uint8_t, N>& out) {
    std::vector<std::uint8_t> bytes;
    if (!policy::fromBase64(text, bytes) || bytes.size() != N) return false;
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return true;
}

// Reads "NAME: VALUE\n" at `pos`; advances `pos` past the '\n'.
std::optional<std::string_view> headerLine(std::string_view text, std::size_t& pos, std::string_view name) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return std::nullopt;
    const std::string_view line = text.substr(pos, nl - pos);
    if (line.size() < name.size() + 2 || !line.starts_with(name) || line.substr(name.size(), 2) != ": ")
        return std::nullopt;
    pos = nl + 1;
    return line.substr(name.size() + 2);
}

}  // namespace

std::optional<CityLogRequest> parseCityLogRequest(std::string_view body, std::string& error) {
    auto fail = [&error](std::string text) {
        error = std::move(text);
        return std::nullopt;
    };
    if (body.size() > kMaxCityLogBodyBytes)
        return fail(fmt::format("the body is longer than {} bytes", kMaxCityLogBodyBytes));
    if (body.find('\r') != std::string_view::npos) return fail("the body contains a carriage return");
    std::size_t pos = 0;
    if (!body.starts_with(std::string(kRequestMagic) + "\n"))
        return fail(fmt::format("the body does not start with the line {}", kRequestMagic));
    pos = kRequestMagic.size() + 1;
    CityLogRequest r;
    const auto camera = headerLine(body, pos, "camera");
    if (!camera || !isCameraId(*camera)) return fail("line 2 is not 'camera: ' and a camera id");
    r.cameraId = std::string(*camera);
    const auto after = headerLine(body, pos, "after-seq");
    const auto afterSeq = after ? parseDecimal(*after, std::uint64_t{INT64_MAX}) : std::nullopt;
    if (!afterSeq) return fail("line 3 is not 'after-seq: ' and a decimal number");
    r.afterSeq = *afterSeq;
    const auto keyId = headerLine(body, pos, "key-id");
    if (!keyId || !isLowerHex(*keyId, 16)) return fail("line 4 is not 'key-id: ' and 16 lowercase hex digits");
    r.keyId = std::string(*keyId);
    const auto recipient = headerLine(body, pos, "recipient-x25519");
    if (!recipient || !decodeBase64(*recipient, r.recipient))
        return fail("line 5 is not 'recipient-x25519: ' and base64 of 32 bytes");
    const auto issued = headerLine(body, pos, "issued-at");
    const auto issuedAt = issued ? parseCanonicalTime(*issued) : std::nullopt;
    if (!issuedAt) return fail("line 6 is not 'issued-at: ' and a canonical UTC time");
    r.issuedAt = *issuedAt;
    const auto expires = headerLine(body, pos, "expires-at");
    const auto expiresAt = expires ? parseCanonicalTime(*expires) : std::nullopt;
    if (!expiresAt) return fail("line 7 is not 'expires-at: ' and a canonical UTC time");
    r.expiresAt = *expiresAt;
    const auto nonce = headerLine(body, pos, "nonce");
    std::string nonceBytes;
    if (!nonce || !isLowerHex(*nonce, 2 * kCityLogNonceBytes) || !common::fromHex(*nonce, nonceBytes))
        return fail("line 8 is not 'nonce: ' and 32 lowercase hex digits");
    std::copy(nonceBytes.begin(), nonceBytes.end(), r.nonce.begin());
    r.signedBytes = std::string(body.substr(0, pos));
    const auto signature = headerLine(body, pos, "signature");
    if (!signature || !decodeBase64(*signature, r.signature))
        return fail("line 9 is not 'signature: ' and base64 of 64 bytes");
    if (pos != body.size()) return fail("bytes after the signature line");
    return r;
}

std::string buildCityLogRequest(const policy::SecretKey& cityKey, std::string_view cameraId, std::uint64_t afterSeq,
                                common::UtcMicros now) {
    if (cityKey.role() != policy::Role::City)
        throw policy::KeyError(fmt::format("key '{}' is a {} key; the city log route takes a city key", cityKey.name(),
                                           policy::roleName(cityKey.role())));
    const policy::BoxPublicKey& recipient = cityKey.boxPublic();  // explains an older city key
    common::ensureSodium();
    std::array<std::uint8_t, kCityLogNonceBytes> nonce{};
    randombytes_buf(nonce.data(), nonce.size());
    const common::UtcMicros issued = now - now % common::kMicrosPerSecond;
    std::string body = fmt::format("{}\ncamera: {}\nafter-seq: {}\nkey-id: {}\nrecipient-x25519: {}\nissued-at: {}\n"
                                   "expires-at: {}\nnonce: {}\n",
                                   kRequestMagic, cameraId, afterSeq, cityKey.keyId(), policy::toBase64(recipient),
                                   common::formatUtc(issued), common::formatUtc(issued + kMaxCityLogLifetime),
                                   common::toHex(nonce));
    body += fmt::format("{}{}\n", kSignatureName, policy::toBase64(policy::sign(cityKey, body)));
    return body;
}

std::string formatCityLogAnswer(const CityLogAnswer& a, const policy::SecretKey& cameraKey) {
    std::size_t linesBytes = 0;
    for (const auto& line : a.lines) linesBytes += line.size() + 1;
    std::string text = fmt::format(
        "{}\ncamera: {}\nkey-id: {}\nrequest-sha256: {}\nafter-seq: {}\nthrough-seq: {}\ncheckpoint: {}\n"
        "complete: {}\nhealth-bytes: {}\nlines-bytes: {}\n",
        kAnswerMagic, a.cameraId, cameraKey.keyId(), a.requestSha256, a.afterSeq, a.throughSeq,
        a.checkpoint.toString(), a.complete ? "yes" : "no", a.health.size(), linesBytes);
    text.reserve(text.size() + a.health.size() + linesBytes + 100);
    text += a.health;
    for (const auto& line : a.lines) {
        text += line;
        text += '\n';
    }
    text += fmt::format("{}{}\n", kSignatureName, policy::toBase64(policy::sign(cameraKey, text)));
    return text;
}

CityLogAnswer openCityLogAnswer(std::span<const std::uint8_t> sealed, const policy::SecretKey& cityKey,
                                const policy::PublicKey& camera, std::string_view requestBody) {
    // Bounded: the camera never sends more than these limits allow.
    constexpr std::size_t kMaxPlain = kMaxCityLogLinesBytes + kMaxCityLogHealthBytes + 4096;
    std::string plain;
    Unsealer unsealer(cityKey.boxPublic(), cityKey.boxSecret(), [&](std::span<const std::uint8_t> chunk) {
        if (plain.size() + chunk.size() > kMaxPlain)
            throw FetchError(fmt::format("city log answer: more than {} bytes", kMaxPlain));
        plain.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    });
    try {
        unsealer.write(sealed);
        unsealer.finish();
    } catch (const SealError& e) {
        throw FetchError(fmt::format("city log answer: {}", e.what()));
    }

    auto bad = [](std::string_view what) { return FetchError(fmt::format("city log answer: {}", what)); };
    std::size_t pos = 0;
    if (!std::string_view(plain).starts_with(std::string(kAnswerMagic) + "\n")) throw bad("not a city log answer");
    pos = kAnswerMagic.size() + 1;
    CityLogAnswer a;
    auto line = [&](std::string_view name) {
        const auto v = headerLine(plain, pos, name);
        if (!v) throw bad(fmt::format("no '{}' line where expected", name));
        return *v;
    };
    auto number = [&](std::string_view name, std::uint64_t max) {
        const auto v = parseDecimal(line(name), max);
        if (!v) throw bad(fmt::format("'{}' is not a decimal number up to {}", name, max));
        return *v;
    };
    a.cameraId = std::string(line("camera"));
    a.cameraKeyId = std::string(line("key-id"));
    a.requestSha256 = std::string(line("request-sha256"));
    a.afterSeq = number("after-seq", std::uint64_t{INT64_MAX});
    a.throughSeq = number("through-seq", std::uint64_t{INT64_MAX});
    const auto checkpoint = policy::AuditCheckpoint::parse(line("checkpoint"));
    if (!checkpoint) throw bad("'checkpoint' is not SEQ:HASH");
    a.checkpoint = *checkpoint;
    const std::string_view complete = line("complete");
    if (complete != "yes" && complete != "no") throw bad("'complete' is neither yes nor no");
    a.complete = complete == "yes";
    const std::size_t healthBytes = number("health-bytes", kMaxCityLogHealthBytes);
    const std::size_t linesBytes = number("lines-bytes", kMaxCityLogLinesBytes);
    if (plain.size() - pos < healthBytes + linesBytes) throw bad("shorter than its lengths say");
    a.health = plain.substr(pos, healthBytes);
    pos += healthBytes;
    const std::string_view lines = std::string_view(plain).substr(pos, linesBytes);
    pos += linesBytes;
    const std::string_view signedBytes = std::string_view(plain).substr(0, pos);
    policy::Signature signature{};
    const auto sigText = headerLine(plain, pos, "signature");
    if (!sigText || !decodeBase64(*sigText, signature)) throw bad("no signature line after the data");
    if (pos != plain.size()) throw bad("bytes after the signature line");
    if (!policy::verify(camera.signKey, signedBytes, signature))
        throw bad(fmt::format("the signature does not verify with camera key '{}'", camera.name));
    if (a.cameraKeyId != camera.keyId()) throw bad("key-id is not the camera key's");
    if (a.requestSha256 != common::sha256Hex(requestBody)) throw bad("it answers another request");
    std::string parseError;
    const auto request = parseCityLogRequest(requestBody, parseError);
    if (!request) throw bad(fmt::format("the request it answers: {}", parseError));
    if (a.cameraId != request->cameraId) throw bad("it is from another camera");
    if (a.afterSeq != request->afterSeq) throw bad("after-seq is not the request's");

    std::uint64_t expected = a.afterSeq + 1;
    for (std::size_t start = 0; start < lines.size(); ++expected) {
        const std::size_t nl = lines.find('\n', start);
        if (nl == std::string_view::npos) throw bad("the last audit line has no newline");
        const std::string_view l = lines.substr(start, nl - start);
        if (l.size() > policy::kMaxAuditLineBytes) throw bad("an audit line longer than 1 MiB");
        const std::string prefix = fmt::format(R"({{"seq":{},)", expected);
        if (!l.starts_with(prefix)) throw bad(fmt::format("audit line {} does not carry seq {}", expected - a.afterSeq, expected));
        a.lines.emplace_back(l);
        start = nl + 1;
    }
    const std::uint64_t last = a.lines.empty() ? a.afterSeq : expected - 1;
    if (last != a.throughSeq) throw bad("through-seq is not the last line's seq");
    const bool reaches = a.throughSeq >= a.checkpoint.seq;
    if (a.complete != reaches) throw bad("'complete' disagrees with the lines and the checkpoint");
    return a;
}

}  // namespace mimamori::retrieval

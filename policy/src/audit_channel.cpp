// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The audit log's one writer behind a socket: the owner's answers and the endpoint's client.
#include "mimamori/policy/audit_channel.hpp"

#include "mimamori/common/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace mimamori::policy {
namespace {

constexpr std::string_view kComponent = "audit";
constexpr std::size_t kMaxNameBytes = 64;  // an entry type or a field key
constexpr std::uint32_t kMaxFields = 64;
constexpr std::uint8_t kText = 0, kNumber = 1, kFlag = 2;

constexpr std::array<std::string_view, 14> kEndpointTypes = {
    audit::kRequestReceived, audit::kRequestGranted, audit::kRequestRefused, audit::kExtractDelivered,
    audit::kMaskReviewStill, audit::kLogsCollected,  audit::kCityLogRefused, "evidence_hold",
    "evidence_hold_released", "extract_failed", "extract_download_failed", "still_failed", "http_refused",
    "unauthenticated_suppressed"};

common::Frame refused(std::uint32_t id, const std::string& reason) {
    common::logWarning(kComponent, "refused a request from the endpoint: {}", reason);
    return {audit_frame::kRefused, id, common::WireWriter().bytes(reason).take()};
}

struct Append {
    std::string type;
    AuditFields fields;
};

std::optional<Append> decodeAppend(std::string_view payload) {
    common::WireReader in(payload);
    Append a;
    a.type = in.bytes(kMaxNameBytes);
    const std::uint32_t n = in.u32();
    if (!in.ok() || n > kMaxFields) return std::nullopt;
    for (std::uint32_t i = 0; i < n && in.ok(); ++i) {
        std::string key = in.bytes(kMaxNameBytes);
        const std::uint8_t tag = in.u8();
        if (tag == kText) a.fields.emplace_back(std::move(key), in.bytes(kMaxAuditLineBytes));
        else if (tag == kNumber) a.fields.emplace_back(std::move(key), static_cast<std::int64_t>(in.u64()));
        else if (tag == kFlag) {
            const std::uint8_t flag = in.u8();
            if (flag > 1) return std::nullopt;
            a.fields.emplace_back(std::move(key), flag == 1);
        } else return std::nullopt;
    }
    if (!in.atEnd()) return std::nullopt;
    return a;
}

}  // namespace

bool endpointMayAppend(std::string_view type) {
    return std::find(kEndpointTypes.begin(), kEndpointTypes.end(), type) != kEndpointTypes.end();
}

std::optional<common::Frame> answerAuditFrame(AuditLog& log, const common::Frame& request) {
    using namespace audit_frame;
    if (request.kind != kAppend && request.kind != kCheckpoint && request.kind != kLines) return std::nullopt;
    try {
        if (request.payload.size() > kMaxAuditRequestBytes) return refused(request.id, "request over the size limit");
        if (request.kind == kAppend) {
            std::optional<Append> a = decodeAppend(request.payload);
            if (!a) return refused(request.id, "malformed append");
            if (!endpointMayAppend(a->type))
                return refused(request.id, fmt::format("entry type \"{}\" is not the endpoint's to write", a->type));
            const std::uint64_t seq = log.append(a->type, a->fields);  // returns after the fsync
            return common::Frame{kAppended, request.id, common::WireWriter().u64(seq).take()};
        }
        if (request.kind == kCheckpoint) {
            if (!request.payload.empty()) return refused(request.id, "malformed checkpoint request");
            const AuditCheckpoint c = log.checkpoint();
            return common::Frame{kCheckpointed, request.id, common::WireWriter().u64(c.seq).bytes(c.lineHash).take()};
        }
        common::WireReader in(request.payload);
        const std::uint64_t after = in.u64(), through = in.u64(), maxBytes = in.u64();
        if (!in.atEnd()) return refused(request.id, "malformed lines request");
        if (through > log.lastSeq() || after > through)
            return refused(request.id, fmt::format("lines ({}, {}] are not in the log", after, through));
        const AuditLines lines =
            log.linesAfter(after, through, static_cast<std::size_t>(std::min<std::uint64_t>(maxBytes, kMaxAuditLinesAnswerBytes)));
        common::WireWriter out;
        out.u64(lines.through).u8(lines.complete ? 1 : 0).u32(static_cast<std::uint32_t>(lines.lines.size()));
        for (const auto& line : lines.lines) out.bytes(line);
        return common::Frame{kLinesAnswer, request.id, out.take()};
    } catch (const std::exception& e) {
        return refused(request.id, e.what());
    }
}

common::Frame AuditClient::call(std::uint8_t kind, std::string payload, std::uint8_t expected) const {
    common::Result<common::Frame> answer = link_.call(kind, std::move(payload), timeout_);
    if (!answer) throw AuditError("audit log's owner: " + answer.error());
    if (answer->kind == audit_frame::kRefused) {
        common::WireReader in(answer->payload);
        throw AuditError("audit log's owner refused: " + in.bytes(kMaxAuditLineBytes));
    }
    if (answer->kind != expected) throw AuditError(fmt::format("audit log's owner: unexpected answer kind {}", answer->kind));
    return std::move(*answer);
}

std::uint64_t AuditClient::append(std::string_view type, const AuditFields& fields) {
    common::WireWriter out;
    out.bytes(type).u32(static_cast<std::uint32_t>(fields.size()));
    for (const auto& [key, value] : fields) {
        out.bytes(key);
        if (const auto* text = std::get_if<std::string>(&value)) out.u8(kText).bytes(*text);
        else if (const auto* number = std::get_if<std::int64_t>(&value)) out.u8(kNumber).u64(static_cast<std::uint64_t>(*number));
        else out.u8(kFlag).u8(std::get<bool>(value) ? 1 : 0);
    }
    const common::Frame answer = call(audit_frame::kAppend, out.take(), audit_frame::kAppended);
    common::WireReader in(answer.payload);
    const std::uint64_t seq = in.u64();
    if (!in.atEnd()) throw AuditError("audit log's owner: malformed answer");
    return seq;
}

AuditCheckpoint AuditClient::checkpoint() {
    const common::Frame answer = call(audit_frame::kCheckpoint, {}, audit_frame::kCheckpointed);
    common::WireReader in(answer.payload);
    AuditCheckpoint c;
    c.seq = in.u64();
    c.lineHash = in.bytes(kMaxNameBytes * 2);
    if (!in.atEnd()) throw AuditError("audit log's owner: malformed answer");
    return c;
}

AuditLines AuditClient::linesAfter(std::uint64_t afterSeq, std::uint64_t throughSeq, std::size_t maxBytes) const {
    const common::Frame answer = call(audit_frame::kLines, common::WireWriter().u64(afterSeq).u64(throughSeq).u64(maxBytes).take(),
                                      audit_frame::kLinesAnswer);
    common::WireReader in(answer.payload);
    AuditLines lines;
    lines.through = in.u64();
    lines.complete = in.u8() == 1;
    const std::uint32_t n = in.u32();
    for (std::uint32_t i = 0; i < n && in.ok(); ++i) lines.lines.push_back(in.bytes(kMaxAuditLineBytes));
    if (!in.atEnd()) throw AuditError("audit log's owner: malformed answer");
    return lines;
}

}  // namespace mimamori::policy

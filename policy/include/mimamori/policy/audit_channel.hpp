// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The audit log's one writer behind a socket (docs/endpoint-process.md, "Audit frames"): the
// process that owns the log answers append, checkpoint and lines requests from the endpoint
// process, acknowledging an append only after its fsync; the endpoint writes through a client.
#pragma once

#include "mimamori/common/frame.hpp"
#include "mimamori/policy/audit_log.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mimamori::policy {

// Frame kinds. Requests come from the endpoint, answers from the log's owner with the same id.
namespace audit_frame {
constexpr std::uint8_t kAppend = 1;      // bytes type, u32 n, n x (bytes key, u8 tag, value)
constexpr std::uint8_t kCheckpoint = 2;  // empty
constexpr std::uint8_t kLines = 3;       // u64 afterSeq, u64 throughSeq, u64 maxBytes
constexpr std::uint8_t kRefused = 0x80;  // bytes reason (one line)
constexpr std::uint8_t kAppended = 0x81; // u64 seq
constexpr std::uint8_t kCheckpointed = 0x82;  // u64 seq, bytes line hash
constexpr std::uint8_t kLinesAnswer = 0x83;   // u64 through, u8 complete, u32 n, n x bytes line
}  // namespace audit_frame

// A request frame is refused beyond this: no entry's fields are longer than its line.
inline constexpr std::size_t kMaxAuditRequestBytes = kMaxAuditLineBytes;
// A lines answer carries at most this many bytes of lines (more are asked for again).
inline constexpr std::size_t kMaxAuditLinesAnswerBytes = std::size_t{8} << 20;
inline constexpr std::size_t kMaxAuditAnswerBytes = kMaxAuditLinesAnswerBytes + (std::size_t{1} << 20);

// The entry types the endpoint may have appended: what its services write. Everything else
// (daemon_start, checkpoint, recording_gap, ...) is the owner's own and refused from it.
[[nodiscard]] bool endpointMayAppend(std::string_view type);

// For the log's owner: the answer to one request frame from the endpoint, or nullopt when the
// frame's kind is not an audit request. The bytes are hostile: anything malformed, an entry
// type the endpoint may not write, or an append the log refuses is answered kRefused (and
// logged); the chain's seq, hashes and checkpoints are the log's own. Never throws.
[[nodiscard]] std::optional<common::Frame> answerAuditFrame(AuditLog& log, const common::Frame& request);

// The endpoint's side: each call is a request over `link` (borrowed, must outlive the client),
// waiting for the answer at most `timeout`. A refusal, a broken link or no answer in time
// throws AuditError, as a failed append of the log itself would. Thread-safe.
class AuditClient final : public AuditTrail {
public:
    AuditClient(common::FrameClient& link, std::chrono::milliseconds timeout) : link_(link), timeout_(timeout) {}
    std::uint64_t append(std::string_view type, const AuditFields& fields) override;
    [[nodiscard]] AuditCheckpoint checkpoint() override;
    [[nodiscard]] AuditLines linesAfter(std::uint64_t afterSeq, std::uint64_t throughSeq,
                                        std::size_t maxBytes) const override;

private:
    [[nodiscard]] common::Frame call(std::uint8_t kind, std::string payload, std::uint8_t expected) const;
    common::FrameClient& link_;
    std::chrono::milliseconds timeout_;
};

}  // namespace mimamori::policy

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// MPEG-TS demuxer for the recorder's own segments: PAT, PMT, the H.264 PID, whole PES packets.
#pragma once

#include "mimamori/retrieval/extract_error.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace mimamori::retrieval {

// One PES packet of the H.264 stream; the recorder writes one access unit per PES
// (h264parse alignment=au ! mpegtsmux).
struct TsAccessUnit {
    std::span<const std::uint8_t> data;  // Annex-B bytes, valid only during the callback
    std::int64_t pts = 0;                // 90 kHz, the 33 bits as carried
    std::int64_t dts = 0;                // = pts when the PES carries no DTS
    std::uint64_t offset = 0;            // byte offset of the PES's first TS packet, for messages
};

// Differences of 33-bit 90 kHz timestamps across a wrap: a - b, in (-2^32, 2^32].
std::int64_t tsTimeDiff(std::int64_t a, std::int64_t b);

// Feed the bytes of one transport stream in pieces of any size; access units come out through
// the callback, on the calling thread, in stream (decode) order. Anything it cannot account for
// (lost sync, a transport error flag, a continuity counter jump, a bad section CRC, a PES without
// PTS, a stream without PAT, PMT or H.264) is an ExtractError naming the byte offset. Packets
// that come before the PMT (up to 8192) are held and read once it names the video PID. Exceptions
// thrown by the callback pass through. One stream per object; not thread-safe.
class TsDemuxer {
public:
    using AccessUnitFn = std::function<void(const TsAccessUnit&)>;
    explicit TsDemuxer(AccessUnitFn onAccessUnit);

    void push(std::span<const std::uint8_t> bytes);
    // End of the stream: emits the last PES. With `truncatedTail` (a segment recovered after a
    // power cut, cut at an arbitrary byte) an incomplete last packet and the last PES, which may
    // be incomplete, are dropped; otherwise they are an error.
    void finish(bool truncatedTail = false);

    std::uint64_t accessUnits() const { return accessUnits_; }

private:
    struct Section {
        std::vector<std::uint8_t> bytes;
        bool active = false;
    };

    void packet(const std::uint8_t* p, std::uint64_t offset);
    void psiPayload(Section& section, std::span<const std::uint8_t> payload, bool unitStart, int pid);
    void drainSections(Section& section, int pid);
    void section(std::span<const std::uint8_t> bytes, int pid);
    void emitPes();
    [[noreturn]] void fail(const std::string& what) const;

    AccessUnitFn onAccessUnit_;
    std::array<std::uint8_t, 188> carry_{};
    std::size_t carryBytes_ = 0;
    std::uint64_t offset_ = 0;        // bytes pushed before the packet being parsed
    std::uint64_t packetOffset_ = 0;  // offset of the packet being parsed
    std::array<std::int8_t, 8192> lastCc_;
    int pmtPid_ = -1;
    int videoPid_ = -1;
    bool sawPat_ = false;
    Section pat_;
    Section pmt_;
    std::vector<std::uint8_t> pes_;
    bool pesActive_ = false;
    std::uint64_t pesOffset_ = 0;
    std::uint64_t accessUnits_ = 0;
    struct EarlyPacket {
        std::array<std::uint8_t, 188> bytes;
        std::uint64_t offset;
    };
    std::vector<EarlyPacket> early_;  // packets of other PIDs before the PMT was read
};

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// MPEG-TS demuxing (ISO/IEC 13818-1) of the recorder's segments down to H.264 access units.
#include "mimamori/retrieval/ts_demux.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace mimamori::retrieval {
namespace {

constexpr std::size_t kPacket = 188;
constexpr std::uint8_t kSync = 0x47;
constexpr int kPatPid = 0;
constexpr int kNullPid = 0x1FFF;
constexpr std::uint8_t kStreamTypeH264 = 0x1B;
constexpr std::size_t kMaxSectionLength = 1021;  // 13818-1: section_length of PAT and PMT
constexpr std::size_t kMaxEarlyPackets = 8192;   // 1.5 MB of TS held until the PMT comes

// CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected, no final XOR): over a whole section
// including its CRC_32 field it yields 0.
constexpr std::array<std::uint32_t, 256> makeCrcTable() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i << 24;
        for (int b = 0; b < 8; ++b) c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
        table[i] = c;
    }
    return table;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = makeCrcTable();

std::uint32_t crc32Mpeg(std::span<const std::uint8_t> bytes) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (const std::uint8_t b : bytes) crc = (crc << 8) ^ kCrcTable[((crc >> 24) ^ b) & 0xFF];
    return crc;
}

std::int64_t readTimestamp(const std::uint8_t* p) {
    return (static_cast<std::int64_t>((p[0] >> 1) & 0x07) << 30) | (static_cast<std::int64_t>(p[1]) << 22) |
           (static_cast<std::int64_t>(p[2] >> 1) << 15) | (static_cast<std::int64_t>(p[3]) << 7) |
           static_cast<std::int64_t>(p[4] >> 1);
}

int pidAt(const std::uint8_t* p) { return ((p[0] & 0x1F) << 8) | p[1]; }
bool ordinaryPid(int pid) { return pid >= 0x10 && pid < kNullPid; }

}  // namespace

std::int64_t tsTimeDiff(std::int64_t a, std::int64_t b) {
    constexpr std::int64_t kWrap = std::int64_t{1} << 33;
    std::int64_t d = (a - b) & (kWrap - 1);
    if (d > kWrap / 2) d -= kWrap;
    return d;
}

TsDemuxer::TsDemuxer(AccessUnitFn onAccessUnit) : onAccessUnit_(std::move(onAccessUnit)) {
    lastCc_.fill(-1);
}

void TsDemuxer::fail(const std::string& what) const {
    throw ExtractError(fmt::format("{} (TS byte {})", what, packetOffset_));
}

void TsDemuxer::push(std::span<const std::uint8_t> bytes) {
    if (carryBytes_ > 0) {
        const std::size_t take = std::min(kPacket - carryBytes_, bytes.size());
        std::memcpy(carry_.data() + carryBytes_, bytes.data(), take);
        carryBytes_ += take;
        bytes = bytes.subspan(take);
        if (carryBytes_ < kPacket) return;
        carryBytes_ = 0;
        packet(carry_.data(), offset_);
        offset_ += kPacket;
    }
    while (bytes.size() >= kPacket) {
        packet(bytes.data(), offset_);
        offset_ += kPacket;
        bytes = bytes.subspan(kPacket);
    }
    std::memcpy(carry_.data(), bytes.data(), bytes.size());
    carryBytes_ = bytes.size();
}

void TsDemuxer::finish(bool truncatedTail) {
    packetOffset_ = offset_;
    if (carryBytes_ > 0 && !truncatedTail)
        fail(fmt::format("the stream ends inside a TS packet ({} of {} bytes)", carryBytes_, kPacket));
    carryBytes_ = 0;
    if (pesActive_) {
        if (truncatedTail) {
            pesActive_ = false;  // it may have lost its end with the power
        } else {
            emitPes();
        }
    }
    if (!sawPat_) fail("no PAT (program association table) in the stream");
    if (pmtPid_ < 0) fail("the PAT lists no program");
    if (videoPid_ < 0) fail(fmt::format("no PMT on PID {} in the stream", pmtPid_));
}

void TsDemuxer::packet(const std::uint8_t* p, std::uint64_t offset) {
    packetOffset_ = offset;
    if (p[0] != kSync) fail("lost sync: no 0x47 at the start of a packet");
    if (p[1] & 0x80) fail("transport_error_indicator is set");
    const bool unitStart = (p[1] & 0x40) != 0;
    const int pid = pidAt(p + 1);
    if (pid == kNullPid) return;
    if (videoPid_ < 0 && pid != kPatPid && pid != pmtPid_ && ordinaryPid(pid)) {
        // Before the PMT names the video PID: a segment may begin with a keyframe whose group
        // carries no PAT/PMT (an encoder's recovery point, which mpegtsmux does not announce);
        // kept to be read once the PMT is known.
        if (early_.size() >= kMaxEarlyPackets)
            fail(fmt::format("no PAT and PMT in the first {} packets", kMaxEarlyPackets));
        early_.push_back({{}, offset});
        std::memcpy(early_.back().bytes.data(), p, kPacket);
        return;
    }
    if (pid != kPatPid && pid != pmtPid_ && pid != videoPid_) return;  // not ours to read
    if (p[3] & 0xC0) fail(fmt::format("scrambled packet on PID {}", pid));
    const int control = (p[3] >> 4) & 0x03;
    const int cc = p[3] & 0x0F;
    if (control == 0) fail(fmt::format("reserved adaptation_field_control on PID {}", pid));

    std::size_t start = 4;
    bool discontinuity = false;
    if (control & 0x02) {
        const std::size_t length = p[4];
        if (control == 0x02 ? length != 183 : length > 182)
            fail(fmt::format("adaptation field of {} bytes on PID {}", length, pid));
        if (length > 0) discontinuity = (p[5] & 0x80) != 0;
        start = 5 + length;
    }
    if (!(control & 0x01)) return;  // no payload; the counter does not advance

    const int last = lastCc_[static_cast<std::size_t>(pid)];
    if (last >= 0 && !discontinuity) {
        if (cc == last) return;  // a duplicate packet (13818-1 allows one): already have it
        if (cc != ((last + 1) & 0x0F))
            fail(fmt::format("continuity counter jumps from {} to {} on PID {} (packets lost)", last, cc, pid));
    }
    lastCc_[static_cast<std::size_t>(pid)] = static_cast<std::int8_t>(cc);

    const std::span<const std::uint8_t> payload(p + start, kPacket - start);
    if (pid == kPatPid) {
        psiPayload(pat_, payload, unitStart, pid);
    } else if (pid == pmtPid_) {
        psiPayload(pmt_, payload, unitStart, pid);
        if (videoPid_ >= 0 && !early_.empty()) {
            std::vector<EarlyPacket> early = std::move(early_);
            early_.clear();
            for (const EarlyPacket& e : early)
                if (pidAt(e.bytes.data() + 1) == videoPid_) packet(e.bytes.data(), e.offset);
            packetOffset_ = offset;
        }
    } else {
        if (unitStart) {
            if (pesActive_) emitPes();
            pes_.assign(payload.begin(), payload.end());
            pesActive_ = true;
            pesOffset_ = packetOffset_;
        } else if (pesActive_) {
            pes_.insert(pes_.end(), payload.begin(), payload.end());
        } else {
            return;  // the rest of a PES that began before this stream: unusable
        }
        if (pes_.size() >= 6) {
            const std::size_t length = (std::size_t{pes_[4]} << 8) | pes_[5];
            if (length != 0) {
                if (pes_.size() > 6 + length) fail("PES packet longer than its PES_packet_length");
                if (pes_.size() == 6 + length) emitPes();
            }
        }
    }
}

void TsDemuxer::psiPayload(Section& s, std::span<const std::uint8_t> payload, bool unitStart, int pid) {
    if (unitStart) {
        const std::size_t pointer = payload[0];
        if (1 + pointer > payload.size()) fail(fmt::format("pointer_field past the packet on PID {}", pid));
        const auto sectionStart = payload.begin() + 1 + static_cast<std::ptrdiff_t>(pointer);
        if (s.active) {  // the bytes before the pointer end the previous section
            s.bytes.insert(s.bytes.end(), payload.begin() + 1, sectionStart);
            drainSections(s, pid);
        }
        s.bytes.assign(sectionStart, payload.end());
        s.active = true;
    } else {
        if (!s.active) return;  // the rest of a section that began before this stream
        s.bytes.insert(s.bytes.end(), payload.begin(), payload.end());
    }
    drainSections(s, pid);
}

void TsDemuxer::drainSections(Section& s, int pid) {
    while (s.active && s.bytes.size() >= 3) {
        if (s.bytes[0] == 0xFF) {  // stuffing: no more sections in this unit
            s.active = false;
            s.bytes.clear();
            return;
        }
        const std::size_t total = 3 + (((std::size_t{s.bytes[1]} & 0x0F) << 8) | s.bytes[2]);
        if (total - 3 > kMaxSectionLength) fail(fmt::format("section_length {} on PID {} is too long", total - 3, pid));
        if (s.bytes.size() < total) return;
        const std::vector<std::uint8_t> whole(s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(total));
        s.bytes.erase(s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(total));
        section(whole, pid);
    }
}

void TsDemuxer::section(std::span<const std::uint8_t> b, int pid) {
    if (b.size() < 12) fail(fmt::format("section of {} bytes on PID {} is too short", b.size(), pid));
    if (!(b[1] & 0x80)) fail(fmt::format("section on PID {} lacks section_syntax_indicator", pid));
    if (crc32Mpeg(b) != 0) fail(fmt::format("section CRC mismatch on PID {}", pid));
    const std::size_t end = b.size() - 4;  // before CRC_32
    if (pid == kPatPid) {
        if (b[0] != 0x00) return;  // not a PAT
        int pmtPid = -1;
        for (std::size_t i = 8; i + 4 <= end; i += 4) {
            const int program = (b[i] << 8) | b[i + 1];
            if (program == 0) continue;  // the network PID
            pmtPid = pidAt(&b[i + 2]);
            break;
        }
        if (pmtPid >= 0 && !ordinaryPid(pmtPid)) fail(fmt::format("the PAT puts the PMT on reserved PID {}", pmtPid));
        if (pmtPid != pmtPid_) {
            pmt_ = Section{};
            videoPid_ = -1;
            pesActive_ = false;
        }
        sawPat_ = true;
        pmtPid_ = pmtPid;
        return;
    }
    if (b[0] != 0x02) return;  // another table on the PMT's PID
    const std::size_t programInfo = ((std::size_t{b[10]} & 0x0F) << 8) | b[11];
    std::size_t i = 12 + programInfo;
    if (i > end) fail("PMT program_info_length past the section");
    int videoPid = -1;
    while (i < end) {
        if (i + 5 > end) fail("PMT stream entry past the section");
        const int type = b[i];
        const int esPid = pidAt(&b[i + 1]);
        const std::size_t infoLength = ((std::size_t{b[i + 3]} & 0x0F) << 8) | b[i + 4];
        if (type == kStreamTypeH264 && videoPid < 0) videoPid = esPid;
        i += 5 + infoLength;
        if (i > end) fail("PMT ES_info_length past the section");
    }
    if (videoPid < 0) fail("the PMT lists no H.264 stream (stream_type 0x1B)");
    if (!ordinaryPid(videoPid) || videoPid == pmtPid_)
        fail(fmt::format("the PMT puts H.264 on reserved PID {}", videoPid));
    if (videoPid != videoPid_) pesActive_ = false;
    videoPid_ = videoPid;
}

void TsDemuxer::emitPes() {
    pesActive_ = false;
    const std::vector<std::uint8_t>& b = pes_;
    if (b.size() < 9) fail("PES header cut short");
    if (b[0] != 0 || b[1] != 0 || b[2] != 1) fail("PES packet without its start code");
    if ((b[3] & 0xF0) != 0xE0) fail(fmt::format("stream_id 0x{:02x} on the H.264 PID", b[3]));
    if ((b[6] & 0xC0) != 0x80) fail("PES header is not an MPEG-2 PES header");
    const std::size_t length = (std::size_t{b[4]} << 8) | b[5];
    if (length != 0 && b.size() != 6 + length) fail("PES packet shorter than its PES_packet_length");
    const int timeFlags = b[7] >> 6;
    const std::size_t headerLength = b[8];
    if (timeFlags == 0) fail("access unit without PTS");
    if (timeFlags == 1) fail("PES with DTS but no PTS");
    if (headerLength < (timeFlags == 3 ? 10u : 5u) || 9 + headerLength > b.size())
        fail("PES header length does not fit");
    TsAccessUnit au;
    au.pts = readTimestamp(&b[9]);
    au.dts = timeFlags == 3 ? readTimestamp(&b[14]) : au.pts;
    au.data = std::span(b).subspan(9 + headerLength);
    au.offset = pesOffset_;
    ++accessUnits_;
    onAccessUnit_(au);
}

}  // namespace mimamori::retrieval

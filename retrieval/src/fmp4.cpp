// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fragmented MP4 boxes for one H.264 track: ftyp, moov (empty sample tables, avcC, mvex),
// moof + mdat per fragment, mfra. Box layouts: ISO/IEC 14496-12 and 14496-15 (avcC).
#include "mimamori/retrieval/fmp4.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>
#include <utility>

namespace mimamori::retrieval {
namespace {

// Big-endian box builder over a byte vector; begin()/end() patch each box's size.
class Boxes {
public:
    explicit Boxes(std::vector<std::uint8_t>& b) : b_(b) {}
    void u8(std::uint32_t v) { b_.push_back(static_cast<std::uint8_t>(v)); }
    void u16(std::uint32_t v) { u8(v >> 8); u8(v); }
    void u24(std::uint32_t v) { u8(v >> 16); u16(v & 0xFFFF); }
    void u32(std::uint32_t v) { u16(v >> 16); u16(v & 0xFFFF); }
    void u64(std::uint64_t v) { u32(static_cast<std::uint32_t>(v >> 32)); u32(static_cast<std::uint32_t>(v)); }
    void zeros(std::size_t n) { b_.insert(b_.end(), n, 0); }
    void bytes(std::span<const std::uint8_t> v) { b_.insert(b_.end(), v.begin(), v.end()); }
    void fourcc(std::string_view t) { b_.insert(b_.end(), t.begin(), t.begin() + 4); }
    void begin(std::string_view type) {
        open_.push_back(b_.size());
        u32(0);
        fourcc(type);
    }
    void beginFull(std::string_view type, std::uint32_t version, std::uint32_t flags) {
        begin(type);
        u8(version);
        u24(flags);
    }
    void end() {
        const std::size_t start = open_.back();
        open_.pop_back();
        const auto size = static_cast<std::uint32_t>(b_.size() - start);
        const std::uint8_t be[4] = {static_cast<std::uint8_t>(size >> 24), static_cast<std::uint8_t>(size >> 16),
                                    static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size)};
        std::memcpy(&b_[start], be, 4);
    }
    std::size_t size() const { return b_.size(); }

private:
    std::vector<std::uint8_t>& b_;
    std::vector<std::size_t> open_;
};

constexpr std::uint32_t kTrackId = 1;
// Sample flags (14496-12 8.8.3.1): sample_depends_on 2 = an I picture; 1 + non-sync otherwise.
constexpr std::uint32_t kSyncSampleFlags = 0x02000000;
constexpr std::uint32_t kNonSyncSampleFlags = 0x01010000;
// trun: data-offset, sample-duration, sample-size, sample-flags, sample-composition-time-offset.
constexpr std::uint32_t kTrunFlags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800;
constexpr std::uint32_t kTfhdDefaultBaseIsMoof = 0x020000;

void matrix(Boxes& b) {
    for (const std::uint32_t v : {0x00010000u, 0u, 0u, 0u, 0x00010000u, 0u, 0u, 0u, 0x40000000u}) b.u32(v);
}

void avcC(Boxes& b, const ParameterSets& ps, const SpsInfo& sps) {
    b.begin("avcC");
    b.u8(1);  // configurationVersion
    b.u8(static_cast<std::uint32_t>(sps.profileIdc));
    b.u8(static_cast<std::uint32_t>(sps.constraintFlags));
    b.u8(static_cast<std::uint32_t>(sps.levelIdc));
    b.u8(0xFC | 3);  // lengthSizeMinusOne: 4-byte NAL lengths
    b.u8(0xE0 | static_cast<std::uint32_t>(ps.sps.size()));
    for (const auto& s : ps.sps) {
        b.u16(static_cast<std::uint32_t>(s.size()));
        b.bytes(s);
    }
    b.u8(static_cast<std::uint32_t>(ps.pps.size()));
    for (const auto& p : ps.pps) {
        b.u16(static_cast<std::uint32_t>(p.size()));
        b.bytes(p);
    }
    switch (sps.profileIdc) {
    case 100: case 110: case 122: case 144:  // 14496-15 5.3.3.1.2: the high profiles' extension
        b.u8(0xFC | static_cast<std::uint32_t>(sps.chromaFormatIdc));
        b.u8(0xF8 | static_cast<std::uint32_t>(sps.bitDepthLuma - 8));
        b.u8(0xF8 | static_cast<std::uint32_t>(sps.bitDepthChroma - 8));
        b.u8(0);  // numOfSequenceParameterSetExt
        break;
    default:
        break;
    }
    b.end();
}

}  // namespace

void FragmentedMp4Writer::checkFormat(const ParameterSets& parameterSets) {
    if (parameterSets.sps.empty() || parameterSets.pps.empty())
        throw ExtractError("no SPS and PPS before the first keyframe");
    if (parameterSets.sps.size() > 31 || parameterSets.pps.size() > 255)
        throw ExtractError("too many parameter sets for avcC");
    for (const auto& s : parameterSets.sps)
        if (s.size() > 0xFFFF) throw ExtractError("SPS too large for avcC");
    for (const auto& p : parameterSets.pps)
        if (p.size() > 0xFFFF) throw ExtractError("PPS too large for avcC");
    const SpsInfo sps = parseSps(parameterSets.sps.front());
    if (sps.width > 0xFFFF || sps.height > 0xFFFF) throw ExtractError("SPS: picture too large");
}

FragmentedMp4Writer::FragmentedMp4Writer(Sink out, const std::vector<ParameterSets>& formats,
                                         std::uint32_t startOffset, std::uint32_t fragmentTicks,
                                         std::size_t maxFragmentBytes)
    : out_(std::move(out)), fragmentTicks_(fragmentTicks), maxFragmentBytes_(maxFragmentBytes) {
    if (formats.empty()) throw ExtractError("no SPS and PPS before the first keyframe");
    if (formats.size() > kMaxFormats) throw ExtractError(fmt::format("more than {} stream formats", kMaxFormats));
    for (const ParameterSets& f : formats) {
        checkFormat(f);
        formats_.push_back(parseSps(f.sps.front()));
    }
    sps_ = formats_.front();
    writeHeader(formats, startOffset);
}

void FragmentedMp4Writer::emit(std::span<const std::uint8_t> bytes) {
    out_(bytes);
    bytes_ += bytes.size();
}

void FragmentedMp4Writer::writeHeader(const std::vector<ParameterSets>& formats, std::uint32_t startOffset) {
    scratch_.clear();
    Boxes b(scratch_);
    b.begin("ftyp");
    b.fourcc("isom");
    b.u32(0x200);
    for (const char* brand : {"isom", "iso6", "avc1", "mp41"}) b.fourcc(brand);
    b.end();

    b.begin("moov");
    b.beginFull("mvhd", 0, 0);
    b.u32(0);  // creation_time
    b.u32(0);  // modification_time
    b.u32(kTimescale);
    b.u32(0);  // duration: unknown up front, the fragments carry it
    b.u32(0x00010000);  // rate 1.0
    b.u16(0x0100);      // volume 1.0
    b.zeros(2 + 8);
    matrix(b);
    b.zeros(24);  // pre_defined
    b.u32(kTrackId + 1);  // next_track_ID
    b.end();

    b.begin("trak");
    b.beginFull("tkhd", 0, 0x000003);  // enabled, in movie
    b.u32(0);
    b.u32(0);
    b.u32(kTrackId);
    b.u32(0);  // reserved
    b.u32(0);  // duration
    b.zeros(8);
    b.u16(0);  // layer
    b.u16(0);  // alternate_group
    b.u16(0);  // volume: video
    b.u16(0);
    matrix(b);
    b.u32(static_cast<std::uint32_t>(sps_.width) << 16);
    b.u32(static_cast<std::uint32_t>(sps_.height) << 16);
    b.end();

    if (startOffset != 0) {
        // B-frames: the first sample decoded is presented `startOffset` later; the edit list
        // starts presentation there, so that time 0 is the first frame shown.
        b.begin("edts");
        b.beginFull("elst", 0, 0);
        b.u32(1);
        b.u32(0);  // segment_duration: 0 = all of the (fragmented) media
        b.u32(startOffset);  // media_time
        b.u16(1);  // media_rate_integer
        b.u16(0);
        b.end();
        b.end();
    }

    b.begin("mdia");
    b.beginFull("mdhd", 0, 0);
    b.u32(0);
    b.u32(0);
    b.u32(kTimescale);
    b.u32(0);
    b.u16(0x55C4);  // language "und"
    b.u16(0);
    b.end();
    b.beginFull("hdlr", 0, 0);
    b.u32(0);
    b.fourcc("vide");
    b.zeros(12);
    for (const char c : std::string_view("VideoHandler")) b.u8(static_cast<std::uint8_t>(c));
    b.u8(0);
    b.end();

    b.begin("minf");
    b.beginFull("vmhd", 0, 1);
    b.zeros(8);  // graphicsmode, opcolor
    b.end();
    b.begin("dinf");
    b.beginFull("dref", 0, 0);
    b.u32(1);
    b.beginFull("url ", 0, 1);  // the media is in this file
    b.end();
    b.end();
    b.end();

    b.begin("stbl");
    // One sample entry. With one stream format it is avc1 (parameter sets only in avcC); when
    // the format changes inside the extract it is avc3: the first format in avcC, and every
    // keyframe sample carries its own SPS and PPS in-band (the caller puts them there), so a
    // decoder follows each change at the keyframe where it happens.
    b.beginFull("stsd", 0, 0);
    b.u32(1);
    b.begin(formats.size() > 1 ? "avc3" : "avc1");
    b.zeros(6);
    b.u16(1);  // data_reference_index
    b.zeros(16);  // pre_defined, reserved, pre_defined[3]
    b.u16(static_cast<std::uint32_t>(sps_.width));
    b.u16(static_cast<std::uint32_t>(sps_.height));
    b.u32(0x00480000);  // 72 dpi
    b.u32(0x00480000);
    b.u32(0);
    b.u16(1);  // frame_count
    b.zeros(32);  // compressorname
    b.u16(0x0018);  // depth
    b.u16(0xFFFF);  // pre_defined = -1
    avcC(b, formats.front(), sps_);
    b.end();  // avc1 / avc3
    b.end();  // stsd
    for (const char* table : {"stts", "stsc", "stco"}) {
        b.beginFull(table, 0, 0);
        b.u32(0);  // entry_count: the samples are in the fragments
        b.end();
    }
    b.beginFull("stsz", 0, 0);
    b.u32(0);
    b.u32(0);
    b.end();
    b.end();  // stbl
    b.end();  // minf
    b.end();  // mdia
    b.end();  // trak

    b.begin("mvex");
    b.beginFull("trex", 0, 0);
    b.u32(kTrackId);
    b.u32(1);  // default_sample_description_index
    b.u32(0);
    b.u32(0);
    b.u32(0);
    b.end();
    b.end();  // mvex
    b.end();  // moov
    emit(scratch_);
}

void FragmentedMp4Writer::add(Mp4Sample sample) {
    if (finished_) throw ExtractError("MP4: sample after the end");
    if (sample.duration == 0) throw ExtractError("MP4: a sample without duration");
    if (sample.description == 0 || sample.description > formats_.size())
        throw ExtractError("MP4: a sample of no known stream format");
    if (samples_ + pending_.size() > 0 && sample.decodeTime < nextDecodeTime_)
        throw ExtractError("MP4: decode times go back");
    if (!pending_.empty()) {
        const Mp4Sample& first = pending_.front();
        const bool gap = sample.decodeTime != nextDecodeTime_;
        const bool full = sample.keyframe && nextDecodeTime_ - first.decodeTime >= fragmentTicks_;
        const bool large = pendingBytes_ + sample.data.size() > maxFragmentBytes_;
        const bool format = sample.description != first.description;
        if (gap || full || large || format) flush();
    }
    nextDecodeTime_ = sample.decodeTime + sample.duration;
    pendingBytes_ += sample.data.size();
    pending_.push_back(std::move(sample));
}

void FragmentedMp4Writer::flush() {
    if (pending_.empty()) return;
    const Mp4Sample& first = pending_.front();
    if (first.keyframe) {
        const std::int64_t time = static_cast<std::int64_t>(first.decodeTime) + first.compositionOffset;
        index_.push_back({static_cast<std::uint64_t>(std::max<std::int64_t>(time, 0)), bytes_});
    }
    scratch_.clear();
    Boxes b(scratch_);
    b.begin("moof");
    b.beginFull("mfhd", 0, 0);
    b.u32(++sequence_);
    b.end();
    b.begin("traf");
    b.beginFull("tfhd", 0, kTfhdDefaultBaseIsMoof);
    b.u32(kTrackId);
    b.end();
    b.beginFull("tfdt", 1, 0);
    b.u64(first.decodeTime);
    b.end();
    b.beginFull("trun", 1, kTrunFlags);  // version 1: signed composition offsets
    b.u32(static_cast<std::uint32_t>(pending_.size()));
    const std::size_t dataOffsetAt = b.size();
    b.u32(0);  // data_offset, patched below
    for (const Mp4Sample& s : pending_) {
        b.u32(s.duration);
        b.u32(static_cast<std::uint32_t>(s.data.size()));
        b.u32(s.keyframe ? kSyncSampleFlags : kNonSyncSampleFlags);
        b.u32(static_cast<std::uint32_t>(s.compositionOffset));
    }
    b.end();  // trun
    b.end();  // traf
    b.end();  // moof
    // data_offset: from the moof's first byte to the first sample, past the mdat header.
    const auto dataOffset = static_cast<std::uint32_t>(scratch_.size() + 8);
    for (int i = 0; i < 4; ++i) scratch_[dataOffsetAt + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(dataOffset >> (24 - 8 * i));
    const auto mdatSize = static_cast<std::uint32_t>(8 + pendingBytes_);
    b.u32(mdatSize);
    b.fourcc("mdat");
    emit(scratch_);
    for (const Mp4Sample& s : pending_) emit(s.data);
    samples_ += pending_.size();
    pending_.clear();
    pendingBytes_ = 0;
}

void FragmentedMp4Writer::finish() {
    if (finished_) return;
    flush();
    finished_ = true;
    scratch_.clear();
    Boxes b(scratch_);
    b.begin("mfra");
    b.beginFull("tfra", 1, 0);
    b.u32(kTrackId);
    b.u32(0);  // 1-byte traf, trun and sample numbers
    b.u32(static_cast<std::uint32_t>(index_.size()));
    for (const FragmentIndex& e : index_) {
        b.u64(e.time);
        b.u64(e.moofOffset);
        b.u8(1);
        b.u8(1);
        b.u8(1);
    }
    b.end();
    b.beginFull("mfro", 0, 0);
    b.u32(static_cast<std::uint32_t>(scratch_.size() + 4));  // the whole mfra, up to this field's end
    b.end();
    b.end();  // mfra
    emit(scratch_);
}

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Annex-B scanning, SPS parsing (7.3.2.1.1) and conversion to length-prefixed NAL units.
#include "mimamori/retrieval/h264.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace mimamori::retrieval {
namespace {

enum NalType : int { kSlice = 1, kIdr = 5, kSps = 7, kPps = 8, kAud = 9, kFiller = 12 };

// The first byte of the next 00 00 01 at or after `p`, or `end`. memchr finds the rare 0x01
// bytes of compressed slice data several times faster than looking at every byte.
const std::uint8_t* findStartCode(const std::uint8_t* p, const std::uint8_t* end) {
    if (end - p < 3) return end;
    const std::uint8_t* q = p + 2;
    while (q < end) {
        q = static_cast<const std::uint8_t*>(std::memchr(q, 1, static_cast<std::size_t>(end - q)));
        if (!q) return end;
        if (q[-1] == 0 && q[-2] == 0) return q - 2;
        ++q;
    }
    return end;
}

// Reads bits of an RBSP (emulation prevention bytes already removed), bounds-checked.
class BitReader {
public:
    explicit BitReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
    unsigned bit() {
        if (pos_ >= bytes_.size() * 8) throw ExtractError("SPS cut short");
        const unsigned b = (bytes_[pos_ / 8] >> (7 - pos_ % 8)) & 1u;
        ++pos_;
        return b;
    }
    unsigned bits(int n) {
        unsigned v = 0;
        for (int i = 0; i < n; ++i) v = (v << 1) | bit();
        return v;
    }
    std::uint32_t ue() {
        int zeros = 0;
        while (bit() == 0)
            if (++zeros > 31) throw ExtractError("SPS: Exp-Golomb code too long");
        return static_cast<std::uint32_t>((std::uint64_t{1} << zeros) - 1 + bits(zeros));
    }
    std::int32_t se() {
        const std::uint32_t k = ue();
        return (k & 1) ? static_cast<std::int32_t>((k + 1) / 2) : -static_cast<std::int32_t>(k / 2);
    }

private:
    std::span<const std::uint8_t> bytes_;
    std::size_t pos_ = 0;
};

std::uint32_t ueAtMost(BitReader& r, std::uint32_t max, const char* what) {
    const std::uint32_t v = r.ue();
    if (v > max) throw ExtractError(fmt::format("SPS: {} {} out of range", what, v));
    return v;
}

void skipScalingList(BitReader& r, int size) {
    std::int64_t last = 8, next = 8;
    for (int j = 0; j < size && next != 0; ++j) {
        next = ((last + r.se()) % 256 + 256) % 256;  // delta_scale is -128..127 in valid streams
        if (next != 0) last = next;
    }
}

}  // namespace

SpsInfo parseSps(std::span<const std::uint8_t> nal) {
    if (nal.size() < 4 || (nal[0] & 0x1F) != kSps) throw ExtractError("not an SPS NAL unit");
    std::vector<std::uint8_t> rbsp;
    rbsp.reserve(nal.size());
    for (std::size_t i = 1; i < nal.size(); ++i) {
        if (i >= 3 && nal[i] == 3 && nal[i - 1] == 0 && nal[i - 2] == 0 && rbsp.size() >= 2 &&
            rbsp[rbsp.size() - 1] == 0 && rbsp[rbsp.size() - 2] == 0)
            continue;  // emulation_prevention_three_byte
        rbsp.push_back(nal[i]);
    }
    BitReader r(rbsp);
    SpsInfo s;
    s.profileIdc = static_cast<int>(r.bits(8));
    s.constraintFlags = static_cast<int>(r.bits(8));
    s.levelIdc = static_cast<int>(r.bits(8));
    ueAtMost(r, 31, "seq_parameter_set_id");
    bool separateColourPlanes = false;
    switch (s.profileIdc) {
    case 100: case 110: case 122: case 244: case 44: case 83: case 86: case 118: case 128: case 138:
    case 139: case 134: case 135: {
        s.chromaFormatIdc = static_cast<int>(ueAtMost(r, 3, "chroma_format_idc"));
        if (s.chromaFormatIdc == 3) separateColourPlanes = r.bit();
        s.bitDepthLuma = 8 + static_cast<int>(ueAtMost(r, 6, "bit_depth_luma_minus8"));
        s.bitDepthChroma = 8 + static_cast<int>(ueAtMost(r, 6, "bit_depth_chroma_minus8"));
        r.bit();  // qpprime_y_zero_transform_bypass_flag
        if (r.bit()) {  // seq_scaling_matrix_present_flag
            for (int i = 0; i < (s.chromaFormatIdc != 3 ? 8 : 12); ++i)
                if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
        }
        break;
    }
    default:
        break;
    }
    ueAtMost(r, 12, "log2_max_frame_num_minus4");
    const std::uint32_t pocType = ueAtMost(r, 2, "pic_order_cnt_type");
    if (pocType == 0) {
        ueAtMost(r, 12, "log2_max_pic_order_cnt_lsb_minus4");
    } else if (pocType == 1) {
        r.bit();  // delta_pic_order_always_zero_flag
        r.se();   // offset_for_non_ref_pic
        r.se();   // offset_for_top_to_bottom_field
        const std::uint32_t cycle = ueAtMost(r, 255, "num_ref_frames_in_pic_order_cnt_cycle");
        for (std::uint32_t i = 0; i < cycle; ++i) r.se();
    }
    ueAtMost(r, 16, "max_num_ref_frames");
    r.bit();  // gaps_in_frame_num_value_allowed_flag
    const std::uint32_t widthMbs = ueAtMost(r, 1023, "pic_width_in_mbs_minus1") + 1;
    const std::uint32_t heightMapUnits = ueAtMost(r, 1023, "pic_height_in_map_units_minus1") + 1;
    const bool frameMbsOnly = r.bit();
    if (!frameMbsOnly) r.bit();  // mb_adaptive_frame_field_flag
    r.bit();                     // direct_8x8_inference_flag
    std::uint32_t cropLeft = 0, cropRight = 0, cropTop = 0, cropBottom = 0;
    if (r.bit()) {  // frame_cropping_flag
        cropLeft = ueAtMost(r, 8192, "frame_crop_left_offset");
        cropRight = ueAtMost(r, 8192, "frame_crop_right_offset");
        cropTop = ueAtMost(r, 8192, "frame_crop_top_offset");
        cropBottom = ueAtMost(r, 8192, "frame_crop_bottom_offset");
    }
    // 7.4.2.1.1: crop units follow the chroma subsampling (ChromaArrayType 0: luma samples).
    const int chromaArrayType = separateColourPlanes ? 0 : s.chromaFormatIdc;
    const int subWidth = chromaArrayType == 1 || chromaArrayType == 2 ? 2 : 1;
    const int subHeight = chromaArrayType == 1 ? 2 : 1;
    const int cropUnitX = chromaArrayType == 0 ? 1 : subWidth;
    const int cropUnitY = (chromaArrayType == 0 ? 1 : subHeight) * (frameMbsOnly ? 1 : 2);
    const long width = static_cast<long>(widthMbs) * 16 - static_cast<long>(cropUnitX) * (cropLeft + cropRight);
    const long height = static_cast<long>(heightMapUnits) * 16 * (frameMbsOnly ? 1 : 2) -
                        static_cast<long>(cropUnitY) * (cropTop + cropBottom);
    if (width <= 0 || height <= 0) throw ExtractError("SPS: the cropping leaves no picture");
    s.width = static_cast<int>(width);
    s.height = static_cast<int>(height);
    return s;
}

AvccAccessUnit annexBToAvcc(std::span<const std::uint8_t> annexB, std::vector<std::uint8_t>& out) {
    AvccAccessUnit au;
    const std::uint8_t* p = annexB.data();
    const std::uint8_t* const end = p + annexB.size();
    const std::uint8_t* sc = findStartCode(p, end);
    if (annexB.empty() || sc == end || std::any_of(p, sc, [](std::uint8_t b) { return b != 0; }))
        throw ExtractError("access unit does not start with a start code");
    bool picture = false;
    out.reserve(out.size() + annexB.size() + 64);
    while (sc < end) {
        const std::uint8_t* nal = sc + 3;
        const std::uint8_t* next = findStartCode(nal, end);
        const std::uint8_t* nalEnd = next;
        while (nalEnd > nal && nalEnd[-1] == 0) --nalEnd;  // trailing_zero_8bits / a 4-byte start code
        sc = next;
        if (nalEnd == nal) continue;
        const int type = nal[0] & 0x1F;
        const std::span<const std::uint8_t> unit(nal, static_cast<std::size_t>(nalEnd - nal));
        switch (type) {
        case kSps:
            au.parameterSets.sps.emplace_back(unit.begin(), unit.end());
            continue;
        case kPps:
            au.parameterSets.pps.emplace_back(unit.begin(), unit.end());
            continue;
        case kAud:
        case kFiller:
            continue;
        case kIdr:
            au.keyframe = true;
            picture = true;
            break;
        case kSlice:
            picture = true;
            break;
        default:
            break;
        }
        const std::uint32_t size = static_cast<std::uint32_t>(unit.size());
        const std::uint8_t length[4] = {static_cast<std::uint8_t>(size >> 24), static_cast<std::uint8_t>(size >> 16),
                                        static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size)};
        out.insert(out.end(), length, length + 4);
        out.insert(out.end(), unit.begin(), unit.end());
    }
    if (!picture) throw ExtractError("access unit without a coded picture");
    return au;
}

}  // namespace mimamori::retrieval

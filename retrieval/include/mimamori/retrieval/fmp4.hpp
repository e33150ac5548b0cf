// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// A fragmented MP4 (ISO/IEC 14496-12, H.264 per 14496-15) writer for one video track.
#pragma once

#include "mimamori/retrieval/extract_error.hpp"
#include "mimamori/retrieval/h264.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

namespace mimamori::retrieval {

// One H.264 frame: length-prefixed NAL units (annexBToAvcc) and its times in the track's
// timescale. Decode times strictly increase from sample to sample.
struct Mp4Sample {
    std::vector<std::uint8_t> data;
    std::uint64_t decodeTime = 0;
    std::uint32_t duration = 0;        // > 0
    std::int32_t compositionOffset = 0;  // composition time - decode time (B-frames: varies)
    bool keyframe = false;
    std::uint32_t description = 1;  // its stream format: 1-based index into the writer's formats
                                    // (with several, keyframes carry their SPS and PPS in-band)
};

// Writes ftyp + moov first, then moof + mdat per fragment, then mfra: the layout is in
// docs/extract-format.md. Output goes to `out` as it is produced (no seeking back). A fragment
// is closed before a keyframe once it holds `fragmentTicks`, before any sample once it would
// exceed `maxFragmentBytes`, and at every jump in decode time (a recording gap). Holds at most
// one fragment's samples. Not thread-safe.
class FragmentedMp4Writer {
public:
    using Sink = std::function<void(std::span<const std::uint8_t>)>;
    static constexpr std::uint32_t kTimescale = 90000;  // MPEG-TS's clock: frame times stay exact

    static constexpr std::size_t kMaxFormats = 16;  // stream formats in one extract

    // `formats`: the stream formats (SPS and PPS) of the samples, in order of appearance; a
    // sample names its own with `description`. One format: an `avc1` sample entry. Several:
    // one `avc3` entry with the first in its avcC, and the caller keeps each keyframe's SPS and
    // PPS in the sample (docs/extract-format.md). `startOffset`: composition time of the first
    // sample presented (its composition offset, with B-frames), written as an edit list so that
    // presentation starts at time 0.
    FragmentedMp4Writer(Sink out, const std::vector<ParameterSets>& formats, std::uint32_t startOffset = 0,
                        std::uint32_t fragmentTicks = kTimescale, std::size_t maxFragmentBytes = 4u << 20);
    FragmentedMp4Writer(Sink out, const ParameterSets& parameterSets, std::uint32_t startOffset = 0)
        : FragmentedMp4Writer(std::move(out), std::vector<ParameterSets>{parameterSets}, startOffset) {}

    // Throws the ExtractError the constructor would for a stream with these parameter sets.
    static void checkFormat(const ParameterSets& parameterSets);
    FragmentedMp4Writer(const FragmentedMp4Writer&) = delete;
    FragmentedMp4Writer& operator=(const FragmentedMp4Writer&) = delete;

    // Throws ExtractError when decode times do not increase, a duration is 0 or the sample
    // names no format. A change of format starts a new fragment.
    void add(Mp4Sample sample);
    // Writes the last fragment and the mfra index. No add() after this.
    void finish();

    std::uint64_t bytes() const { return bytes_; }
    std::uint64_t samples() const { return samples_; }
    const SpsInfo& sps() const { return sps_; }

private:
    void writeHeader(const std::vector<ParameterSets>& formats, std::uint32_t startOffset);
    void flush();
    void emit(std::span<const std::uint8_t> bytes);

    struct FragmentIndex {
        std::uint64_t time;  // presentation time of its first sample
        std::uint64_t moofOffset;
    };

    Sink out_;
    SpsInfo sps_;  // the first format's: the track's size
    std::vector<SpsInfo> formats_;
    std::uint32_t fragmentTicks_;
    std::size_t maxFragmentBytes_;
    std::vector<Mp4Sample> pending_;
    std::size_t pendingBytes_ = 0;
    std::uint64_t nextDecodeTime_ = 0;
    std::uint32_t sequence_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t samples_ = 0;
    std::vector<FragmentIndex> index_;
    std::vector<std::uint8_t> scratch_;
    bool finished_ = false;
};

}  // namespace mimamori::retrieval

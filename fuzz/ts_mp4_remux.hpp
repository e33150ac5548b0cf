// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The TS -> MP4 round trip the ts_mp4 fuzz target and its ffprobe replay test share: the
// recorder's TS through the demuxer, the Annex-B conversion and the fragmented MP4 writer.
#pragma once

#include "fuzz_support.hpp"

#include "mimamori/retrieval/fmp4.hpp"
#include "mimamori/retrieval/h264.hpp"
#include "mimamori/retrieval/ts_demux.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mimamori::fuzz {

struct RemuxResult {
    std::vector<std::uint8_t> mp4;  // empty: nothing demuxed to a picture with SPS and PPS
    retrieval::SpsInfo sps;
    std::uint64_t samples = 0;
    std::string error;  // the ExtractError that stopped it, if any
};

// Demuxes `ts` (the first byte chooses a truncated tail, as after a power cut) and remuxes
// every access unit whose decode time grows. Throws only what is not an ExtractError.
inline RemuxResult remuxTs(std::span<const std::uint8_t> input) {
    RemuxResult r;
    if (input.empty()) return r;
    const bool truncatedTail = (input[0] & 1) != 0;
    const auto ts = input.subspan(1);
    struct Frame {
        std::vector<std::uint8_t> data;
        std::int64_t dts;
        std::int64_t pts;
        bool key;
    };
    std::vector<Frame> frames;
    retrieval::ParameterSets parameterSets;
    std::optional<std::int64_t> firstDts;
    try {
        retrieval::TsDemuxer demuxer([&](const retrieval::TsAccessUnit& au) {
            Frame f;
            const retrieval::AvccAccessUnit avcc = retrieval::annexBToAvcc(au.data, f.data);
            if (!avcc.parameterSets.sps.empty()) parameterSets.sps = avcc.parameterSets.sps;
            if (!avcc.parameterSets.pps.empty()) parameterSets.pps = avcc.parameterSets.pps;
            if (!firstDts) firstDts = au.dts;
            f.dts = retrieval::tsTimeDiff(au.dts, *firstDts);
            f.pts = retrieval::tsTimeDiff(au.pts, *firstDts);
            f.key = avcc.keyframe;
            // Like the extractor, the MP4 starts at a keyframe and decode times only grow.
            if (frames.empty() && !f.key) return;
            if (!frames.empty() && f.dts <= frames.back().dts) return;
            if (f.pts - f.dts < 0 || f.pts - f.dts > std::numeric_limits<std::int32_t>::max()) return;
            frames.push_back(std::move(f));
        });
        demuxer.push(ts);
        demuxer.finish(truncatedTail);
    } catch (const retrieval::ExtractError& e) {
        r.error = e.what();
    }
    if (frames.empty() || parameterSets.sps.empty() || parameterSets.pps.empty()) return r;
    try {
        r.sps = retrieval::parseSps(parameterSets.sps.front());
        const std::int64_t startOffset = frames.front().pts - frames.front().dts;
        retrieval::FragmentedMp4Writer writer(
            [&](std::span<const std::uint8_t> bytes) { r.mp4.insert(r.mp4.end(), bytes.begin(), bytes.end()); },
            parameterSets, static_cast<std::uint32_t>(startOffset));
        std::uint32_t lastDuration = 3000;
        for (std::size_t i = 0; i < frames.size(); ++i) {
            retrieval::Mp4Sample s;
            const std::int64_t duration = i + 1 < frames.size() ? frames[i + 1].dts - frames[i].dts : lastDuration;
            if (duration > std::numeric_limits<std::int32_t>::max()) break;  // a gap this long ends the clip
            lastDuration = static_cast<std::uint32_t>(duration);
            s.data = std::move(frames[i].data);
            s.decodeTime = static_cast<std::uint64_t>(frames[i].dts);
            s.duration = lastDuration;
            s.compositionOffset = static_cast<std::int32_t>(frames[i].pts - frames[i].dts);
            s.keyframe = frames[i].key;
            writer.add(std::move(s));
        }
        writer.finish();
        r.samples = writer.samples();
    } catch (const retrieval::ExtractError& e) {
        r.mp4.clear();
        r.error = e.what();
    }
    return r;
}

}  // namespace mimamori::fuzz

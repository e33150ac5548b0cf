// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Cuts a time range out of the segment ring and remuxes it to MP4, without re-encoding.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/store/segment_store.hpp"
#include "mimamori/retrieval/extract_error.hpp"
#include "mimamori/retrieval/h264.hpp"
#include "mimamori/retrieval/manifest.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>

namespace mimamori::retrieval {

using common::UtcMicros;

// What an extract found, enough to produce the same MP4 again without looking for it: the
// segments it read (in order), the stream formats its scan found (the moov's sample entries),
// and the damaged footage it left out.
struct ExtractRecipe {
    std::vector<store::SegmentInfo> segments;  // sequence, start, end and bytesOnDisk identify each
    std::vector<ParameterSets> formats;
    std::vector<FootageGap> gaps;
};

struct ExtractResult {
    UtcMicros actualFrom = 0;  // UTC of the first frame in the MP4 (a keyframe at or before `from`)
    UtcMicros actualTo = 0;    // UTC just after the last frame (the end of the GOP reaching `to`)
    std::uint64_t frames = 0;
    std::uint64_t bytes = 0;   // MP4 bytes handed to the sink
    std::size_t segments = 0;  // segments read
    // Frames in the MP4 whose decode time did not increase (or whose presentation time came
    // before their decode time) in the recording and was moved (docs/extract-format.md).
    std::uint64_t timestampRepairs = 0;
    std::vector<FootageGap> gaps;  // damaged footage in the range, left out of the MP4
    ExtractRecipe recipe;          // for replayMp4
};

// Receives the MP4 in order, in pieces. It may throw; the extract then fails with that message.
using ByteSink = std::function<void(std::span<const std::uint8_t>)>;

// Reads the segments overlapping [from, to), keeps every GOP that overlaps the range (whole
// GOPs: at most one GOP outside the range on each end) and writes them as fragmented MP4
// (ISO BMFF with the moov first, streamable, opened by ordinary players; docs/extract-format.md).
// The timeline of the MP4 is UTC minus actualFrom, so recording gaps stay gaps. Nothing is
// re-encoded: the samples are the recorded H.264 access units.
//
// Plaintext never touches the disk: segments are decrypted into memory and the MP4 goes to
// `sink`. Reading, decrypting, demuxing and cutting run on a thread of the extract's own (nice
// +10, see lowerThreadPriority), handing whole GOPs over through a queue of a few MB; muxing
// and `sink` run on the calling thread, which the caller lowers if it should not compete with
// recording (the endpoint does). Both threads have ended when this returns or throws.
// A segment that cannot be read (authentication, demuxing, H.264) is left out from its last
// whole GOP on and named in `gaps`; the extract fails only when nothing in the range is sound.
// Throws ExtractError (the message names the segment), or what `sink` threw.
ExtractResult extractMp4(const store::SegmentStore& store, UtcMicros from, UtcMicros to,
                         const ByteSink& sink);

// Lowers the calling thread's CPU priority (nice +10) so recording keeps priority. Linux
// threads have their own nice value; it cannot be raised back without privilege, so call it
// only on threads that exist for retrieval work.
void lowerThreadPriority();

// The MP4 of an earlier extractMp4 again, byte for byte, from its recipe: the formats come
// from the recipe (no scanning pass), and the footage must read exactly as it did. Throws
// ExtractError before handing over any byte of a segment that the ring no longer lists as it
// was (deleted, replaced, another size) or that reads differently (a failure where there was
// none, or none where there was one): an MP4 other than the one that was hashed is never made.
ExtractResult replayMp4(const store::SegmentStore& store, UtcMicros from, UtcMicros to,
                        const ExtractRecipe& recipe, const ByteSink& sink);

}  // namespace mimamori::retrieval

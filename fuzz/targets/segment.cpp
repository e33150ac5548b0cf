// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the encrypted segment container (docs/segment-format.md) and the TS it holds.
// Keys come from a fixed day key, as make_seeds writes the seeds, so mutations reach past the
// header into chunk lengths, authentication, tags and the final record.
#include "../fuzz_support.hpp"

#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/segment_format.hpp"
#include "mimamori/retrieval/ts_demux.hpp"

#include <cstdint>
#include <cstdlib>
#include <optional>

using namespace mimamori;
using namespace mimamori::store;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const common::SecureBuffer dayKey(kKeyBytes);  // zero-filled: the fixed day key of the seeds
    static fuzz::MemFile file;
    file.set({data, size});
    retrieval::TsDemuxer demuxer([](const retrieval::TsAccessUnit&) {});
    bool demuxOk = true;
    const format::DecodeResult result = format::decodeSegment(
        file.fd(), "fuzz.mseg",
        [](const format::FileHeader& h) -> std::optional<common::SecureBuffer> { return deriveSegmentKey(dayKey, h.sequence); },
        [&](const format::ChunkPrefix&, std::span<const std::uint8_t> payload) {
            if (!demuxOk) return;
            try {
                demuxer.push(payload);
            } catch (const retrieval::ExtractError&) {
                demuxOk = false;
            }
        });
    if (result.final && result.error) std::abort();
    if (!result.error && !result.final) std::abort();
    if (result.goodFileBytes > size) std::abort();
    if (result.header) (void)format::cameraIdOf(*result.header);
    if (demuxOk) {
        try {
            demuxer.finish(result.truncated);
        } catch (const retrieval::ExtractError&) {
        }
    }
    return 0;
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the TS demuxer and the MP4 writer as one round trip. Whatever demuxes must remux
// into an MP4 whose boxes tile the file exactly and whose trun boxes hold every sample; the
// replay test (ts_mp4_ffprobe_test.cpp) also has ffprobe open what the corpus remuxes to.
#include "../ts_mp4_remux.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstdio>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const mimamori::fuzz::RemuxResult r = mimamori::fuzz::remuxTs({data, size});
    if (r.mp4.empty()) return 0;
    std::uint64_t trunSamples = 0;
    const std::string bad = mimamori::fuzz::checkBoxes(r.mp4, trunSamples);
    if (!bad.empty() || trunSamples != r.samples) {
        std::fprintf(stderr, "ts_mp4: bad MP4 (%s; trun samples %llu of %llu)\n", bad.c_str(),
                     static_cast<unsigned long long>(trunSamples), static_cast<unsigned long long>(r.samples));
        std::abort();
    }
    return 0;
}

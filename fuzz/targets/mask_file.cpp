// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the privacy mask file (docs/mask-file.md), then rasterising what validates.
#include "mimamori/masking/mask.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

using namespace mimamori::masking;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::vector<Finding> findings = validateMaskJson(text);
    for (const Finding& f : findings) (void)f.toString();
    MaskSet masks;
    try {
        masks = parseMaskJson(text, "fuzz.json");
    } catch (const MaskFileError& e) {
        if (findings.empty()) std::abort();  // validation and loading must agree
        (void)e.what();
        return 0;
    }
    if (!findings.empty()) std::abort();
    // What loads must rasterise and apply at any size, odd ones included, without a stray write.
    for (const auto& [w, h] : {std::pair{1, 1}, std::pair{17, 9}}) {
        const RasterMask raster(masks, w, h, PixelFormat::I420);
        const int cw = (w + 1) / 2, ch = (h + 1) / 2;
        std::vector<std::uint8_t> y(static_cast<std::size_t>(w * h), 7), u(static_cast<std::size_t>(cw * ch), 7),
            v(static_cast<std::size_t>(cw * ch), 7);
        FrameView frame;
        frame.planes[0] = y.data();
        frame.planes[1] = u.data();
        frame.planes[2] = v.data();
        frame.strides[0] = w;
        frame.strides[1] = cw;
        frame.strides[2] = cw;
        frame.width = w;
        frame.height = h;
        raster.apply(frame);
        if (raster.coverage() < 0 || raster.coverage() > 1) std::abort();
    }
    return 0;
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Preview images for city staff: one frame of an image or video, masked exactly as recorded.
#pragma once

#include "mimamori/masking/mask.hpp"

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <vector>

namespace mimamori::masking {

// Thrown when the input cannot be read or the PNG cannot be written; the message is one
// line naming the file.
class PreviewError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A packed 8-bit BGR image owning its pixels; rows are width * 3 bytes, no padding.
struct BgrImage {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> pixels;
};

// The frame at `atSeconds` of a video, or the image itself (then atSeconds must be 0).
// Images are recognised by their content (PNG, JPEG, ...); anything else is opened as video.
[[nodiscard]] BgrImage readFrame(const std::filesystem::path& input, double atSeconds);

// The frame as the recorder will encode it: converted to I420 (odd sizes included), masked
// in I420 with RasterMask, converted back to BGR. With `outline`, each polygon's edge and
// name are drawn on top so staff can check the placement (not part of any recording).
[[nodiscard]] BgrImage renderPreview(const MaskSet& masks, const BgrImage& frame, bool outline);

// Writes a PNG atomically (a crash leaves the old file or the new one, never half of one).
void writePng(const BgrImage& image, const std::filesystem::path& out);
// The PNG bytes (8-bit, 3 channels) of `image`. Throws PreviewError.
[[nodiscard]] std::vector<std::uint8_t> encodePng(const BgrImage& image);

// A raw frame with its planes packed without padding (I420: Y, then U and V of
// ceil(w/2) x ceil(h/2); NV12: Y, then interleaved UV) as BGR, converted as the recorder's
// review still is (docs/review-still.md, "The PNG"). Throws PreviewError for a size mismatch.
[[nodiscard]] BgrImage packedYuvToBgr(std::span<const std::uint8_t> packed, int width, int height,
                                      PixelFormat format);

}  // namespace mimamori::masking

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Privacy masks: the mask file (JSON, docs/mask-file.md), its validation, and in-place application.
// Loading yields a valid MaskSet or throws MaskFileError: there is no "masks disabled" state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::masking {

struct Point {
    double x = 0;  // fraction of the frame width, 0 = left edge, 1 = right edge
    double y = 0;  // fraction of the frame height, 0 = top, 1 = bottom
};

struct Mask {
    std::string name;
    std::vector<Point> polygon;
};

// A validated mask file. May hold no masks (nothing to hide), which is valid.
struct MaskSet {
    std::string camera;
    std::vector<Mask> masks;
    std::string sha256Hex;  // SHA-256 of the file's exact bytes, for the audit log and manifests
};

// One problem found in a mask file, e.g. {"house 12 windows", 3, "x is 1.2, outside 0..1"}.
// Points and masks are counted from 0, as in the JSON arrays.
struct Finding {
    std::string mask;      // the mask's name, or "" for file-level problems and unnamed masks
    int pointIndex = -1;   // -1 when the finding is not about one point
    std::string message;
    int maskIndex = -1;    // position in "masks", or -1 for file-level problems
    // "mask 'house 12 windows' point 3: x is 1.2, outside 0..1"; an unnamed mask shows as
    // "masks[2]", a file-level finding as its bare message.
    [[nodiscard]] std::string toString() const;
};

class MaskFileError : public std::runtime_error {
public:
    // what() is one line: the source and every finding, joined by "; ".
    MaskFileError(std::string source, std::vector<Finding> findings);
    [[nodiscard]] const std::vector<Finding>& findings() const { return findings_; }
    [[nodiscard]] const std::string& source() const { return source_; }

private:
    std::string source_;
    std::vector<Finding> findings_;
};

// Every finding in `json`, in file order; empty means valid. Pure, thread-safe.
[[nodiscard]] std::vector<Finding> validateMaskJson(std::string_view json);
// Throws MaskFileError (every finding) or common::FileError (unreadable file).
[[nodiscard]] MaskSet parseMaskJson(std::string_view json, std::string_view source);
[[nodiscard]] MaskSet loadMaskFile(const std::filesystem::path& path);

// Converts a mask file whose points are pixel coordinates of a width x height frame (pixel
// edges, 0..width and 0..height, as `mimamori mask show` prints them) into the file format's
// fractions, keeping everything else as it is (member order included). Throws MaskFileError
// naming every coordinate outside the frame, or every finding of the converted file; the text
// it returns is a valid mask file. width and height: 1..16384.
[[nodiscard]] std::string maskJsonFromPixels(std::string_view json, std::string_view source, int width, int height);

enum class PixelFormat { I420, NV12, BGR, RGB };

// A borrowed view of one frame's planes; strides in bytes, may exceed the row width (padding).
// I420: planes Y, U, V. NV12: planes Y, UV. BGR/RGB: one packed plane.
struct FrameView {
    std::uint8_t* planes[3] = {nullptr, nullptr, nullptr};
    int strides[3] = {0, 0, 0};
    int width = 0;
    int height = 0;
    PixelFormat format = PixelFormat::I420;
};

// One horizontal run of masked samples in one plane: [x0, x1) on row y, in that plane's samples.
struct Span {
    std::int32_t y = 0;
    std::int32_t x0 = 0;
    std::int32_t x1 = 0;
};

// A MaskSet rasterised once for one resolution and pixel format, into per-plane row spans.
// Conservative: every pixel a polygon touches is masked; a chroma sample is masked when any
// luma pixel it covers is. Immutable after construction, so safe to share between threads.
// Rules in docs/mask-file.md ("Rasterisation"); odd sizes have (w+1)/2 x (h+1)/2 chroma.
class RasterMask {
public:
    // Throws std::invalid_argument for a size outside 1..16384 or a polygon of fewer than
    // 3 points or with a non-finite coordinate (loadMaskFile never yields those).
    RasterMask(const MaskSet& masks, int width, int height, PixelFormat format);

    // Blacks out the masked samples in place (luma 0 / chroma 128 / RGB 0), one memset per
    // span. Leaves every other byte untouched, padding included. Throws std::invalid_argument,
    // writing nothing, when the frame's width, height or format differ from the above or a
    // plane is missing or its stride is shorter than a row: never masks in the wrong place.
    void apply(FrameView& frame) const;

    [[nodiscard]] int width() const { return width_; }
    [[nodiscard]] int height() const { return height_; }
    [[nodiscard]] PixelFormat format() const { return format_; }
    // Masked luma (or packed) pixels / all pixels, 0..1.
    [[nodiscard]] double coverage() const;
    // Sorted by row, then x; disjoint and not touching. Plane 2 of I420 equals plane 1.
    [[nodiscard]] const std::vector<Span>& spans(int plane) const { return spans_[plane]; }

private:
    int width_ = 0;
    int height_ = 0;
    PixelFormat format_ = PixelFormat::I420;
    std::vector<Span> spans_[3];
};

}  // namespace mimamori::masking

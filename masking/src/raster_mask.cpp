// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Rasterising mask polygons into conservative per-plane row spans, and applying them in place.
#include "mimamori/masking/mask.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace mimamori::masking {
namespace {

// Real frames are at most a few thousand pixels wide; this bound keeps every byte offset
// (stride * height) far inside int range.
constexpr int kMaxDimension = 16384;

struct Vec {
    double x = 0, y = 0;
};

using Interval = std::pair<double, double>;  // a closed x range in pixel coordinates
using Run = std::pair<int, int>;             // [x0, x1) in samples

// Adds the pixel columns of luma row `row` that the polygon overlaps with positive area.
//
// The polygon P covers a continuous area (vertices at x*width, y*height). Pixel column i of
// the row is masked when P overlaps the open square (i, i+1) x (row, row+1). The x extent of
// P inside the strip row <= y <= row+1 is the x extent of its boundary, which consists of
// (a) the parts of P's edges inside the strip and (b) the parts of the strip's two lines
// that lie inside P, taken just inside the strip (so a polygon ending exactly on y = row
// does not reach into this row). Every overlapped column lies under one of these closed
// intervals with positive width; intervals of zero width (vertical edges, a vertex on the
// strip's line) add nothing that the others do not already cover.
void rasteriseRow(const std::vector<Vec>& poly, int row, int width, std::vector<Run>& out) {
    const double top = row, bottom = row + 1.0;
    std::vector<Interval> pieces;
    std::vector<double> crossTop, crossBottom;
    const std::size_t n = poly.size();
    for (std::size_t i = 0; i < n; ++i) {
        Vec a = poly[i], b = poly[(i + 1) % n];
        if (a.y == b.y) {
            // A horizontal edge adds its extent only when it lies strictly inside the strip;
            // on the strip's lines the crossings below cover whatever is inside.
            if (a.y > top && a.y < bottom) pieces.emplace_back(std::min(a.x, b.x), std::max(a.x, b.x));
            continue;
        }
        if (a.y > b.y) std::swap(a, b);
        const auto xAt = [&](double y) { return a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y); };
        // (a) the edge's part inside the strip
        const double y0 = std::max(a.y, top), y1 = std::min(b.y, bottom);
        if (y0 < y1) {
            const double x0 = y0 == a.y ? a.x : xAt(y0);
            const double x1 = y1 == b.y ? b.x : xAt(y1);
            pieces.emplace_back(std::min(x0, x1), std::max(x0, x1));
        }
        // (b) crossings of the lines just below y = top and just above y = bottom
        if (a.y <= top && top < b.y) crossTop.push_back(a.y == top ? a.x : xAt(top));
        if (a.y < bottom && bottom <= b.y) crossBottom.push_back(b.y == bottom ? b.x : xAt(bottom));
    }
    for (auto* cross : {&crossTop, &crossBottom}) {
        std::sort(cross->begin(), cross->end());
        // A closed polygon crosses a line an even number of times; inside lies between pairs.
        for (std::size_t k = 0; k + 1 < cross->size(); k += 2) pieces.emplace_back((*cross)[k], (*cross)[k + 1]);
    }
    for (const auto& [x0, x1] : pieces) {
        if (!(x0 < x1)) continue;  // zero width: covered by the neighbouring pieces
        // Columns i with (i, i+1) overlapping (x0, x1).
        const int first = std::clamp(static_cast<int>(std::floor(x0)), 0, width);
        const int last = std::clamp(static_cast<int>(std::ceil(x1)), 0, width);
        if (first < last) out.emplace_back(first, last);
    }
}

// Sorts and merges overlapping or touching runs, so no sample is written twice.
void mergeRuns(std::vector<Run>& runs) {
    std::sort(runs.begin(), runs.end());
    std::size_t kept = 0;
    for (const auto& r : runs) {
        if (kept > 0 && r.first <= runs[kept - 1].second) {
            runs[kept - 1].second = std::max(runs[kept - 1].second, r.second);
        } else {
            runs[kept++] = r;
        }
    }
    runs.resize(kept);
}

std::vector<Span> toSpans(const std::vector<std::vector<Run>>& rows) {
    std::vector<Span> spans;
    for (std::size_t y = 0; y < rows.size(); ++y)
        for (const auto& [x0, x1] : rows[y]) spans.push_back(Span{static_cast<std::int32_t>(y), x0, x1});
    return spans;
}

const char* formatName(PixelFormat f) {
    switch (f) {
        case PixelFormat::I420: return "I420";
        case PixelFormat::NV12: return "NV12";
        case PixelFormat::BGR: return "BGR";
        case PixelFormat::RGB: return "RGB";
    }
    return "?";
}

// How one plane of a format is laid out and blacked out.
struct PlaneLayout {
    int samplesWide = 0;
    int rows = 0;
    int bytesPerSample = 0;
    std::uint8_t black = 0;
};

int planeCount(PixelFormat f) {
    switch (f) {
        case PixelFormat::I420: return 3;
        case PixelFormat::NV12: return 2;
        case PixelFormat::BGR:
        case PixelFormat::RGB: return 1;
    }
    return 0;
}

PlaneLayout planeLayout(PixelFormat f, int plane, int width, int height) {
    const int cw = (width + 1) / 2, ch = (height + 1) / 2;  // chroma of odd sizes rounds up
    switch (f) {
        case PixelFormat::I420:
            return plane == 0 ? PlaneLayout{width, height, 1, 0} : PlaneLayout{cw, ch, 1, 128};
        case PixelFormat::NV12:
            return plane == 0 ? PlaneLayout{width, height, 1, 0} : PlaneLayout{cw, ch, 2, 128};
        case PixelFormat::BGR:
        case PixelFormat::RGB: return PlaneLayout{width, height, 3, 0};
    }
    return {};
}

}  // namespace

RasterMask::RasterMask(const MaskSet& masks, int width, int height, PixelFormat format)
    : width_(width), height_(height), format_(format) {
    if (width < 1 || height < 1 || width > kMaxDimension || height > kMaxDimension)
        throw std::invalid_argument(fmt::format("frame size {}x{} is outside 1..{}", width, height, kMaxDimension));

    std::vector<std::vector<Run>> luma(static_cast<std::size_t>(height));
    for (const Mask& mask : masks.masks) {
        if (mask.polygon.size() < 3)
            throw std::invalid_argument(fmt::format("mask '{}' has fewer than 3 points", mask.name));
        std::vector<Vec> poly;
        double ymin = height, ymax = 0;
        for (const Point& p : mask.polygon) {
            if (!std::isfinite(p.x) || !std::isfinite(p.y))
                throw std::invalid_argument(fmt::format("mask '{}' has a point that is not a number", mask.name));
            // A MaskSet from loadMaskFile is within 0..1; one built in code is held to the frame.
            const Vec v{std::clamp(p.x, 0.0, 1.0) * width, std::clamp(p.y, 0.0, 1.0) * height};
            ymin = std::min(ymin, v.y);
            ymax = std::max(ymax, v.y);
            poly.push_back(v);
        }
        const int firstRow = std::clamp(static_cast<int>(std::floor(ymin)), 0, height);
        const int endRow = std::clamp(static_cast<int>(std::ceil(ymax)), 0, height);
        for (int row = firstRow; row < endRow; ++row)
            rasteriseRow(poly, row, width, luma[static_cast<std::size_t>(row)]);
    }
    for (auto& runs : luma) mergeRuns(runs);

    if (format == PixelFormat::I420 || format == PixelFormat::NV12) {
        // A chroma sample covers luma 2x..2x+1 on rows 2y..2y+1 (fewer at odd edges); it is
        // black when any of those is, so no colour of a masked pixel survives.
        const int ch = (height + 1) / 2;
        std::vector<std::vector<Run>> chroma(static_cast<std::size_t>(ch));
        for (int y = 0; y < height; ++y)
            for (const auto& [x0, x1] : luma[static_cast<std::size_t>(y)])
                chroma[static_cast<std::size_t>(y / 2)].emplace_back(x0 / 2, (x1 + 1) / 2);
        for (auto& runs : chroma) mergeRuns(runs);
        spans_[1] = toSpans(chroma);
        if (format == PixelFormat::I420) spans_[2] = spans_[1];
    }
    spans_[0] = toSpans(luma);
}

void RasterMask::apply(FrameView& frame) const {
    // A mismatched frame would be masked in the wrong places: refuse rather than guess.
    if (frame.width != width_ || frame.height != height_ || frame.format != format_)
        throw std::invalid_argument(fmt::format("frame is {}x{} {}, mask was rasterised for {}x{} {}", frame.width,
                                                frame.height, formatName(frame.format), width_, height_,
                                                formatName(format_)));
    const int planes = planeCount(format_);
    for (int p = 0; p < planes; ++p) {
        const PlaneLayout layout = planeLayout(format_, p, width_, height_);
        if (frame.planes[p] == nullptr || frame.strides[p] < layout.samplesWide * layout.bytesPerSample)
            throw std::invalid_argument(fmt::format("frame plane {} is missing or its stride {} is below {} bytes", p,
                                                    frame.strides[p], layout.samplesWide * layout.bytesPerSample));
    }
    for (int p = 0; p < planes; ++p) {
        const PlaneLayout layout = planeLayout(format_, p, width_, height_);
        std::uint8_t* const base = frame.planes[p];
        const std::ptrdiff_t stride = frame.strides[p];
        const int bps = layout.bytesPerSample;
        const int black = layout.black;
        for (const Span& s : spans_[p])
            std::memset(base + s.y * stride + s.x0 * bps, black, static_cast<std::size_t>(s.x1 - s.x0) * bps);
    }
}

double RasterMask::coverage() const {
    long long masked = 0;
    for (const Span& s : spans_[0]) masked += s.x1 - s.x0;
    return static_cast<double>(masked) / (static_cast<double>(width_) * height_);
}

}  // namespace mimamori::masking

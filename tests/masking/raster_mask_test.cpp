// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Tests of RasterMask against a reference rasteriser that measures polygon-pixel overlap areas.
#include "mimamori/masking/mask.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace mimamori::masking;

namespace {

// ---- The reference: written differently from the library on purpose. -----------------------
// A pixel is masked when the polygon overlaps its square with positive area. Here that area
// is measured directly: clip the polygon to the pixel square (Sutherland-Hodgman, correct
// for concave polygons against a convex window) and take the shoelace area.

using Poly = std::vector<std::array<double, 2>>;

Poly clipHalfPlane(const Poly& in, int axis, double bound, bool keepGreater) {
    Poly out;
    const auto inside = [&](const std::array<double, 2>& p) { return keepGreater ? p[axis] >= bound : p[axis] <= bound; };
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto& a = in[i];
        const auto& b = in[(i + 1) % in.size()];
        const bool ia = inside(a), ib = inside(b);
        if (ia) out.push_back(a);
        if (ia != ib) {
            const double t = (bound - a[axis]) / (b[axis] - a[axis]);
            std::array<double, 2> p{a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])};
            p[axis] = bound;
            out.push_back(p);
        }
    }
    return out;
}

double polyArea(const Poly& p) {
    double twice = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const auto& a = p[i];
        const auto& b = p[(i + 1) % p.size()];
        twice += a[0] * b[1] - b[0] * a[1];
    }
    return std::abs(twice) / 2;
}

enum class Ref : std::uint8_t { Out, In, Unsure };

// Per luma pixel: In (overlap area clearly positive), Out (no overlap), or Unsure (an area
// so small that rounding decides; the test then accepts either answer and counts them).
std::vector<Ref> referenceMask(const MaskSet& set, int w, int h) {
    std::vector<Ref> grid(static_cast<std::size_t>(w) * h, Ref::Out);
    for (const Mask& m : set.masks) {
        Poly poly;
        for (const Point& p : m.polygon) poly.push_back({p.x * w, p.y * h});
        for (int y = 0; y < h; ++y) {
            const Poly row = clipHalfPlane(clipHalfPlane(poly, 1, y, true), 1, y + 1.0, false);
            if (row.size() < 3) continue;
            double lo = w, hi = 0;
            for (const auto& p : row) {
                lo = std::min(lo, p[0]);
                hi = std::max(hi, p[0]);
            }
            const int x0 = std::max(0, static_cast<int>(std::floor(lo)) - 1);
            const int x1 = std::min(w, static_cast<int>(std::ceil(hi)) + 1);
            for (int x = x0; x < x1; ++x) {
                const Poly cell = clipHalfPlane(clipHalfPlane(row, 0, x, true), 0, x + 1.0, false);
                const double a = cell.size() < 3 ? 0 : polyArea(cell);
                Ref& r = grid[static_cast<std::size_t>(y) * w + x];
                if (a > 1e-9) {
                    r = Ref::In;
                } else if (a > 1e-13 && r == Ref::Out) {
                    r = Ref::Unsure;
                }
            }
        }
    }
    return grid;
}

// ---- Frames with padded strides, a pattern that is never black, and sentinel padding. -------

constexpr std::uint8_t kSentinel = 0xEE;

struct PlaneSpec {
    int samples = 0;  // per row
    int rows = 0;
    int bytesPerSample = 1;
    std::uint8_t black = 0;
};

std::vector<PlaneSpec> planeSpecs(PixelFormat f, int w, int h) {
    const int cw = (w + 1) / 2, ch = (h + 1) / 2;
    switch (f) {
        case PixelFormat::I420: return {{w, h, 1, 0}, {cw, ch, 1, 128}, {cw, ch, 1, 128}};
        case PixelFormat::NV12: return {{w, h, 1, 0}, {cw, ch, 2, 128}};
        case PixelFormat::BGR:
        case PixelFormat::RGB: return {{w, h, 3, 0}};
    }
    return {};
}

struct TestFrame {
    PixelFormat format = PixelFormat::I420;
    int width = 0, height = 0;
    std::vector<PlaneSpec> specs;
    std::array<int, 3> strides{};
    std::array<std::vector<std::uint8_t>, 3> bytes;

    FrameView view() {
        FrameView v;
        v.width = width;
        v.height = height;
        v.format = format;
        for (std::size_t p = 0; p < specs.size(); ++p) {
            v.planes[p] = bytes[p].data();
            v.strides[p] = strides[p];
        }
        return v;
    }
};

// Pixel values 1..126: never 0 or 128, so a blacked-out sample can never look unchanged.
TestFrame makeFrame(PixelFormat format, int w, int h, int padding, unsigned seed = 1) {
    TestFrame f;
    f.format = format;
    f.width = w;
    f.height = h;
    f.specs = planeSpecs(format, w, h);
    std::mt19937 rng(seed);
    for (std::size_t p = 0; p < f.specs.size(); ++p) {
        const int rowBytes = f.specs[p].samples * f.specs[p].bytesPerSample;
        f.strides[p] = rowBytes + padding;
        f.bytes[p].assign(static_cast<std::size_t>(f.strides[p]) * f.specs[p].rows, kSentinel);
        for (int y = 0; y < f.specs[p].rows; ++y)
            for (int x = 0; x < rowBytes; ++x)
                f.bytes[p][static_cast<std::size_t>(y) * f.strides[p] + x] = static_cast<std::uint8_t>(1 + rng() % 126);
    }
    return f;
}

std::vector<bool> maskFromSpans(const RasterMask& rm, int plane, int samples, int rows) {
    std::vector<bool> grid(static_cast<std::size_t>(samples) * rows, false);
    for (const Span& s : rm.spans(plane))
        for (int x = s.x0; x < s.x1; ++x) grid[static_cast<std::size_t>(s.y) * samples + x] = true;
    return grid;
}

// Spans lie inside their plane, sorted, and never overlap or touch: no byte is written twice.
void checkSpansWellFormed(const RasterMask& rm, PixelFormat format, int w, int h) {
    const auto specs = planeSpecs(format, w, h);
    for (std::size_t p = 0; p < specs.size(); ++p) {
        const auto& spans = rm.spans(static_cast<int>(p));
        for (std::size_t i = 0; i < spans.size(); ++i) {
            const Span& s = spans[i];
            REQUIRE(s.y >= 0);
            REQUIRE(s.y < specs[p].rows);
            REQUIRE(s.x0 >= 0);
            REQUIRE(s.x0 < s.x1);
            REQUIRE(s.x1 <= specs[p].samples);
            if (i > 0) {
                const Span& prev = spans[i - 1];
                REQUIRE((prev.y < s.y || (prev.y == s.y && prev.x1 < s.x0)));
            }
        }
    }
}

struct Outcome {
    long long unsure = 0;
    long long maskedLuma = 0;
};

// Applies `set` to a padded frame of `format` and compares every byte, padding included,
// with what the reference says: masked samples black, everything else as it was.
Outcome checkAgainstReference(const MaskSet& set, PixelFormat format, int w, int h, int padding, unsigned seed = 1) {
    const RasterMask rm(set, w, h, format);
    checkSpansWellFormed(rm, format, w, h);
    const std::vector<Ref> ref = referenceMask(set, w, h);
    const std::vector<bool> got = maskFromSpans(rm, 0, w, h);

    // Luma decisions: reference In must be masked, Out must not; Unsure takes the library's.
    Outcome outcome;
    std::vector<bool> luma(static_cast<std::size_t>(w) * h);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            const std::size_t i = static_cast<std::size_t>(y) * w + x;
            if (ref[i] == Ref::Unsure) ++outcome.unsure;
            luma[i] = ref[i] == Ref::In || (ref[i] == Ref::Unsure && got[i]);
            outcome.maskedLuma += luma[i];
        }
    }
    TestFrame frame = makeFrame(format, w, h, padding, seed);
    TestFrame expected = frame;
    for (std::size_t p = 0; p < expected.specs.size(); ++p) {
        const PlaneSpec& spec = expected.specs[p];
        const bool chroma = p > 0;  // only planar YUV formats have more than one plane
        for (int y = 0; y < spec.rows; ++y) {
            for (int x = 0; x < spec.samples; ++x) {
                bool masked = false;
                if (!chroma) {
                    masked = luma[static_cast<std::size_t>(y) * w + x];
                } else {
                    // The chroma rule: black when any luma pixel the sample covers is masked.
                    for (int dy = 0; dy < 2; ++dy)
                        for (int dx = 0; dx < 2; ++dx) {
                            const int lx = 2 * x + dx, ly = 2 * y + dy;
                            if (lx < w && ly < h) masked = masked || luma[static_cast<std::size_t>(ly) * w + lx];
                        }
                }
                if (!masked) continue;
                for (int b = 0; b < spec.bytesPerSample; ++b)
                    expected.bytes[p][static_cast<std::size_t>(y) * expected.strides[p] + x * spec.bytesPerSample + b] =
                        spec.black;
            }
        }
    }
    FrameView view = frame.view();
    rm.apply(view);
    for (std::size_t p = 0; p < frame.specs.size(); ++p) {
        const auto mismatch = std::mismatch(frame.bytes[p].begin(), frame.bytes[p].end(), expected.bytes[p].begin());
        if (mismatch.first != frame.bytes[p].end()) {
            const auto offset = mismatch.first - frame.bytes[p].begin();
            FAIL_CHECK("plane " << p << " row " << offset / frame.strides[p] << " byte " << offset % frame.strides[p]
                                << ": got " << int(*mismatch.first) << ", expected " << int(*mismatch.second));
        }
    }
    return outcome;
}

MaskSet masksFromPixels(int w, int h, const std::vector<std::vector<std::array<double, 2>>>& polys) {
    MaskSet set;
    set.camera = "test";
    for (std::size_t i = 0; i < polys.size(); ++i) {
        Mask m;
        m.name = "mask " + std::to_string(i);
        for (const auto& p : polys[i]) m.polygon.push_back(Point{p[0] / w, p[1] / h});
        set.masks.push_back(m);
    }
    return set;
}

// A mixed scene at 767x575 (odd both ways): rectangles, a triangle, a concave "C", polygons
// smaller than one chroma sample, polygons on all four frame edges and corners, overlaps.
MaskSet mixedScene() {
    MaskSet set;
    set.camera = "test";
    const auto add = [&](const char* name, std::vector<Point> pts) { set.masks.push_back(Mask{name, std::move(pts)}); };
    add("rectangle", {{0.1234, 0.1111}, {0.3456, 0.1111}, {0.3456, 0.2345}, {0.1234, 0.2345}});
    add("overlapping rectangle", {{0.3001, 0.2002}, {0.4503, 0.2002}, {0.4503, 0.3107}, {0.3001, 0.3107}});
    add("triangle", {{0.5013, 0.0517}, {0.7021, 0.3011}, {0.4012, 0.2522}});
    add("concave C", {{0.6012, 0.4013}, {0.8517, 0.4013}, {0.8517, 0.4519}, {0.6631, 0.4519}, {0.6631, 0.6017},
                      {0.8517, 0.6017}, {0.8517, 0.6523}, {0.6012, 0.6523}});
    add("tiny inside one pixel", {{601.2 / 767, 401.3 / 575}, {601.7 / 767, 401.4 / 575}, {601.4 / 767, 401.8 / 575}});
    add("tiny across pixel corners", {{299.9 / 767, 99.95 / 575}, {300.15 / 767, 99.9 / 575}, {300.05 / 767, 100.2 / 575}});
    add("sliver inside one pixel row", {{0.2003, 401.2 / 575}, {0.4007, 401.2 / 575}, {0.4007, 401.6 / 575}, {0.2003, 401.6 / 575}});
    add("top edge", {{0.0, 0.0}, {1.0, 0.0}, {1.0, 0.0123}, {0.0, 0.0311}});
    add("left edge", {{0.0, 0.4017}, {0.0519, 0.4513}, {0.0, 0.5021}});
    add("right edge", {{1.0, 0.6013}, {0.9811, 0.7017}, {1.0, 0.8023}});
    add("bottom-right corner", {{0.9713, 1.0}, {1.0, 0.9617}, {1.0, 1.0}});
    add("bottom-left corner", {{0.0, 0.9911}, {0.0123, 1.0}, {0.0, 1.0}});
    return set;
}

MaskSet star(int points, double cx, double cy, double rOuter, double rInner) {
    MaskSet set;
    set.camera = "test";
    Mask m{"star", {}};
    for (int i = 0; i < points; ++i) {
        const double a = i * 2 * M_PI / points + 0.0123, r = i % 2 ? rInner : rOuter;
        m.polygon.push_back(Point{cx + r * std::cos(a), cy + r * std::sin(a)});
    }
    set.masks.push_back(m);
    return set;
}

}  // namespace

TEST_CASE("I420 767x575 with padded strides: masked samples black in every plane, all else untouched") {
    const auto outcome = checkAgainstReference(mixedScene(), PixelFormat::I420, 767, 575, 33);
    CHECK(outcome.maskedLuma > 10000);
    CHECK(outcome.unsure == 0);
}

TEST_CASE("NV12 767x575 with padded strides: masked samples black in both planes, all else untouched") {
    checkAgainstReference(mixedScene(), PixelFormat::NV12, 767, 575, 17);
}

TEST_CASE("packed BGR and RGB 767x575 with padded strides: masked pixels black, all else untouched") {
    checkAgainstReference(mixedScene(), PixelFormat::BGR, 767, 575, 5);
    checkAgainstReference(mixedScene(), PixelFormat::RGB, 767, 575, 64);
}

TEST_CASE("a concave 200-point star is masked conservatively, every pixel it touches and no other") {
    const auto outcome = checkAgainstReference(star(200, 0.48, 0.52, 0.41, 0.17), PixelFormat::I420, 641, 481, 3);
    CHECK(outcome.maskedLuma > 20000);
}

TEST_CASE("random simple polygons on odd frame sizes agree with the reference") {
    std::mt19937 rng(20261124);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    long long unsure = 0;
    for (int round = 0; round < 25; ++round) {
        const int w = 31 + static_cast<int>(rng() % 170), h = 21 + static_cast<int>(rng() % 130);
        MaskSet set;
        set.camera = "test";
        const int count = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < count; ++k) {
            // Star-shaped around a centre with sorted angles: always a simple polygon, often concave.
            const double cx = unit(rng), cy = unit(rng), scale = 0.02 + 0.5 * unit(rng);
            const int n = 3 + static_cast<int>(rng() % 12);
            std::vector<double> angles;
            for (int i = 0; i < n; ++i) angles.push_back(unit(rng) * 2 * M_PI);
            std::sort(angles.begin(), angles.end());
            Mask m{"random " + std::to_string(k), {}};
            for (double a : angles) {
                const double r = scale * (0.2 + 0.8 * unit(rng));
                m.polygon.push_back(Point{std::clamp(cx + r * std::cos(a), 0.0, 1.0), std::clamp(cy + r * std::sin(a), 0.0, 1.0)});
            }
            set.masks.push_back(m);
        }
        CAPTURE(round);
        CAPTURE(w);
        CAPTURE(h);
        const PixelFormat format = std::array{PixelFormat::I420, PixelFormat::NV12, PixelFormat::BGR}[round % 3];
        unsure += checkAgainstReference(set, format, w, h, static_cast<int>(rng() % 9), static_cast<unsigned>(round)).unsure;
    }
    CHECK(unsure < 5);  // areas below 1e-9 of a pixel: rounding may decide either way
}

TEST_CASE("a polygon smaller than one chroma sample blacks its luma pixel and that chroma sample") {
    const int w = 200, h = 100;
    const MaskSet set = masksFromPixels(w, h, {{{101.2, 51.2}, {101.6, 51.3}, {101.4, 51.5}}});
    const RasterMask rm(set, w, h, PixelFormat::I420);
    TestFrame frame = makeFrame(PixelFormat::I420, w, h, 8);
    const TestFrame before = frame;
    FrameView view = frame.view();
    rm.apply(view);
    CHECK(frame.bytes[0][51 * frame.strides[0] + 101] == 0);
    CHECK(frame.bytes[1][25 * frame.strides[1] + 50] == 128);
    CHECK(frame.bytes[2][25 * frame.strides[2] + 50] == 128);
    // Exactly one byte changed in each plane.
    for (int p = 0; p < 3; ++p) {
        std::size_t changed = 0;
        for (std::size_t i = 0; i < frame.bytes[p].size(); ++i) changed += frame.bytes[p][i] != before.bytes[p][i];
        CHECK(changed == 1);
    }
    CHECK(rm.coverage() == doctest::Approx(1.0 / (w * h)));
}

TEST_CASE("the last chroma sample of an odd-sized frame is blacked when its single luma pixel is masked") {
    const int w = 767, h = 575;
    const MaskSet set = masksFromPixels(w, h, {{{766.3, 574.2}, {767.0, 574.2}, {767.0, 575.0}}});
    const RasterMask rm(set, w, h, PixelFormat::I420);
    REQUIRE(rm.spans(0).size() == 1);
    CHECK(rm.spans(0)[0].y == 574);
    CHECK(rm.spans(0)[0].x0 == 766);
    CHECK(rm.spans(0)[0].x1 == 767);
    REQUIRE(rm.spans(1).size() == 1);
    CHECK(rm.spans(1)[0].y == 287);  // (575 + 1) / 2 rows: 0..287
    CHECK(rm.spans(1)[0].x0 == 383);  // (767 + 1) / 2 samples: 0..383
    CHECK(rm.spans(1)[0].x1 == 384);
}

TEST_CASE("a polygon on pixel edges masks exactly the pixels inside, not their neighbours") {
    const MaskSet set = masksFromPixels(800, 600, {{{200, 150}, {400, 150}, {400, 300}, {200, 300}}});
    const RasterMask rm(set, 800, 600, PixelFormat::I420);
    REQUIRE(rm.spans(0).size() == 150);
    CHECK(rm.spans(0).front().y == 150);
    CHECK(rm.spans(0).back().y == 299);
    for (const Span& s : rm.spans(0)) {
        CHECK(s.x0 == 200);
        CHECK(s.x1 == 400);
    }
    CHECK(rm.coverage() == doctest::Approx(0.0625));
    CHECK(rm.spans(1).front().y == 75);
    CHECK(rm.spans(1).back().y == 149);
    CHECK(rm.spans(1).front().x0 == 100);
    CHECK(rm.spans(1).front().x1 == 200);
}

TEST_CASE("the whole frame as one mask blacks everything; an empty mask set changes nothing") {
    const MaskSet all = masksFromPixels(33, 17, {{{0, 0}, {33, 0}, {33, 17}, {0, 17}}});
    CHECK(RasterMask(all, 33, 17, PixelFormat::NV12).coverage() == 1.0);
    checkAgainstReference(all, PixelFormat::NV12, 33, 17, 2);

    const MaskSet none{"test", {}, {}};
    const RasterMask rm(none, 33, 17, PixelFormat::I420);
    CHECK(rm.coverage() == 0.0);
    TestFrame frame = makeFrame(PixelFormat::I420, 33, 17, 3);
    const TestFrame before = frame;
    FrameView view = frame.view();
    rm.apply(view);
    for (int p = 0; p < 3; ++p) CHECK(frame.bytes[p] == before.bytes[p]);
}

TEST_CASE("a frame that does not match the rasterised size, format or strides is refused") {
    const RasterMask rm(mixedScene(), 767, 575, PixelFormat::I420);
    TestFrame wrongSize = makeFrame(PixelFormat::I420, 768, 576, 0);
    FrameView v1 = wrongSize.view();
    CHECK_THROWS_AS(rm.apply(v1), std::invalid_argument);
    TestFrame wrongFormat = makeFrame(PixelFormat::NV12, 767, 575, 0);
    FrameView v2 = wrongFormat.view();
    CHECK_THROWS_AS(rm.apply(v2), std::invalid_argument);
    TestFrame good = makeFrame(PixelFormat::I420, 767, 575, 0);
    FrameView v3 = good.view();
    v3.strides[1] = 100;  // narrower than the 384 chroma samples of a row
    CHECK_THROWS_AS(rm.apply(v3), std::invalid_argument);
    CHECK_THROWS_AS(RasterMask(mixedScene(), 0, 575, PixelFormat::I420), std::invalid_argument);
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Preview images: read one frame, mask it in I420 exactly as the recorder does, draw outlines.
#include "mimamori/masking/preview.hpp"

#include "mimamori/common/file.hpp"

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/freetype.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string_view>

namespace mimamori::masking {
namespace {

BgrImage fromMat(const cv::Mat& bgr) {
    BgrImage image;
    image.width = bgr.cols;
    image.height = bgr.rows;
    image.pixels.resize(static_cast<std::size_t>(bgr.cols) * bgr.rows * 3);
    const std::size_t rowBytes = static_cast<std::size_t>(bgr.cols) * 3;
    for (int y = 0; y < bgr.rows; ++y)
        std::memcpy(image.pixels.data() + y * rowBytes, bgr.ptr<std::uint8_t>(y), rowBytes);
    return image;
}

// Borrows the pixels: the Mat is valid while `image` is alive and not resized.
cv::Mat asMat(const BgrImage& image) {
    return cv::Mat(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.pixels.data()));
}

BgrImage readVideoFrame(const std::filesystem::path& input, double atSeconds) {
    cv::VideoCapture capture(input.string());
    if (!capture.isOpened())
        throw PreviewError(fmt::format("cannot open '{}' as an image or a video", input.string()));
    const double fps = capture.get(cv::CAP_PROP_FPS);
    const double frames = capture.get(cv::CAP_PROP_FRAME_COUNT);
    if (atSeconds > 0) {
        if (!(fps > 0)) throw PreviewError(fmt::format("'{}' does not say its frame rate, so --at cannot find a frame", input.string()));
        const double index = std::floor(atSeconds * fps + 1e-9);
        if (frames > 0 && index >= frames)
            throw PreviewError(fmt::format("'{}' lasts {:.2f} s; it has no frame at {} s", input.string(),
                                           frames / fps, atSeconds));
        // OpenCV's FFmpeg reader seeks to the keyframe before and decodes up to this frame.
        capture.set(cv::CAP_PROP_POS_FRAMES, index);
    }
    cv::Mat frame;
    if (!capture.read(frame) || frame.empty())
        throw PreviewError(fmt::format("'{}' has no frame at {} s", input.string(), atSeconds));
    if (frame.type() != CV_8UC3)
        throw PreviewError(fmt::format("'{}' decodes to an unexpected pixel type", input.string()));
    return fromMat(frame);
}

// Colour for outlines: yellow stands out on black masks and on most street scenes.
const cv::Scalar kOutline(0, 230, 255);
const cv::Scalar kShadow(0, 0, 0);

// Mask names are whatever staff type, Japanese included: drawn through FreeType and HarfBuzz
// with a CJK font from Debian's fonts-noto-cjk (OpenCV's own Hershey fonts know only ASCII and
// would print "?" for each character).
constexpr std::array<std::string_view, 2> kLabelFonts = {
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
};

cv::Ptr<cv::freetype::FreeType2> labelFont() {
    for (std::string_view file : kLabelFonts) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(file, ec)) continue;
        auto font = cv::freetype::createFreeType2();
        font->loadFontData(std::string(file), 0);  // face 0 of the collection: Japanese
        return font;
    }
    throw PreviewError(fmt::format("no font for mask names: install fonts-noto-cjk ({} is missing)", kLabelFonts[0]));
}

void drawOutlines(const MaskSet& masks, cv::Mat& bgr) {
    constexpr int kShift = 4;  // sub-pixel precision of cv::polylines: 1/16 pixel
    const double scale = 1 << kShift;
    const int thickness = std::max(2, bgr.cols / 480);
    const int fontHeight = std::max(14, bgr.cols / 60);
    const auto font = labelFont();
    for (const Mask& mask : masks.masks) {
        std::vector<cv::Point> pts;
        double minX = bgr.cols, minY = bgr.rows, maxX = 0, maxY = 0;
        for (const Point& p : mask.polygon) {
            // Mask coordinates are continuous (pixel i spans i..i+1); OpenCV draws at centres.
            const double x = p.x * bgr.cols - 0.5, y = p.y * bgr.rows - 0.5;
            minX = std::min(minX, x);
            minY = std::min(minY, y);
            maxX = std::max(maxX, x);
            maxY = std::max(maxY, y);
            pts.emplace_back(static_cast<int>(std::lround(x * scale)), static_cast<int>(std::lround(y * scale)));
        }
        const std::vector<std::vector<cv::Point>> polys{pts};
        cv::polylines(bgr, polys, true, kShadow, thickness + 2, cv::LINE_AA, kShift);
        cv::polylines(bgr, polys, true, kOutline, thickness, cv::LINE_AA, kShift);

        int baseline = 0;
        const cv::Size text = font->getTextSize(mask.name, fontHeight, -1, &baseline);
        // Inside the polygon's top-left corner when it fits, else just below the polygon
        // (above it at the bottom of the frame), kept within the frame.
        const bool fitsInside = text.width + 8 <= maxX - minX && text.height + 8 <= maxY - minY;
        int ty = static_cast<int>(minY) + text.height + 4;
        if (!fitsInside) {
            ty = static_cast<int>(maxY) + text.height + thickness + 4;
            if (ty + baseline > bgr.rows) ty = static_cast<int>(minY) - thickness - 4;
        }
        const int tx = std::clamp(static_cast<int>(minX) + 4, 0, std::max(0, bgr.cols - text.width));
        ty = std::clamp(ty, text.height, std::max(text.height, bgr.rows - baseline));
        // A dark halo (the text drawn around its place) keeps the yellow legible on any scene.
        for (const cv::Point d : {cv::Point(-1, 0), cv::Point(1, 0), cv::Point(0, -1), cv::Point(0, 1)})
            font->putText(bgr, mask.name, cv::Point(tx, ty) + d, fontHeight, kShadow, -1, cv::LINE_AA, true);
        font->putText(bgr, mask.name, {tx, ty}, fontHeight, kOutline, -1, cv::LINE_AA, true);
    }
}

}  // namespace

BgrImage readFrame(const std::filesystem::path& input, double atSeconds) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(input, ec))
        throw PreviewError(fmt::format("'{}' is not a readable file", input.string()));
    if (!(atSeconds >= 0) || !std::isfinite(atSeconds))
        throw PreviewError(fmt::format("the time {} s is not a non-negative number", atSeconds));
    if (cv::haveImageReader(input.string())) {
        if (atSeconds != 0)
            throw PreviewError(fmt::format("'{}' is a still image; a time applies to videos only", input.string()));
        const cv::Mat image = cv::imread(input.string(), cv::IMREAD_COLOR);
        if (image.empty()) throw PreviewError(fmt::format("cannot decode the image '{}'", input.string()));
        return fromMat(image);
    }
    return readVideoFrame(input, atSeconds);
}

BgrImage renderPreview(const MaskSet& masks, const BgrImage& frame, bool outline) {
    if (frame.width < 1 || frame.height < 1 ||
        frame.pixels.size() != static_cast<std::size_t>(frame.width) * frame.height * 3)
        throw PreviewError("the frame to preview is empty or its size does not match its pixels");
    // OpenCV converts to I420 only at even sizes: pad odd sizes by repeating the last row and
    // column. The padded chroma planes are then exactly (w+1)/2 x (h+1)/2, as in the recorder,
    // and the mask is applied to the real w x h frame inside the padded strides.
    const int w = frame.width, h = frame.height;
    const int pw = w + (w & 1), ph = h + (h & 1);
    cv::Mat padded;
    cv::copyMakeBorder(asMat(frame), padded, 0, ph - h, 0, pw - w, cv::BORDER_REPLICATE);
    cv::Mat i420;
    cv::cvtColor(padded, i420, cv::COLOR_BGR2YUV_I420);

    FrameView view;
    view.width = w;
    view.height = h;
    view.format = PixelFormat::I420;
    view.planes[0] = i420.data;
    view.planes[1] = i420.data + static_cast<std::size_t>(pw) * ph;
    view.planes[2] = view.planes[1] + static_cast<std::size_t>(pw / 2) * (ph / 2);
    view.strides[0] = pw;
    view.strides[1] = view.strides[2] = pw / 2;
    RasterMask(masks, w, h, PixelFormat::I420).apply(view);

    cv::Mat back;
    cv::cvtColor(i420, back, cv::COLOR_YUV2BGR_I420);
    cv::Mat result = back(cv::Rect(0, 0, w, h));
    if (outline) drawOutlines(masks, result);
    return fromMat(result);
}

std::vector<std::uint8_t> encodePng(const BgrImage& image) {
    std::vector<std::uint8_t> png;
    if (!cv::imencode(".png", asMat(image), png)) throw PreviewError("cannot encode the image as PNG");
    return png;
}

BgrImage packedYuvToBgr(std::span<const std::uint8_t> packed, int width, int height, PixelFormat format) {
    if (width < 1 || height < 1) throw PreviewError("a frame of no pixels");
    if (format != PixelFormat::I420 && format != PixelFormat::NV12) throw PreviewError("a frame that is not YUV 4:2:0");
    const auto w = static_cast<std::size_t>(width), h = static_cast<std::size_t>(height);
    const std::size_t cw = (w + 1) / 2, ch = (h + 1) / 2;
    if (packed.size() != w * h + 2 * cw * ch) throw PreviewError("the frame's size does not match its pixels");
    // OpenCV converts only even sizes: the luma plane gets its last column and row repeated,
    // the chroma planes already have ceil(w/2) x ceil(h/2) samples.
    const std::size_t pw = 2 * cw, ph = 2 * ch;
    cv::Mat yuv(static_cast<int>(ph + ph / 2), static_cast<int>(pw), CV_8UC1);
    std::uint8_t* out = yuv.data;
    for (std::size_t y = 0; y < ph; ++y) {
        const std::uint8_t* row = packed.data() + std::min(y, h - 1) * w;
        std::memcpy(out + y * pw, row, w);
        if (pw > w) out[y * pw + w] = row[w - 1];
    }
    std::memcpy(out + pw * ph, packed.data() + w * h, 2 * cw * ch);  // chroma, already packed
    cv::Mat bgr;
    cv::cvtColor(yuv, bgr, format == PixelFormat::NV12 ? cv::COLOR_YUV2BGR_NV12 : cv::COLOR_YUV2BGR_I420);
    return fromMat(bgr(cv::Rect(0, 0, width, height)));
}

void writePng(const BgrImage& image, const std::filesystem::path& out) {
    std::vector<std::uint8_t> png;
    try {
        png = encodePng(image);
    } catch (const PreviewError&) {
        throw PreviewError(fmt::format("cannot encode the preview for '{}' as PNG", out.string()));
    }
    using std::filesystem::perms;
    common::writeFileAtomic(out, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()),
                            perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
}

}  // namespace mimamori::masking

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Drift check: ORB features and a RANSAC similarity transform (OpenCV), then each mask's
// polygon moved with the scene and compared with the mask in force.
#include "mimamori/masking/drift.hpp"

#include <fmt/format.h>
#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace mimamori::masking {
namespace {

// Below this many agreeing matches the estimate could be chance (RANSAC needs 2 for a
// similarity; a real street scene gives hundreds).
constexpr int kMinInliers = 12;

cv::Mat grey(const BgrImage& image) {
    const cv::Mat bgr(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.pixels.data()));
    cv::Mat out;
    cv::cvtColor(bgr, out, cv::COLOR_BGR2GRAY);
    return out;
}

// The mask's masked pixels as a 0/255 image, rasterised as the recorder masks (RasterMask).
cv::Mat maskImage(const Mask& mask, int width, int height) {
    const RasterMask raster(MaskSet{"", {mask}, ""}, width, height, PixelFormat::BGR);
    cv::Mat out = cv::Mat::zeros(height, width, CV_8UC1);
    for (const Span& s : raster.spans(0)) out.row(s.y).colRange(s.x0, s.x1).setTo(255);
    return out;
}

}  // namespace

SceneMotion estimateSceneMotion(const BgrImage& reference, const BgrImage& still) {
    if (reference.width != still.width || reference.height != still.height)
        throw PreviewError(fmt::format("the still is {}x{} and the reference {}x{}: take both at the camera's resolution",
                                       still.width, still.height, reference.width, reference.height));
    auto orb = cv::ORB::create(3000);
    std::vector<cv::KeyPoint> refPoints, stillPoints;
    cv::Mat refDescriptors, stillDescriptors;
    orb->detectAndCompute(grey(reference), cv::noArray(), refPoints, refDescriptors);
    orb->detectAndCompute(grey(still), cv::noArray(), stillPoints, stillDescriptors);
    std::vector<cv::Point2f> from, to;
    if (!refDescriptors.empty() && !stillDescriptors.empty()) {
        // Cross-checked nearest neighbours: a match must be each other's best.
        cv::BFMatcher matcher(cv::NORM_HAMMING, true);
        std::vector<cv::DMatch> matches;
        matcher.match(refDescriptors, stillDescriptors, matches);
        for (const cv::DMatch& m : matches) {
            from.push_back(refPoints[static_cast<std::size_t>(m.queryIdx)].pt);
            to.push_back(stillPoints[static_cast<std::size_t>(m.trainIdx)].pt);
        }
    }
    cv::Mat inlierMask;
    cv::Mat m;
    if (from.size() >= static_cast<std::size_t>(kMinInliers))
        m = cv::estimateAffinePartial2D(from, to, inlierMask, cv::RANSAC, 2.0, 5000, 0.999);
    const int inliers = inlierMask.empty() ? 0 : cv::countNonZero(inlierMask);
    if (m.empty() || inliers < kMinInliers)
        throw PreviewError(fmt::format("the stills share too few features to measure a movement ({} matching, {} "
                                       "needed): are they from the same camera, by day?",
                                       inliers, kMinInliers));
    SceneMotion motion;
    for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 3; ++c) motion.matrix[static_cast<std::size_t>(r * 3 + c)] = m.at<double>(r, c);
    const auto& a = motion.matrix;
    motion.scale = std::hypot(a[0], a[3]);
    motion.rotationDegrees = std::atan2(a[3], a[0]) * 180 / std::numbers::pi;
    const double cx = reference.width / 2.0, cy = reference.height / 2.0;
    motion.shiftX = a[0] * cx + a[1] * cy + a[2] - cx;
    motion.shiftY = a[3] * cx + a[4] * cy + a[5] - cy;
    motion.inliers = inliers;
    return motion;
}

std::vector<MaskFit> checkMaskFit(const MaskSet& masks, const SceneMotion& motion, int width, int height,
                                  double tolerancePixels) {
    const auto& a = motion.matrix;
    std::vector<MaskFit> fits;
    for (const Mask& mask : masks.masks) {
        MaskFit fit;
        fit.name = mask.name;
        Mask moved{mask.name, {}};
        for (const Point& p : mask.polygon) {
            const double x = p.x * width, y = p.y * height;
            const double nx = a[0] * x + a[1] * y + a[2], ny = a[3] * x + a[4] * y + a[5];
            fit.maxMovePixels = std::max(fit.maxMovePixels, std::hypot(nx - x, ny - y));
            // What moved out of the frame needs no covering.
            moved.polygon.push_back({std::clamp(nx / width, 0.0, 1.0), std::clamp(ny / height, 0.0, 1.0)});
        }
        const cv::Mat wanted = maskImage(moved, width, height);
        const cv::Mat inForce = maskImage(mask, width, height);
        cv::Mat covered;
        cv::bitwise_and(wanted, inForce, covered);
        const int wantedPixels = cv::countNonZero(wanted);
        fit.coveredShare = wantedPixels == 0 ? 1.0 : static_cast<double>(cv::countNonZero(covered)) / wantedPixels;
        fit.fits = fit.maxMovePixels <= tolerancePixels;
        fits.push_back(std::move(fit));
    }
    return fits;
}

}  // namespace mimamori::masking

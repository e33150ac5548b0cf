// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Drift check: how far a camera's view moved between a reference still and a new one, and
// whether each privacy mask still covers what it was drawn over.
#pragma once

#include "mimamori/masking/mask.hpp"
#include "mimamori/masking/preview.hpp"

#include <array>
#include <string>
#include <vector>

namespace mimamori::masking {

// A similarity transform (shift, rotation, uniform scale) that maps a reference pixel
// position to where the same scene point lies in the new still.
struct SceneMotion {
    double shiftX = 0;           // pixels, of the frame's centre; + = right
    double shiftY = 0;           // pixels, of the frame's centre; + = down
    double rotationDegrees = 0;  // + = clockwise on screen (y points down)
    double scale = 1;
    int inliers = 0;             // feature matches that agree with the estimate
    // x' = m[0]*x + m[1]*y + m[2], y' = m[3]*x + m[4]*y + m[5], in pixels.
    std::array<double, 6> matrix = {1, 0, 0, 0, 1, 0};
};

// Estimates the motion from ORB features matched between the two stills (RANSAC). Throws
// PreviewError when their sizes differ or too few features match to say (another camera,
// a covered lens, a dark night frame).
[[nodiscard]] SceneMotion estimateSceneMotion(const BgrImage& reference, const BgrImage& still);

struct MaskFit {
    std::string name;
    double maxMovePixels = 0;  // the farthest any vertex of the mask moved with the scene
    // Of what the mask should now cover (its polygon moved with the scene, within the frame),
    // the share the mask in force still covers, 0..1, counted in masked pixels.
    double coveredShare = 1;
    bool fits = true;          // maxMovePixels <= the tolerance
};

// One entry per mask of `masks`, in file order, at the stills' size.
[[nodiscard]] std::vector<MaskFit> checkMaskFit(const MaskSet& masks, const SceneMotion& motion, int width, int height,
                                  double tolerancePixels);

}  // namespace mimamori::masking

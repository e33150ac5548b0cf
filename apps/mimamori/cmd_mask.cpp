// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// `mimamori mask validate|preview|show|import|check`: city staff write and check privacy mask
// files before use, and check that they still fit after the camera moved.
#include "cli.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/text.hpp"
#include "mimamori/masking/drift.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/masking/preview.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace mimamori::cli {
namespace {

using namespace mimamori::masking;

constexpr int kMaxDimension = 16384;

// Loads and validates FILE; on findings prints each one on stderr, prefixed with the file
// name, and returns nullopt (exit 1). An unreadable file throws FileError (one line, exit 1).
std::optional<MaskSet> loadOrReport(const std::string& file) {
    const std::string bytes = common::readFile(file);
    try {
        return parseMaskJson(bytes, file);
    } catch (const MaskFileError& e) {
        for (const Finding& f : e.findings()) fmt::print(stderr, "{}: {}\n", file, f.toString());
        return std::nullopt;
    }
}

// The number `text` spells, all of it and nothing else (and finite), or nullopt. The callers
// check the range and word their own refusal.
template <typename T>
std::optional<T> parseWhole(std::string_view text) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(value)) return std::nullopt;
    }
    return value;
}

int parseDimension(const Args& args, const std::string& name) {
    const std::string text = args.required(name);
    const auto value = parseWhole<int>(text);
    if (!value || *value < 1 || *value > kMaxDimension)
        throw UsageError(fmt::format("{} must be a whole number of pixels from 1 to {}, not '{}'", name,
                                     kMaxDimension, text));
    return *value;
}

double parseSeconds(const std::string& text) {
    const auto value = parseWhole<double>(text);
    if (!value || *value < 0)
        throw UsageError(fmt::format("--at must be a number of seconds (0 or more), not '{}'", text));
    return *value;
}

int runValidate(const Args& args) {
    args.expectPositionals(1, "FILE");
    const std::string file = args.positionals()[0];
    const auto set = loadOrReport(file);
    if (!set) return 1;
    fmt::print("{}: valid: camera '{}', {} mask{}, sha256 {}\n", file, set->camera, set->masks.size(),
               set->masks.size() == 1 ? "" : "s", set->sha256Hex);
    return 0;
}

int runShow(const Args& args) {
    args.expectPositionals(1, "FILE");
    const std::string file = args.positionals()[0];
    const int width = parseDimension(args, "--width");
    const int height = parseDimension(args, "--height");
    const auto set = loadOrReport(file);
    if (!set) return 1;
    const double pixels = static_cast<double>(width) * height;
    fmt::print("{}: camera '{}', {} mask{}, at {}x{}\n", file, set->camera, set->masks.size(),
               set->masks.size() == 1 ? "" : "s", width, height);
    for (const Mask& mask : set->masks) {
        const MaskSet single{set->camera, {mask}, {}};
        const double share = RasterMask(single, width, height, PixelFormat::I420).coverage();
        fmt::print("mask '{}': {} points, {:.0f} pixels masked ({:.2f}% of the frame)\n", mask.name,
                   mask.polygon.size(), share * pixels, share * 100);
        std::string points;
        for (const Point& p : mask.polygon) points += fmt::format(" ({:.1f}, {:.1f})", p.x * width, p.y * height);
        fmt::print("  polygon in pixels:{}\n", points);
    }
    const double total = RasterMask(*set, width, height, PixelFormat::I420).coverage();
    fmt::print("masked in total: {:.0f} of {:.0f} pixels ({:.2f}% of the frame; overlaps counted once)\n",
               total * pixels, pixels, total * 100);
    return 0;
}

int runPreview(const Args& args) {
    args.expectPositionals(1, "FILE");
    const std::string file = args.positionals()[0];
    const std::string input = args.required("--input");
    const std::string out = args.required("--out");
    const double at = args.option("--at") ? parseSeconds(*args.option("--at")) : 0.0;
    if (std::filesystem::path(out).extension() != ".png")
        throw UsageError(fmt::format("--out must name a .png file, not '{}'", out));
    const auto set = loadOrReport(file);
    if (!set) return 1;
    const BgrImage frame = readFrame(input, at);
    const BgrImage preview = renderPreview(*set, frame, args.flag("--outline"));
    writePng(preview, out);
    const double share = RasterMask(*set, frame.width, frame.height, PixelFormat::I420).coverage();
    fmt::print("wrote {}: {}x{} frame{}, {} mask{}, {:.2f}% of the frame masked{}\n", out, frame.width,
               frame.height, args.option("--at") ? fmt::format(" at {} s", at) : "", set->masks.size(),
               set->masks.size() == 1 ? "" : "s", share * 100, args.flag("--outline") ? ", outlines drawn" : "");
    return 0;
}

// "1920x1080" -> {1920, 1080}.
std::pair<int, int> parseFrameSize(const std::string& text) {
    const auto x = text.find('x');
    const auto w = x == std::string::npos ? std::nullopt : parseWhole<int>(std::string_view(text).substr(0, x));
    const auto h = x == std::string::npos ? std::nullopt : parseWhole<int>(std::string_view(text).substr(x + 1));
    if (!w || !h || *w < 1 || *h < 1 || *w > kMaxDimension || *h > kMaxDimension)
        throw UsageError(fmt::format("--pixels must be WIDTHxHEIGHT in pixels (1 to {} each), e.g. 1920x1080, not '{}'",
                                     kMaxDimension, common::escapeControls(text)));
    return {*w, *h};
}

int runImport(const Args& args) {
    args.expectPositionals(1, "FILE");
    const std::string file = args.positionals()[0];
    const auto [width, height] = parseFrameSize(args.required("--pixels"));
    const std::string out = args.required("--out");
    std::string converted;
    try {
        converted = maskJsonFromPixels(common::readFile(file), file, width, height);
    } catch (const MaskFileError& e) {
        for (const Finding& f : e.findings()) fmt::print(stderr, "{}: {}\n", file, f.toString());
        return 1;
    }
    using std::filesystem::perms;
    common::writeFileAtomic(out, converted,
                            perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
    const MaskSet set = parseMaskJson(converted, out);
    fmt::print("wrote {}: camera '{}', {} mask{} converted from {}x{} pixels, sha256 {}\n", out, set.camera,
               set.masks.size(), set.masks.size() == 1 ? "" : "s", width, height, set.sha256Hex);
    return 0;
}

double parseTolerance(const std::string& text) {
    const auto value = parseWhole<double>(text);
    if (!value || *value < 0 || *value > 1000)
        throw UsageError(fmt::format("--tolerance must be a number of pixels from 0 to 1000, not '{}'",
                                     common::escapeControls(text)));
    return *value;
}

int runCheck(const Args& args) {
    args.expectPositionals(0, "");
    const std::string stillFile = args.required("--still");
    const std::string referenceFile = args.required("--reference");
    const std::string maskFile = args.required("--masks");
    const double tolerance = args.option("--tolerance") ? parseTolerance(*args.option("--tolerance")) : 4.0;
    const auto set = loadOrReport(maskFile);
    if (!set) return 1;
    const BgrImage reference = readFrame(referenceFile, 0);
    const BgrImage still = readFrame(stillFile, 0);
    const SceneMotion motion = estimateSceneMotion(reference, still);
    fmt::print("scene moved: shift {:+.1f}, {:+.1f} px, rotation {:+.2f} degrees, scale {:.4f} ({} matching features, "
               "{}x{})\n",
               motion.shiftX, motion.shiftY, motion.rotationDegrees, motion.scale, motion.inliers, still.width,
               still.height);
    int misfits = 0;
    for (const MaskFit& fit : checkMaskFit(*set, motion, still.width, still.height, tolerance)) {
        fmt::print("mask '{}': {}: moved up to {:.1f} px, still covers {:.1f}% of where it should be\n", fit.name,
                   fit.fits ? "fits" : "NO LONGER FITS", fit.maxMovePixels, fit.coveredShare * 100);
        misfits += fit.fits ? 0 : 1;
    }
    if (misfits > 0) {
        fmt::print("{} of {} mask{} moved by more than {} px: redraw them on the new still\n",
                   misfits, set->masks.size(), set->masks.size() == 1 ? "" : "s", tolerance);
        return 1;
    }
    fmt::print("every mask fits within {} px\n", tolerance);
    return 0;
}

const Registrar validateCommand(Command{
    "mask", "validate", "check a privacy mask file and list every problem in it",
    "usage: mimamori mask validate FILE\n"
    "\n"
    "Checks the mask file FILE (JSON, see docs/mask-file.md) and reports every problem,\n"
    "one per line on stderr, each prefixed with FILE and naming the mask and point:\n"
    "malformed JSON (with line and column), an unsupported version, unknown or missing keys,\n"
    "duplicate keys or mask names, polygons with fewer than 3 points, coordinates that are\n"
    "not numbers or lie outside 0..1, self-intersecting polygons and polygons of zero area.\n"
    "Masks and points are counted from 0. A file with an empty mask list is valid.\n"
    "\n"
    "On success prints the camera, the number of masks and the file's SHA-256 (the value\n"
    "the recorder writes into its manifests).\n"
    "\n"
    "exit status: 0 valid, 1 invalid or unreadable, 2 bad usage\n",
    {}, {}, runValidate});

const Registrar previewCommand(Command{
    "mask", "preview", "write a PNG of one frame masked exactly as it will be recorded",
    "usage: mimamori mask preview FILE --input IMAGE_OR_VIDEO [--at SECONDS] --out PNG [--outline]\n"
    "\n"
    "Takes one frame of IMAGE_OR_VIDEO (an image such as PNG or JPEG, or a video file),\n"
    "masks it with the polygons of the mask file FILE exactly as the recorder does (the\n"
    "frame is converted to I420, every pixel a polygon touches is blacked out in all planes,\n"
    "then converted back) and writes the result to PNG.\n"
    "\n"
    "  --input IMAGE_OR_VIDEO  the picture to mask, e.g. a snapshot of the camera\n"
    "  --at SECONDS            for a video, the frame at this time (default 0, the first)\n"
    "  --out PNG               where to write the preview (replaced atomically)\n"
    "  --outline               also draw each polygon's edge and name in yellow, to check\n"
    "                          placement; such a preview is a check aid, not a recording\n"
    "\n"
    "exit status: 0 written, 1 invalid mask file or unreadable input, 2 bad usage\n",
    {"--input", "--at", "--out"}, {"--outline"}, runPreview});

const Registrar showCommand(Command{
    "mask", "show", "list each mask polygon in pixels and the share of the frame masked",
    "usage: mimamori mask show FILE --width W --height H\n"
    "\n"
    "Prints each polygon of the mask file FILE in pixel coordinates of a W x H frame (pixel\n"
    "edges: 0 is the left/top edge of the frame, W/H the right/bottom edge), how many pixels\n"
    "each mask blacks out, and the share of the frame masked in total. Pixels are counted\n"
    "as the recorder masks them: every pixel a polygon touches.\n"
    "\n"
    "  --width W    frame width in pixels, e.g. 1920\n"
    "  --height H   frame height in pixels, e.g. 1080\n"
    "\n"
    "exit status: 0 shown, 1 invalid or unreadable mask file, 2 bad usage\n",
    {"--width", "--height"}, {}, runShow});

const Registrar importCommand(Command{
    "mask", "import", "convert a mask file drawn in pixel coordinates into fractions of the frame",
    "usage: mimamori mask import FILE --pixels WIDTHxHEIGHT --out OUT\n"
    "\n"
    "Reads the mask file FILE whose points are pixel coordinates of a WIDTH x HEIGHT frame\n"
    "(pixel edges: 0 is the left/top edge, WIDTH/HEIGHT the right/bottom edge, as an image\n"
    "editor or `mask show` gives them), divides each x by WIDTH and each y by HEIGHT, and\n"
    "writes the result to OUT (replaced atomically) after validating it as `mask validate`\n"
    "does. Everything else in the file is kept as it is.\n"
    "\n"
    "  --pixels WIDTHxHEIGHT  the frame size the coordinates refer to, e.g. 1920x1080\n"
    "  --out OUT              where to write the converted mask file\n"
    "\n"
    "exit status: 0 written, 1 a point outside the frame or an invalid result (nothing\n"
    "written), 2 bad usage\n",
    {"--pixels", "--out"}, {}, runImport});

const Registrar checkCommand(Command{
    "mask", "check", "measure how far the camera's view moved and whether the masks still fit",
    "usage: mimamori mask check --still NEW.png --reference OLD.png --masks FILE [--tolerance PX]\n"
    "\n"
    "Compares a new still of the camera (e.g. a review still) with the reference still the\n"
    "masks in FILE were drawn on. Matches image features between the two (OpenCV ORB and a\n"
    "RANSAC similarity transform) and prints how far the scene moved (shift of the frame's\n"
    "centre, rotation, scale), then for each mask how far its corners moved with the scene\n"
    "and which share of where it should now be it still covers.\n"
    "\n"
    "  --still NEW.png        the camera's view now\n"
    "  --reference OLD.png    the view the masks were drawn on (same size)\n"
    "  --masks FILE           the mask file in force\n"
    "  --tolerance PX         how far a mask corner may move before the mask no longer fits\n"
    "                         (default 4 pixels)\n"
    "\n"
    "exit status: 0 every mask fits, 1 a mask no longer fits (or the stills cannot be\n"
    "compared, or the mask file is invalid), 2 bad usage\n",
    {"--still", "--reference", "--masks", "--tolerance"}, {}, runCheck});

}  // namespace
}  // namespace mimamori::cli

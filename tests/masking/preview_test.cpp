// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Integration tests of `mimamori mask ...` through the real binary on the sample street clip.
#include "mimamori/masking/mask.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace mimamori::masking;
namespace fs = std::filesystem;

namespace {

const std::string kCli = MIMAMORI_BINARY_DIR "/apps/mimamori";
const std::string kClip = MIMAMORI_SOURCE_DIR "/../shared/data/street-vtest.avi";
const std::string kDemo = MIMAMORI_SOURCE_DIR "/packaging/demo-data";

// The windows of the brick building in the clip (768x576: x 323..577, y 29..86).
const char* kWindowsJson = R"({"version": 1, "camera": "kakogawa-test", "masks": [
  {"name": "building windows", "polygon": [[0.4206, 0.0503], [0.7513, 0.0503], [0.7513, 0.1493], [0.4206, 0.1493]]}
]})";

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / fmt::format("mimamori-preview-test-{}", ::getpid());
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

struct Result {
    int status = -1;
    std::string out, err;
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs the real `mimamori` binary; arguments are quoted by the caller where needed.
Result cli(const TempDir& dir, const std::string& args) {
    const fs::path out = dir.path / "stdout", err = dir.path / "stderr";
    const std::string command = fmt::format("'{}' {} >'{}' 2>'{}'", kCli, args, out.string(), err.string());
    const int raw = std::system(command.c_str());
    Result r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string line; std::getline(ss, line);) out.push_back(line);
    return out;
}

void writeText(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// The clip's frame `index`, decoded one frame after another (no seeking involved).
cv::Mat decodeFrame(int index) {
    cv::VideoCapture capture(kClip);
    REQUIRE(capture.isOpened());
    cv::Mat frame;
    for (int i = 0; i <= index; ++i) REQUIRE(capture.read(frame));
    return frame.clone();
}

// The frame after the recorder's I420 conversion without any mask: what unmasked pixels
// of a preview must equal exactly.
cv::Mat throughI420(const cv::Mat& bgr) {
    cv::Mat i420, back;
    cv::cvtColor(bgr, i420, cv::COLOR_BGR2YUV_I420);
    cv::cvtColor(i420, back, cv::COLOR_YUV2BGR_I420);
    return back;
}

}  // namespace

TEST_CASE("preview of the street clip: the building's windows are black, the rest is the decoded frame") {
    TempDir dir;
    writeText(dir.path / "masks.json", kWindowsJson);
    const fs::path png = dir.path / "preview.png";
    const Result r = cli(dir, fmt::format("mask preview '{}' --input '{}' --at 2 --out '{}'",
                                          (dir.path / "masks.json").string(), kClip, png.string()));
    CAPTURE(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("768x576 frame at 2 s") != std::string::npos);

    const cv::Mat preview = cv::imread(png.string(), cv::IMREAD_UNCHANGED);
    REQUIRE(preview.type() == CV_8UC3);
    REQUIRE(preview.cols == 768);
    REQUIRE(preview.rows == 576);

    // Which luma pixels and which chroma samples the recorder masks, from the library.
    const MaskSet set = parseMaskJson(kWindowsJson, "test");
    const RasterMask rm(set, 768, 576, PixelFormat::I420);
    cv::Mat lumaMasked(576, 768, CV_8U, cv::Scalar(0)), chromaTouched(576, 768, CV_8U, cv::Scalar(0));
    for (const Span& s : rm.spans(0)) lumaMasked.row(s.y).colRange(s.x0, s.x1).setTo(255);
    for (const Span& s : rm.spans(1))
        chromaTouched.rowRange(2 * s.y, 2 * s.y + 2).colRange(2 * s.x0, 2 * s.x1).setTo(255);
    // The mask covers the windows: about 250 x 57 pixels.
    CHECK(cv::countNonZero(lumaMasked) > 14000);
    CHECK(cv::countNonZero(lumaMasked) < 15500);

    // Masked area: black in the PNG.
    std::vector<cv::Mat> channels;
    cv::split(preview, channels);
    for (const auto& c : channels) {
        cv::Mat inside;
        c.copyTo(inside, lumaMasked);
        CHECK(cv::countNonZero(inside) == 0);
    }

    // The frame at 2 s is frame 20 (10 fps); seeking must land on exactly that frame.
    const cv::Mat decoded = decodeFrame(20);
    const cv::Mat expected = throughI420(decoded);
    cv::Mat outside;
    cv::bitwise_not(chromaTouched, outside);
    cv::Mat diff;
    cv::absdiff(preview, expected, diff);
    cv::Mat diffGray;
    cv::cvtColor(diff, diffGray, cv::COLOR_BGR2GRAY);
    diffGray.setTo(0, chromaTouched);
    CHECK(cv::countNonZero(diffGray) == 0);  // bit for bit outside every masked sample

    // And the unmasked area is the decoded picture itself, up to chroma subsampling.
    cv::Mat error;
    cv::absdiff(preview, decoded, error);
    const cv::Scalar meanError = cv::mean(error, outside);
    CHECK(meanError[0] + meanError[1] + meanError[2] < 9.0);
    // The windows were not black before masking (so the check above means something).
    CHECK(cv::mean(decoded, lumaMasked)[2] > 20);
}

TEST_CASE("preview --outline draws the polygon's edge and leaves pixels far from it as without") {
    TempDir dir;
    writeText(dir.path / "masks.json", kWindowsJson);
    const auto masks = (dir.path / "masks.json").string();
    REQUIRE(cli(dir, fmt::format("mask preview '{}' --input '{}' --out '{}'", masks, kClip,
                                 (dir.path / "plain.png").string())).status == 0);
    REQUIRE(cli(dir, fmt::format("mask preview '{}' --input '{}' --out '{}' --outline", masks, kClip,
                                 (dir.path / "outline.png").string())).status == 0);
    const cv::Mat plain = cv::imread((dir.path / "plain.png").string());
    const cv::Mat outline = cv::imread((dir.path / "outline.png").string());
    REQUIRE(plain.size() == outline.size());
    // On the polygon's top edge (y = 28.97) the outline's yellow replaces the brick.
    bool yellow = false;
    for (int y = 26; y <= 31; ++y) {
        const cv::Vec3b px = outline.at<cv::Vec3b>(y, 450);
        yellow = yellow || (px[2] > 200 && px[1] > 180 && px[0] < 80);
    }
    CHECK(yellow);
    // Far from the polygon (the lower half of the frame) nothing changes.
    cv::Mat diff;
    cv::absdiff(plain.rowRange(200, 576), outline.rowRange(200, 576), diff);
    CHECK(cv::countNonZero(diff.reshape(1)) == 0);
}

TEST_CASE("the bundled demo data is valid and previews without ../shared") {
    TempDir dir;
    const Result v = cli(dir, fmt::format("mask validate '{}/masks.json'", kDemo));
    CAPTURE(v.err);
    CHECK(v.status == 0);
    CHECK(v.out.find("camera 'kakogawa-demo', 3 masks") != std::string::npos);
    const Result p = cli(dir, fmt::format("mask preview '{0}/masks.json' --input '{0}/street-frame.png' --out '{1}'",
                                          kDemo, (dir.path / "demo.png").string()));
    CAPTURE(p.err);
    CHECK(p.status == 0);
    CHECK(cv::imread((dir.path / "demo.png").string()).cols == 768);
}

TEST_CASE("mask validate: exit 1 with every finding on stderr prefixed by the file; exit 2 on bad usage") {
    TempDir dir;
    const auto bad = (dir.path / "bad.json").string();
    writeText(bad, R"({"version": 1, "camera": "c", "masks": [
        {"name": "a", "polygon": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]},
        {"name": "a", "polygon": [[0.1, 0.1], [0.5, 0.1]], "colour": 1}]})");
    const Result r = cli(dir, fmt::format("mask validate '{}'", bad));
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    const std::vector<std::string> expected = {
        bad + ": mask 'a' point 1: x is 1.5, outside 0..1",
        bad + ": mask 'a': unknown key 'colour' (allowed: name, polygon)",
        bad + ": mask 'a': duplicate name: masks[0] is also called 'a'",
        bad + ": mask 'a': polygon has 2 points, needs at least 3",
    };
    CHECK(lines(r.err) == expected);

    const Result missing = cli(dir, fmt::format("mask validate '{}'", (dir.path / "absent.json").string()));
    CHECK(missing.status == 1);
    CHECK(lines(missing.err).size() == 1);

    CHECK(cli(dir, "mask validate").status == 2);
    CHECK(cli(dir, "mask validate a.json b.json").status == 2);
    CHECK(cli(dir, "mask show a.json --width 1920").status == 2);
    CHECK(cli(dir, "mask show a.json --width -5 --height 10").status == 2);
    CHECK(cli(dir, "mask preview a.json --input x.png --out y.jpg").status == 2);
    CHECK(cli(dir, "mask preview a.json --input x.png --out y.png --at soon").status == 2);
    const Result help = cli(dir, "mask preview --help");
    CHECK(help.status == 0);
    CHECK(help.out.rfind("usage: mimamori mask preview FILE --input IMAGE_OR_VIDEO", 0) == 0);
}

TEST_CASE("mask show lists each polygon in pixels and the share of the frame masked") {
    TempDir dir;
    writeText(dir.path / "m.json", R"({"version": 1, "camera": "c", "masks": [
        {"name": "left half", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]},
        {"name": "middle", "polygon": [[0.25, 0], [0.75, 0], [0.75, 1], [0.25, 1]]}]})");
    const Result r = cli(dir, fmt::format("mask show '{}' --width 1920 --height 1080", (dir.path / "m.json").string()));
    CAPTURE(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("mask 'left half': 4 points, 1036800 pixels masked (50.00% of the frame)") != std::string::npos);
    CHECK(r.out.find("(960.0, 0.0) (960.0, 1080.0)") != std::string::npos);
    CHECK(r.out.find("masked in total: 1555200 of 2073600 pixels (75.00% of the frame") != std::string::npos);
}

TEST_CASE("preview --outline draws Japanese mask names as Japanese, not as '?' glyphs") {
    TempDir dir;
    // The same polygon under three names; only the label differs between the three previews.
    const auto render = [&](const std::string& name, const std::string& file) {
        writeText(dir.path / "masks.json",
                  fmt::format(R"({{"version": 1, "camera": "kakogawa-test", "masks": [
                     {{"name": "{}", "polygon": [[0.4206, 0.0503], [0.7513, 0.0503], [0.7513, 0.1493], [0.4206, 0.1493]]}}]}})",
                              name));
        const Result r = cli(dir, fmt::format("mask preview '{}' --input '{}' --out '{}' --outline",
                                              (dir.path / "masks.json").string(), kClip, (dir.path / file).string()));
        CAPTURE(r.err);
        REQUIRE(r.status == 0);
        return cv::imread((dir.path / file).string());
    };
    const cv::Mat japanese = render("東側の窓", "ja.png");
    const cv::Mat perCharacter = render("????", "q4.png");           // one '?' per character
    const cv::Mat perByte = render("????????????", "q12.png");      // one '?' per UTF-8 byte
    // The label sits inside the polygon's top-left corner (x 323.., y 29..86).
    const cv::Rect label(323, 29, 200, 57);
    const auto differing = [&](const cv::Mat& other) {
        cv::Mat diff;
        cv::absdiff(japanese(label), other(label), diff);
        return cv::countNonZero(diff.reshape(1));
    };
    CHECK(differing(perCharacter) > 100);
    CHECK(differing(perByte) > 100);
    // And the Japanese label is drawn at all: yellow text pixels in the black mask.
    int yellow = 0;
    for (int y = label.y; y < label.y + label.height; ++y)
        for (int x = label.x; x < label.x + label.width; ++x) {
            const cv::Vec3b px = japanese.at<cv::Vec3b>(y, x);
            yellow += px[2] > 200 && px[1] > 180 && px[0] < 80 ? 1 : 0;
        }
    CHECK(yellow > 100);
}

TEST_CASE("mask import --pixels converts a pixel file that mask validate hinted at; a point outside writes nothing") {
    TempDir dir;
    const fs::path pixels = dir.path / "pixels.json", out = dir.path / "masks.json";
    writeText(pixels, R"({"version": 1, "camera": "kakogawa-test", "masks": [
        {"name": "building windows", "polygon": [[323, 29], [577, 29], [577, 86], [323, 86]]}]})");
    const Result hinted = cli(dir, fmt::format("mask validate '{}'", pixels.string()));
    CHECK(hinted.status == 1);
    CHECK(hinted.err.find("look like pixel coordinates (x up to 577, y up to 86)") != std::string::npos);

    const Result r = cli(dir, fmt::format("mask import '{}' --pixels 768x576 --out '{}'", pixels.string(), out.string()));
    CAPTURE(r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("1 mask converted from 768x576 pixels") != std::string::npos);
    const MaskSet set = parseMaskJson(slurp(out), "converted");
    REQUIRE(set.masks.size() == 1);
    CHECK(set.masks[0].polygon[1].x == 577.0 / 768);
    CHECK(set.masks[0].polygon[2].y == 86.0 / 576);
    CHECK(cli(dir, fmt::format("mask validate '{}'", out.string())).status == 0);

    const fs::path refused = dir.path / "refused.json";
    const Result outside = cli(dir, fmt::format("mask import '{}' --pixels 320x240 --out '{}'", pixels.string(),
                                                refused.string()));
    CHECK(outside.status == 1);
    CHECK(outside.err.find("point 1: x is 577, outside the frame's 0..320 pixels") != std::string::npos);
    CHECK_FALSE(fs::exists(refused));
    CHECK(cli(dir, fmt::format("mask import '{}' --pixels 768 --out '{}'", pixels.string(), refused.string())).status == 2);
}

TEST_CASE("mask check measures a known shift and rotation of the street scene and says which masks no longer fit") {
    TempDir dir;
    writeText(dir.path / "masks.json", kWindowsJson);
    const cv::Mat reference = decodeFrame(0);
    cv::imwrite((dir.path / "reference.png").string(), reference);
    const auto stillMoved = [&](const cv::Mat& matrix, const std::string& file) {
        cv::Mat moved;
        cv::warpAffine(reference, moved, matrix, reference.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
        cv::imwrite((dir.path / file).string(), moved);
        return cli(dir, fmt::format("mask check --still '{}' --reference '{}' --masks '{}'", (dir.path / file).string(),
                                    (dir.path / "reference.png").string(), (dir.path / "masks.json").string()));
    };
    // "scene moved: shift +12.0, -7.0 px, rotation ..." -> {12, -7, rotation}
    const auto measured = [](const std::string& out) {
        double dx = 1e9, dy = 1e9, rotation = 1e9;
        REQUIRE(std::sscanf(out.c_str(), "scene moved: shift %lf, %lf px, rotation %lf", &dx, &dy, &rotation) == 3);
        return std::array<double, 3>{dx, dy, rotation};
    };

    const Result same = stillMoved((cv::Mat_<double>(2, 3) << 1, 0, 0, 0, 1, 0), "same.png");
    CAPTURE(same.err);
    REQUIRE(same.status == 0);
    CHECK(std::abs(measured(same.out)[0]) < 0.5);
    CHECK(same.out.find("every mask fits within 4 px") != std::string::npos);

    const Result small = stillMoved((cv::Mat_<double>(2, 3) << 1, 0, 2, 0, 1, -1), "small.png");
    CHECK(small.status == 0);  // 2.2 px: within the default tolerance of 4

    const Result shifted = stillMoved((cv::Mat_<double>(2, 3) << 1, 0, 12, 0, 1, -7), "shifted.png");
    CHECK(shifted.status == 1);
    const auto shift = measured(shifted.out);
    CHECK(std::abs(shift[0] - 12) <= 2);
    CHECK(std::abs(shift[1] + 7) <= 2);
    CHECK(shifted.out.find("mask 'building windows': NO LONGER FITS") != std::string::npos);

    const Result turned = stillMoved(cv::getRotationMatrix2D({384, 288}, -2.0, 1.0), "turned.png");  // 2 degrees clockwise
    CHECK(turned.status == 1);
    CHECK(std::abs(measured(turned.out)[2] - 2.0) < 0.2);

    // A still of something else cannot be compared: exit 1 with the reason, not a guess.
    cv::Mat blank(reference.size(), reference.type(), cv::Scalar(40, 40, 40));
    cv::imwrite((dir.path / "blank.png").string(), blank);
    const Result unrelated = cli(dir, fmt::format("mask check --still '{}' --reference '{}' --masks '{}'",
                                                  (dir.path / "blank.png").string(), (dir.path / "reference.png").string(),
                                                  (dir.path / "masks.json").string()));
    CHECK(unrelated.status == 1);
    CHECK(unrelated.err.find("too few features") != std::string::npos);
}

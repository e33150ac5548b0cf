// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Tests of the mask file: every invalid case has its own message, all findings are reported.
#include "mimamori/masking/mask.hpp"

#include "mimamori/common/file.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace mimamori::masking;

namespace {

std::vector<std::string> messages(std::string_view json) {
    std::vector<std::string> out;
    for (const auto& f : validateMaskJson(json)) out.push_back(f.toString());
    return out;
}

// A file around one mask object, so each case shows only what it is about.
std::string withMask(const std::string& mask) {
    return R"({"version": 1, "camera": "kakogawa-0001", "masks": [)" + mask + "]}";
}

}  // namespace

TEST_CASE("the issue's worked example is valid and parses to fractions") {
    const std::string json =
        R"({"version": 1, "camera": "kakogawa-0001", "masks": [{"name": "house 12 windows", )"
        R"("polygon": [[0.42, 0.07], [0.75, 0.07], [0.75, 0.19], [0.42, 0.19]]}]})";
    CHECK(validateMaskJson(json).empty());
    const MaskSet set = parseMaskJson(json, "example.json");
    CHECK(set.camera == "kakogawa-0001");
    REQUIRE(set.masks.size() == 1);
    CHECK(set.masks[0].name == "house 12 windows");
    REQUIRE(set.masks[0].polygon.size() == 4);
    CHECK(set.masks[0].polygon[2].x == 0.75);
    CHECK(set.masks[0].polygon[2].y == 0.19);
}

TEST_CASE("an empty mask list is valid: nothing to hide") {
    const MaskSet set = parseMaskJson(R"({"version": 1, "camera": "c", "masks": []})", "empty.json");
    CHECK(set.masks.empty());
    CHECK(set.camera == "c");
}

TEST_CASE("the digest is SHA-256 of the exact file bytes, whitespace included") {
    // Expected values from sha256sum(1) of the same bytes.
    CHECK(parseMaskJson(R"({"version": 1, "camera": "c", "masks": []})", "a").sha256Hex ==
          "3743de8b1fc4afd04d54d295a5c6079b622105ea8c5847b62561609a300b955e");
    CHECK(parseMaskJson(R"({"version": 1, "camera": "c", "masks": []} )", "a").sha256Hex ==
          "6b9c13332b6a6715606c074684b40523f50535a26f95b46fac61170038ce9084");
}

TEST_CASE("each invalid case gives its own message naming mask and point") {
    struct Case {
        const char* what;
        std::string json;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {"malformed JSON", "{\"version\": 1,\n \"camera\": \"c\",\n \"masks\": [}",
         "malformed JSON at line 3, column 12: "},
        {"not an object", "[1, 2]", "the file must be one JSON object"},
        {"unsupported version", R"({"version": 2, "camera": "c", "masks": []})",
         "unsupported version 2 (this program reads version 1)"},
        {"version as text", R"({"version": "1", "camera": "c", "masks": []})", "unsupported version \"1\""},
        {"missing version", R"({"camera": "c", "masks": []})", "missing key 'version'"},
        {"missing camera", R"({"version": 1, "masks": []})", "missing key 'camera'"},
        {"camera not text", R"({"version": 1, "camera": 7, "masks": []})", "camera is 7, not a string"},
        {"empty camera", R"({"version": 1, "camera": "", "masks": []})", "camera must not be empty"},
        {"missing masks", R"({"version": 1, "camera": "c"})", "missing key 'masks'"},
        {"masks not a list", R"({"version": 1, "camera": "c", "masks": {}})", "masks is an object, not a list of masks"},
        {"unknown top-level key", R"({"version": 1, "camera": "c", "masks": [], "mask": []})",
         "unknown key 'mask' (allowed: version, camera, masks)"},
        {"duplicate top-level key", R"({"version": 1, "camera": "c", "masks": [], "masks": []})",
         "key 'masks' appears twice (only one would be used)"},
        {"mask not an object", withMask("[0.1, 0.2]"), "masks[0]: is a list, not an object"},
        {"unknown mask key", withMask(R"({"name": "a", "polygon": [[0,0],[1,0],[1,1]], "colour": "red"})"),
         "mask 'a': unknown key 'colour' (allowed: name, polygon)"},
        {"typo drops no mask", withMask(R"({"name": "a", "polgon": [[0,0],[1,0],[1,1]]})"),
         "mask 'a': unknown key 'polgon' (allowed: name, polygon)"},
        {"duplicate mask key",
         withMask(R"({"name": "a", "polygon": [[0,0],[1,0],[1,1]], "polygon": [[0,0],[1,0],[1,1]]})"),
         "mask 'a': key 'polygon' appears twice (only one would be used)"},
        {"missing name", withMask(R"({"polygon": [[0,0],[1,0],[1,1]]})"), "masks[0]: missing key 'name'"},
        {"name not text", withMask(R"({"name": 5, "polygon": [[0,0],[1,0],[1,1]]})"), "masks[0]: name is 5, not a string"},
        {"empty name", withMask(R"({"name": "", "polygon": [[0,0],[1,0],[1,1]]})"), "masks[0]: name must not be empty"},
        {"missing polygon", withMask(R"({"name": "a"})"), "mask 'a': missing key 'polygon'"},
        {"polygon not a list", withMask(R"({"name": "a", "polygon": "square"})"),
         "mask 'a': polygon is a string, not a list of [x, y] points"},
        {"fewer than 3 points", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.5,0.5]]})"),
         "mask 'a': polygon has 2 points, needs at least 3"},
        {"point not a pair", withMask(R"({"name": "a", "polygon": [[0.1],[0.5,0.5],[0.5,0.1]]})"),
         "mask 'a' point 0: is [0.1], not [x, y] (two numbers)"},
        {"x outside 0..1", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[1.2,0.5],[0.5,0.9]]})"),
         "mask 'a' point 1: x is 1.2, outside 0..1"},
        {"negative y", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.2,0.5],[0.5,-0.25]]})"),
         "mask 'a' point 2: y is -0.25, outside 0..1"},
        {"coordinate not a number", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.2,0.5],[0.5,"0.9"]]})"),
         "mask 'a' point 2: y is \"0.9\", not a number"},
        {"coordinate null", withMask(R"({"name": "a", "polygon": [[null,0.1],[0.2,0.5],[0.5,0.9]]})"),
         "mask 'a' point 0: x is null, not a number"},
        {"self-intersecting (bow tie)", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.5,0.5],[0.5,0.1],[0.1,0.6]]})"),
         "mask 'a' point 0: self-intersecting: edge 0-1 meets edge 2-3"},
        {"self-intersecting (vertex on an edge)",
         withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.9,0.1],[0.9,0.9],[0.5,0.1],[0.1,0.9]]})"),
         "self-intersecting: edge"},
        {"spike folding back", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.9,0.1],[0.5,0.1],[0.5,0.5]]})"),
         "mask 'a' point 0: self-intersecting: edge 0-1 folds back onto edge 1-2"},
        {"zero area", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.2,0.2],[0.3,0.3]]})"),
         "mask 'a': zero area: all points lie on one line"},
        {"vanishingly small", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.1000001,0.1],[0.1,0.1000001]]})"),
         "mask 'a': zero area: it encloses less than 1e-12 of the frame"},
        {"one point three times", withMask(R"({"name": "a", "polygon": [[0.5,0.5],[0.5,0.5],[0.5,0.5]]})"),
         "mask 'a': zero area: fewer than 3 distinct points"},
        {"trailing comma", "{\"version\": 1, \"camera\": \"c\", \"masks\": [1,]}",
         "malformed JSON at line 1, column 43: unexpected ']'"},
        {"number beyond a double", R"({"version": 1, "camera": "c", "masks": [], "x": 1e999})",
         "malformed JSON: number overflow parsing '1e999'"},
        {"repeated point", withMask(R"({"name": "a", "polygon": [[0.1,0.1],[0.1,0.1],[0.5,0.1],[0.5,0.5]]})"),
         "mask 'a' point 1: repeats point 0 (remove one of them)"},
        {"duplicate names",
         withMask(R"({"name": "a", "polygon": [[0,0],[1,0],[1,1]]}, {"name": "a", "polygon": [[0,0],[0,1],[1,1]]})"),
         "mask 'a': duplicate name: masks[0] is also called 'a'"},
    };
    for (const auto& c : cases) {
        CAPTURE(std::string(c.what));
        const auto found = messages(c.json);
        REQUIRE_FALSE(found.empty());
        bool matched = false;
        for (const auto& m : found) matched = matched || m.find(c.expected) != std::string::npos;
        CAPTURE(found.front());
        CHECK(matched);
    }
}

TEST_CASE("every problem in a file is reported, in file order, not just the first") {
    const std::string json = R"({"version": 3, "camera": "c", "extra": 1, "masks": [
        {"name": "windows", "polygon": [[0.1, 0.1], [1.5, 0.1], [0.5, "x"]]},
        {"name": "door", "polygon": [[0.1, 0.1], [0.2, 0.2]]},
        {"name": "windows", "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]], "nmae": "typo"}
    ]})";
    const auto found = messages(json);
    const std::vector<std::string> expected = {
        "unknown key 'extra' (allowed: version, camera, masks)",
        "unsupported version 3 (this program reads version 1)",
        "mask 'windows' point 1: x is 1.5, outside 0..1",
        "mask 'windows' point 2: y is \"x\", not a number",
        "mask 'door': polygon has 2 points, needs at least 3",
        "mask 'windows': unknown key 'nmae' (allowed: name, polygon)",
        "mask 'windows': duplicate name: masks[0] is also called 'windows'",
    };
    CHECK(found == expected);
}

TEST_CASE("a concave polygon and a 200-point star are valid") {
    CHECK(messages(withMask(R"({"name": "L", "polygon": [[0.1,0.1],[0.3,0.1],[0.3,0.4],[0.6,0.4],[0.6,0.6],[0.1,0.6]]})"))
              .empty());
    std::string star = R"({"name": "star", "polygon": [)";
    for (int i = 0; i < 200; ++i) {
        const double a = i * 2 * 3.14159265358979 / 200, r = i % 2 ? 0.2 : 0.45;
        star += fmt::format("{}[{},{}]", i ? "," : "", 0.5 + r * std::cos(a), 0.5 + r * std::sin(a));
    }
    star += "]}";
    CHECK(messages(withMask(star)).empty());
}

TEST_CASE("an invalid file never yields a mask set: parse throws with every finding") {
    const std::string json = withMask(R"({"name": "a", "polygon": [[0.1,0.1],[2,0.1],[0.5,0.5]]})");
    try {
        (void)parseMaskJson(json, "cam.json");
        FAIL("parseMaskJson accepted an invalid file");
    } catch (const MaskFileError& e) {
        CHECK(e.source() == "cam.json");
        REQUIRE(e.findings().size() == 1);
        CHECK(e.findings()[0].mask == "a");
        CHECK(e.findings()[0].pointIndex == 1);
        CHECK(std::string(e.what()) == "cam.json: invalid mask file: mask 'a' point 1: x is 2, outside 0..1");
    }
}

TEST_CASE("loading a missing file throws FileError, loading a good one hashes its bytes") {
    const auto dir = std::filesystem::temp_directory_path() / "mimamori-mask-file-test";
    std::filesystem::create_directories(dir);
    CHECK_THROWS_AS(loadMaskFile(dir / "absent.json"), mimamori::common::FileError);
    const std::string json = R"({"version": 1, "camera": "c", "masks": []})";
    std::ofstream(dir / "m.json", std::ios::binary) << json;
    CHECK(loadMaskFile(dir / "m.json").sha256Hex == parseMaskJson(json, "x").sha256Hex);
    std::filesystem::remove_all(dir);
}

TEST_CASE("pixel coordinates get one hint naming the remedy; a stray value above 1 does not") {
    const auto pixels = messages(withMask(R"({"name": "door", "polygon": [[806, 40], [900, 40], [900, 0.5]]})"));
    REQUIRE(pixels.size() == 6);  // five "outside 0..1" and the hint
    CHECK(pixels.back() ==
          "mask 'door': the points look like pixel coordinates (x up to 900, y up to 40): divide each x by the "
          "frame width and each y by the frame height, or convert the file with `mimamori mask import --pixels "
          "WIDTHxHEIGHT`");
    for (const char* notPixels : {R"([[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]])",   // one typo among fractions
                                  R"([[806, 40], [900, -40], [900, 500]])",     // negative: not a pixel
                                  R"([[806, 40], [20000, 40], [900, 500]])"}) { // beyond any frame
        CAPTURE(notPixels);
        for (const auto& m : messages(withMask(std::string(R"({"name": "door", "polygon": )") + notPixels + "}")))
            CHECK(m.find("look like pixel") == std::string::npos);
    }
}

TEST_CASE("a pixel mask file converts to fractions of the frame, keeping names and order; points outside refuse") {
    const std::string json = R"({"version": 1, "camera": "kakogawa-0001", "masks": [
        {"name": "東側の窓", "polygon": [[480, 54], [1920, 54], [1920, 1080], [480.5, 1080]]}]})";
    const std::string converted = maskJsonFromPixels(json, "px.json", 1920, 1080);
    const MaskSet set = parseMaskJson(converted, "converted");
    REQUIRE(set.masks.size() == 1);
    CHECK(set.masks[0].name == "東側の窓");
    const std::vector<std::pair<double, double>> expected = {{0.25, 0.05}, {1, 0.05}, {1, 1}, {480.5 / 1920, 1}};
    REQUIRE(set.masks[0].polygon.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CHECK(set.masks[0].polygon[i].x == expected[i].first);
        CHECK(set.masks[0].polygon[i].y == expected[i].second);
    }
    CHECK(converted.find("\"version\": 1,\n  \"camera\"") != std::string::npos);  // member order kept

    try {
        (void)maskJsonFromPixels(json, "px.json", 1280, 720);
        FAIL("a point outside a 1280x720 frame was converted");
    } catch (const MaskFileError& e) {
        std::vector<std::string> found;
        for (const auto& f : e.findings()) found.push_back(f.toString());
        CHECK(found == std::vector<std::string>{
                           "mask '東側の窓' point 1: x is 1920, outside the frame's 0..1280 pixels",
                           "mask '東側の窓' point 2: x is 1920, outside the frame's 0..1280 pixels",
                           "mask '東側の窓' point 2: y is 1080, outside the frame's 0..720 pixels",
                           "mask '東側の窓' point 3: y is 1080, outside the frame's 0..720 pixels",
                       });
    }
    CHECK_THROWS_AS((void)maskJsonFromPixels("{\"version\": 1,", "px.json", 1920, 1080), MaskFileError);
}

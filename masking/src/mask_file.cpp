// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The mask file: parsing, validation that reports every finding, and the SHA-256 of its bytes.
#include "mimamori/masking/mask.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>
#include <span>

namespace mimamori::masking {
namespace {

// ordered_json keeps the file's key order, so findings come out in file order.
using Json = nlohmann::ordered_json;

constexpr int kSupportedVersion = 1;
// Past this many crossings in one polygon the rest are summarised in one finding.
constexpr int kMaxCrossingsReported = 20;

// A key that appears twice in one object: JSON parsers keep only one of the values, so a
// second "polygon" would silently replace the first. Found while parsing, reported later.
struct DuplicateKey {
    int maskIndex = -1;  // -1: the top-level object (or somewhere outside a mask)
    std::string key;
};

// Follows the parser's events to find duplicate keys and which mask they are in.
class DuplicateKeyFinder {
public:
    bool operator()(int /*depth*/, Json::parse_event_t event, Json& parsed) {
        using E = Json::parse_event_t;
        switch (event) {
            case E::object_start:
                beginElement();
                stack_.push_back(Level{true, {}, {}, -1});
                break;
            case E::array_start:
                beginElement();
                stack_.push_back(Level{false, {}, {}, -1});
                break;
            case E::object_end:
            case E::array_end:
                if (!stack_.empty()) stack_.pop_back();
                break;
            case E::key:
                if (!stack_.empty() && parsed.is_string()) {
                    auto key = parsed.get<std::string>();
                    if (!stack_.back().keys.insert(key).second)
                        duplicates_.push_back(DuplicateKey{currentMask(), key});
                    stack_.back().key = std::move(key);
                }
                break;
            case E::value:
                beginElement();
                break;
        }
        return true;
    }

    std::vector<DuplicateKey> take() { return std::move(duplicates_); }

private:
    struct Level {
        bool object = false;
        std::set<std::string> keys;
        std::string key;  // objects: the key being read
        int index = -1;   // arrays: the element being read
    };

    void beginElement() {
        if (!stack_.empty() && !stack_.back().object) ++stack_.back().index;
    }
    // Inside top-level "masks": [ {mask 0}, {mask 1}, ... ]?
    int currentMask() const {
        if (stack_.size() >= 3 && stack_[0].object && stack_[0].key == "masks" &&
            !stack_[1].object && stack_[2].object)
            return stack_[1].index;
        return -1;
    }

    std::vector<Level> stack_;
    std::vector<DuplicateKey> duplicates_;
};

// 1-based line and column of a byte offset, for "malformed JSON at line 3, column 7".
std::pair<int, int> lineAndColumn(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    int line = 1, column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return {line, column};
}

// nlohmann's message is "[json.exception.parse_error.101] parse error at line 1, column 5:
// syntax error while parsing value - invalid literal; last read: 'tru}'"; keep the reason.
std::string parseErrorReason(const std::string& what) {
    const auto colon = what.find(": ", what.find("column"));
    std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
    // "syntax error while parsing value - unexpected ']'": the parser's state adds nothing.
    if (reason.rfind("syntax error while parsing ", 0) == 0) {
        const auto dash = reason.find(" - ");
        if (dash != std::string::npos) reason = reason.substr(dash + 3);
    }
    return reason;
}

std::string joinKeys(std::initializer_list<const char*> keys) {
    std::string out;
    for (const char* k : keys) out += (out.empty() ? "" : ", ") + std::string(k);
    return out;
}

struct P {
    double x = 0, y = 0;
};

// Sign of the turn a -> b -> c: > 0 counter-clockwise, < 0 clockwise, 0 collinear.
double orient(P a, P b, P c) { return (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x); }

bool onSegment(P a, P b, P p) {  // p collinear with a-b: inside its bounding box?
    return std::min(a.x, b.x) <= p.x && p.x <= std::max(a.x, b.x) && std::min(a.y, b.y) <= p.y &&
           p.y <= std::max(a.y, b.y);
}

// Closed segments a-b and c-d share at least one point (crossing, touching or overlapping).
bool segmentsMeet(P a, P b, P c, P d) {
    const double d1 = orient(c, d, a), d2 = orient(c, d, b), d3 = orient(a, b, c), d4 = orient(a, b, d);
    if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)))
        return true;
    return (d1 == 0 && onSegment(c, d, a)) || (d2 == 0 && onSegment(c, d, b)) ||
           (d3 == 0 && onSegment(a, b, c)) || (d4 == 0 && onSegment(a, b, d));
}

// Adjacent edges a-b and b-c fold back onto each other (a spike of zero width).
bool foldsBack(P a, P b, P c) {
    if (orient(a, b, c) != 0) return false;
    return (a.x - b.x) * (c.x - b.x) + (a.y - b.y) * (c.y - b.y) > 0;
}

// Geometry findings of a polygon whose points are all valid numbers: repeated points,
// self-intersection, zero area. `add(pointIndex, message)` records one.
template <typename Add>
void checkGeometry(const std::vector<P>& pts, Add add) {
    const int n = static_cast<int>(pts.size());
    bool simple = true;
    // Repeated consecutive points make zero-length edges; the crossing test below would
    // flag them confusingly as crossings, so they get their own finding and are skipped.
    std::vector<int> keep;
    for (int i = 0; i < n; ++i) {
        const int prev = (i + n - 1) % n;
        if (pts[i].x == pts[prev].x && pts[i].y == pts[prev].y) {
            add(i, fmt::format("repeats point {} (remove one of them)", prev));
            simple = false;
        } else {
            keep.push_back(i);
        }
    }
    const int m = static_cast<int>(keep.size());
    if (m < 3) {
        add(-1, "zero area: fewer than 3 distinct points");
        return;
    }
    auto pt = [&](int k) { return pts[keep[(k % m + m) % m]]; };
    // All points on one line: say so once, rather than as a list of edges folding back.
    int far = 1;
    for (int k = 1; k < m; ++k)
        if (std::hypot(pt(k).x - pt(0).x, pt(k).y - pt(0).y) > std::hypot(pt(far).x - pt(0).x, pt(far).y - pt(0).y))
            far = k;
    // Within a billionth of the frame of that line: far below a pixel of any real sensor,
    // and enough to absorb rounding of points typed as decimals.
    const double baseLength = std::hypot(pt(far).x - pt(0).x, pt(far).y - pt(0).y);
    bool collinear = true;
    for (int k = 1; k < m; ++k)
        collinear = collinear && std::abs(orient(pt(0), pt(far), pt(k))) <= 1e-9 * baseLength;
    if (collinear) {
        add(-1, "zero area: all points lie on one line");
        return;
    }
    auto edgeName = [&](int k) { return fmt::format("{}-{}", keep[k], keep[(k + 1) % m]); };
    int crossings = 0;
    for (int i = 0; i < m; ++i) {
        for (int j = i + 1; j < m; ++j) {
            const bool adjacentAfter = j == i + 1;
            const bool adjacentBefore = i == 0 && j == m - 1;
            bool bad = false;
            if (adjacentAfter) {
                bad = foldsBack(pt(i), pt(j), pt(j + 1));
            } else if (adjacentBefore) {
                bad = foldsBack(pt(m - 1), pt(0), pt(1));
            } else {
                bad = segmentsMeet(pt(i), pt(i + 1), pt(j), pt(j + 1));
            }
            if (!bad) continue;
            simple = false;
            if (++crossings <= kMaxCrossingsReported) {
                add(keep[i], fmt::format("self-intersecting: edge {} {} edge {}", edgeName(i),
                                         adjacentAfter || adjacentBefore ? "folds back onto" : "meets",
                                         edgeName(j)));
            }
        }
    }
    if (crossings > kMaxCrossingsReported)
        add(-1, fmt::format("self-intersecting: {} more crossings not listed",
                            crossings - kMaxCrossingsReported));
    if (!simple) return;  // the area of a self-intersecting outline means nothing
    double twiceArea = 0;
    for (int i = 0; i < m; ++i) twiceArea += pt(i).x * pt(i + 1).y - pt(i + 1).x * pt(i).y;
    // 1e-12 of the frame is a ten-thousandth of a pixel even at 16384 x 16384: a slip.
    if (std::abs(twiceArea) <= 2e-12) add(-1, "zero area: it encloses less than 1e-12 of the frame");
}

// Staff often copy polygons from an image editor in pixels (806, 540) instead of fractions of
// the frame. Such a mask earns one "outside 0..1" finding per coordinate; this notices the
// pattern so that the findings end with the remedy. Pixels: every number a finite one from 0 to
// the largest frame side accepted anywhere (16384), and at least half of them above 1 (a single
// 1.2 among fractions is a typo, not pixels).
struct PixelGuess {
    static constexpr double kLargestSide = 16384;
    double max[2] = {0, 0};
    int numbers = 0;
    int aboveOne = 0;
    bool allPixelLike = true;

    void see(int axis, double v) {
        ++numbers;
        if (!std::isfinite(v) || v < 0 || v > kLargestSide) {
            allPixelLike = false;
            return;
        }
        max[axis] = std::max(max[axis], v);
        aboveOne += v > 1 ? 1 : 0;
    }
    bool likely() const { return allPixelLike && aboveOne > 0 && 2 * aboveOne >= numbers; }
};

class Validator {
public:
    explicit Validator(std::vector<Finding>& out) : out_(out) {}

    void run(const Json& doc, const std::vector<DuplicateKey>& duplicates) {
        for (const auto& d : duplicates)
            if (d.maskIndex < 0) file(fmt::format("key '{}' appears twice (only one would be used)", d.key));
        if (!doc.is_object()) {
            file("the file must be one JSON object: {\"version\": 1, \"camera\": ..., \"masks\": [...]}");
            return;
        }
        for (const auto& [key, value] : doc.items())
            if (key != "version" && key != "camera" && key != "masks")
                file(fmt::format("unknown key '{}' (allowed: {})", key, joinKeys({"version", "camera", "masks"})));
        if (!doc.contains("version")) {
            file("missing key 'version'");
        } else if (const Json& v = doc["version"]; !v.is_number_integer() || v.get<long long>() != kSupportedVersion) {
            file(fmt::format("unsupported version {} (this program reads version {})", v.dump(), kSupportedVersion));
        }
        if (!doc.contains("camera")) {
            file("missing key 'camera'");
        } else if (!doc["camera"].is_string()) {
            file(fmt::format("camera is {}, not a string", doc["camera"].dump()));
        } else if (doc["camera"].get<std::string>().empty()) {
            file("camera must not be empty");
        }
        if (!doc.contains("masks")) {
            file("missing key 'masks'");
            return;
        }
        const Json& masks = doc["masks"];
        if (!masks.is_array()) {
            file(fmt::format("masks is {}, not a list of masks", typeName(masks)));
            return;
        }
        std::map<std::string, int> firstWithName;
        for (std::size_t i = 0; i < masks.size(); ++i) {
            const int index = static_cast<int>(i);
            std::vector<DuplicateKey> mine;
            for (const auto& d : duplicates)
                if (d.maskIndex == index) mine.push_back(d);
            checkMask(masks[i], index, mine, firstWithName);
        }
    }

private:
    static std::string typeName(const Json& j) {
        if (j.is_object()) return "an object";
        if (j.is_array()) return "a list";
        if (j.is_string()) return "a string";
        if (j.is_boolean()) return "true/false";
        if (j.is_null()) return "null";
        return "a number";
    }

    void file(std::string message) { out_.push_back(Finding{"", -1, std::move(message), -1}); }

    void checkMask(const Json& m, int index, const std::vector<DuplicateKey>& duplicates,
                   std::map<std::string, int>& firstWithName) {
        std::string name;  // stays "" while the mask has no usable name: findings then use the index
        auto add = [&](int point, std::string message) {
            out_.push_back(Finding{name, point, std::move(message), index});
        };
        if (!m.is_object()) {
            add(-1, fmt::format("is {}, not an object with \"name\" and \"polygon\"", typeName(m)));
            return;
        }
        if (m.contains("name") && m["name"].is_string()) name = m["name"].get<std::string>();
        for (const auto& d : duplicates) add(-1, fmt::format("key '{}' appears twice (only one would be used)", d.key));
        for (const auto& [key, value] : m.items())
            if (key != "name" && key != "polygon")
                add(-1, fmt::format("unknown key '{}' (allowed: {})", key, joinKeys({"name", "polygon"})));
        if (!m.contains("name")) {
            add(-1, "missing key 'name'");
        } else if (!m["name"].is_string()) {
            add(-1, fmt::format("name is {}, not a string", m["name"].dump()));
        } else if (name.empty()) {
            add(-1, "name must not be empty");
        } else if (auto [it, inserted] = firstWithName.emplace(name, index); !inserted) {
            add(-1, fmt::format("duplicate name: masks[{}] is also called '{}'", it->second, name));
        }
        if (!m.contains("polygon")) {
            add(-1, "missing key 'polygon'");
            return;
        }
        const Json& poly = m["polygon"];
        if (!poly.is_array()) {
            add(-1, fmt::format("polygon is {}, not a list of [x, y] points", typeName(poly)));
            return;
        }
        bool pointsValid = true;
        std::vector<P> pts;
        PixelGuess pixels;
        for (std::size_t k = 0; k < poly.size(); ++k) {
            const int point = static_cast<int>(k);
            const Json& p = poly[k];
            if (!p.is_array() || p.size() != 2) {
                add(point, fmt::format("is {}, not [x, y] (two numbers)", p.dump()));
                pointsValid = false;
                continue;
            }
            P xy;
            const char* axis[2] = {"x", "y"};
            double* slot[2] = {&xy.x, &xy.y};
            for (int a = 0; a < 2; ++a) {
                const Json& c = p[static_cast<std::size_t>(a)];
                if (!c.is_number()) {
                    add(point, fmt::format("{} is {}, not a number", axis[a], c.dump()));
                    pointsValid = false;
                    continue;
                }
                const double v = c.get<double>();
                pixels.see(a, v);
                if (!std::isfinite(v) || v < 0.0 || v > 1.0) {
                    add(point, fmt::format("{} is {}, outside 0..1", axis[a], c.dump()));
                    pointsValid = false;
                    continue;
                }
                *slot[a] = v;
            }
            pts.push_back(xy);
        }
        if (pixels.likely())
            add(-1, fmt::format("the points look like pixel coordinates (x up to {}, y up to {}): divide each x "
                                "by the frame width and each y by the frame height, or convert the file with "
                                "`mimamori mask import --pixels WIDTHxHEIGHT`",
                                pixels.max[0], pixels.max[1]));
        if (poly.size() < 3) {
            add(-1, fmt::format("polygon has {} point{}, needs at least 3", poly.size(), poly.size() == 1 ? "" : "s"));
            return;
        }
        if (pointsValid) checkGeometry(pts, add);
    }

    std::vector<Finding>& out_;
};

std::vector<Finding> validate(std::string_view json, Json* docOut) {
    std::vector<Finding> findings;
    DuplicateKeyFinder finder;
    Json doc;
    try {
        doc = Json::parse(json.begin(), json.end(), std::ref(finder));
    } catch (const Json::parse_error& e) {
        const auto [line, column] = lineAndColumn(json, e.byte == 0 ? 0 : e.byte - 1);
        findings.push_back(Finding{"", -1,
                                   fmt::format("malformed JSON at line {}, column {}: {}", line, column,
                                               parseErrorReason(e.what())),
                                   -1});
        return findings;
    } catch (const Json::out_of_range& e) {
        // A number beyond a double ("1e999"), which nlohmann reports without a position
        // (found by fuzz/mask_file; it used to escape as an exception no caller expects).
        std::string reason = e.what();  // "[json.exception.out_of_range.406] number overflow parsing '1e999'"
        if (const auto end = reason.find("] "); end != std::string::npos) reason.erase(0, end + 2);
        findings.push_back(Finding{"", -1, fmt::format("malformed JSON: {}", reason), -1});
        return findings;
    }
    Validator(findings).run(doc, finder.take());
    if (docOut) *docOut = std::move(doc);
    return findings;
}

std::string joinFindings(const std::string& source, const std::vector<Finding>& findings) {
    std::string out = fmt::format("{}: invalid mask file: ", source);
    for (std::size_t i = 0; i < findings.size(); ++i) out += (i ? "; " : "") + findings[i].toString();
    return out;
}

// Mask-file JSON as people write it: one member per line, a polygon's points on one line.
std::string readableJson(const nlohmann::ordered_json& j, int depth) {
    const auto flat = [](const nlohmann::ordered_json& v) {
        return v.is_primitive() || (v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) {
                                        return e.is_primitive() || (e.is_array() && std::all_of(e.begin(), e.end(), [](const auto& x) {
                                                                        return x.is_primitive();
                                                                    }));
                                    }));
    };
    if (flat(j)) return j.dump(-1, ' ', false);
    const std::string inner((static_cast<std::size_t>(depth) + 1) * 2, ' '), outer(static_cast<std::size_t>(depth) * 2, ' ');
    std::string out = j.is_object() ? "{" : "[";
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
        out += first ? "\n" : ",\n";
        first = false;
        out += inner;
        if (j.is_object()) out += nlohmann::ordered_json(it.key()).dump() + ": ";
        out += readableJson(*it, depth + 1);
    }
    out += first ? "" : "\n" + outer;
    return out + (j.is_object() ? "}" : "]");
}

}  // namespace

std::string Finding::toString() const {
    std::string where;
    if (!mask.empty()) {
        where = fmt::format("mask '{}'", mask);
    } else if (maskIndex >= 0) {
        where = fmt::format("masks[{}]", maskIndex);
    }
    if (pointIndex >= 0) where += fmt::format("{}point {}", where.empty() ? "" : " ", pointIndex);
    return where.empty() ? message : where + ": " + message;
}

MaskFileError::MaskFileError(std::string source, std::vector<Finding> findings)
    : std::runtime_error(joinFindings(source, findings)),
      source_(std::move(source)),
      findings_(std::move(findings)) {}

std::vector<Finding> validateMaskJson(std::string_view json) { return validate(json, nullptr); }

MaskSet parseMaskJson(std::string_view json, std::string_view source) {
    Json doc;
    auto findings = validate(json, &doc);
    if (!findings.empty()) throw MaskFileError(std::string(source), std::move(findings));

    MaskSet set;
    set.camera = doc["camera"].get<std::string>();
    for (const auto& m : doc["masks"]) {
        Mask mask;
        mask.name = m["name"].get<std::string>();
        for (const auto& p : m["polygon"]) mask.polygon.push_back(Point{p[0].get<double>(), p[1].get<double>()});
        set.masks.push_back(std::move(mask));
    }
    set.sha256Hex = common::sha256Hex(json);
    return set;
}

MaskSet loadMaskFile(const std::filesystem::path& path) {
    const std::string bytes = common::readFile(path);
    return parseMaskJson(bytes, path.string());
}

std::string maskJsonFromPixels(std::string_view json, std::string_view source, int width, int height) {
    if (width < 1 || height < 1 || width > 16384 || height > 16384)
        throw std::invalid_argument(fmt::format("frame size {}x{} outside 1..16384", width, height));
    nlohmann::ordered_json doc;
    try {
        doc = nlohmann::ordered_json::parse(json.begin(), json.end());
    } catch (const std::exception&) {
        throw MaskFileError(std::string(source), validateMaskJson(json));  // names line and column
    }
    std::vector<Finding> outside;
    if (doc.is_object() && doc.contains("masks") && doc["masks"].is_array()) {
        auto& masks = doc["masks"];
        for (std::size_t i = 0; i < masks.size(); ++i) {
            auto& m = masks[i];
            if (!m.is_object() || !m.contains("polygon") || !m["polygon"].is_array()) continue;
            const std::string name = m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
            auto& poly = m["polygon"];
            for (std::size_t k = 0; k < poly.size(); ++k) {
                if (!poly[k].is_array() || poly[k].size() != 2) continue;  // the validation below names it
                for (std::size_t a = 0; a < 2; ++a) {
                    auto& c = poly[k][a];
                    if (!c.is_number()) continue;
                    const double side = a == 0 ? width : height;
                    const double v = c.get<double>();
                    if (!std::isfinite(v) || v < 0 || v > side) {
                        outside.push_back(Finding{name, static_cast<int>(k),
                                                  fmt::format("{} is {}, outside the frame's 0..{} pixels",
                                                              a == 0 ? "x" : "y", c.dump(), side),
                                                  static_cast<int>(i)});
                        continue;
                    }
                    c = v / side;
                }
            }
        }
    }
    if (!outside.empty()) throw MaskFileError(std::string(source), std::move(outside));
    std::string converted = readableJson(doc, 0) + "\n";
    if (auto findings = validateMaskJson(converted); !findings.empty())
        throw MaskFileError(std::string(source), std::move(findings));
    return converted;
}

}  // namespace mimamori::masking

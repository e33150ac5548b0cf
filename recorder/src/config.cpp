// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Parses and validates mimamorid's JSON config: every problem is collected and names its key.
#include "mimamori/recorder/config.hpp"

#include "mimamori/common/config_error.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/policy/retention.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace mimamori::recorder {
namespace {

using nlohmann::json;

// Collects problems while reading one object; each getter leaves the default on a bad value.
class Reader {
public:
    Reader(std::vector<std::string>& problems) : problems_(problems) {}

    void problem(const std::string& key, const std::string& message) {
        problems_.push_back(key + ": " + message);
    }

    // Reports keys of `object` not in `known`: a typo must never silently drop a setting.
    void unknownKeys(const json& object, const std::string& prefix,
                     const std::set<std::string>& known) {
        for (const auto& [key, value] : object.items()) {
            if (!known.contains(key)) problem(prefix + key, "unknown key");
        }
    }

    bool string(const json& object, const std::string& key, const std::string& name,
                std::string& out) {
        if (!object.contains(key)) return false;
        const json& v = object.at(key);
        if (!v.is_string()) {
            problem(name, "must be a string (got " + common::shownValue(v.dump()) + ")");
            return false;
        }
        out = v.get<std::string>();
        return true;
    }

    bool boolean(const json& object, const std::string& key, const std::string& name, bool& out) {
        if (!object.contains(key)) return false;
        const json& v = object.at(key);
        if (!v.is_boolean()) {
            problem(name, "must be true or false (got " + common::shownValue(v.dump()) + ")");
            return false;
        }
        out = v.get<bool>();
        return true;
    }

    bool integer(const json& object, const std::string& key, const std::string& name,
                 std::int64_t min, std::int64_t max, std::int64_t& out) {
        if (!object.contains(key)) return false;
        const json& v = object.at(key);
        if (!v.is_number_integer()) {
            problem(name, "must be an integer (got " + common::shownValue(v.dump()) + ")");
            return false;
        }
        std::int64_t n = v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX
                             ? INT64_MAX
                             : v.get<std::int64_t>();
        if (n < min || n > max) {
            problem(name, "must be between " + std::to_string(min) + " and " +
                              std::to_string(max) + " (got " + common::shownValue(v.dump()) + ")");
            return false;
        }
        out = n;
        return true;
    }

    bool number(const json& object, const std::string& key, const std::string& name, double min,
                double max, double& out) {
        if (!object.contains(key)) return false;
        const json& v = object.at(key);
        if (!v.is_number()) {
            problem(name, "must be a number (got " + common::shownValue(v.dump()) + ")");
            return false;
        }
        double d = v.get<double>();
        if (!std::isfinite(d) || d < min || d > max) {
            problem(name, fmt::format("must be between {} and {} (got {})", min, max, common::shownValue(v.dump())));
            return false;
        }
        out = d;
        return true;
    }

    // A byte count: a non-negative integer, or a string with a K/M/G/T suffix (powers of 1024).
    bool bytes(const json& object, const std::string& key, const std::string& name,
               std::uint64_t& out) {
        if (!object.contains(key)) return false;
        const json& v = object.at(key);
        const std::string expect =
            "must be a byte count: a non-negative integer or a string like \"200G\" (got " +
            common::shownValue(v.dump()) + ")";
        // Parsed text gives non-negative integers as unsigned; a document built in code may
        // hold them as signed.
        if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
            out = v.is_number_unsigned() ? v.get<std::uint64_t>() : static_cast<std::uint64_t>(v.get<std::int64_t>());
            return true;
        }
        if (!v.is_string()) {
            problem(name, expect);
            return false;
        }
        std::string text = v.get<std::string>();
        std::uint64_t multiplier = 1;
        if (!text.empty()) {
            switch (text.back()) {
            case 'K': multiplier = 1ULL << 10; break;
            case 'M': multiplier = 1ULL << 20; break;
            case 'G': multiplier = 1ULL << 30; break;
            case 'T': multiplier = 1ULL << 40; break;
            default: break;
            }
            if (multiplier != 1) text.pop_back();
        }
        if (text.empty() || text.size() > 12 ||
            !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            problem(name, expect);
            return false;
        }
        out = std::stoull(text) * multiplier;
        return true;
    }

    bool object(const json& parent, const std::string& key, const std::string& name) {
        if (!parent.contains(key)) return false;
        if (!parent.at(key).is_object()) {
            problem(name, "must be an object (got " + common::shownValue(parent.at(key).dump()) + ")");
            return false;
        }
        return true;
    }

private:
    std::vector<std::string>& problems_;
};

// Relative paths in the file are relative to the file's directory, so a config and its
// mask file and directories can be moved together (the demo relies on this).
std::filesystem::path resolve(const std::filesystem::path& configPath, const std::string& text) {
    std::filesystem::path p(text);
    if (p.is_absolute() || configPath.empty()) return p.lexically_normal();
    return (configPath.parent_path() / p).lexically_normal();
}

// Where `inner` must not be, and why: "(a stolen card alone must decrypt nothing)".
void refuseOnCard(Reader& r, const char* key, const std::filesystem::path& inner,
                  const std::filesystem::path& storage, const char* why) {
    if (inner.empty() || storage.empty() || !liesInside(inner, storage)) return;
    const auto resolved = resolvedPath(inner);
    r.problem(key, fmt::format("must not be inside storage.path{} ({})",
                               resolved == inner ? std::string() : " (it resolves to " + resolved.string() + ")",
                               why));
}

bool validCameraId(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
    });
}

void parseSource(Reader& r, const json& s, SourceConfig& out, const std::filesystem::path& cfg) {
    r.unknownKeys(s, "source.",
                  {"kind", "location", "loop", "realtime", "width", "height", "framerate",
                   "num_buffers"});
    if (r.string(s, "kind", "source.kind", out.kind)) {
        static const std::set<std::string> kinds = {"test", "file", "v4l2", "rtsp", "pipeline"};
        if (!kinds.contains(out.kind)) {
            r.problem("source.kind",
                      "must be one of test, file, v4l2, rtsp, pipeline (got \"" + out.kind + "\")");
            out.kind = "";
        }
    }
    bool hasLocation = r.string(s, "location", "source.location", out.location);
    r.boolean(s, "loop", "source.loop", out.loop);
    r.boolean(s, "realtime", "source.realtime", out.realtime);
    std::int64_t n = 0;
    if (r.integer(s, "width", "source.width", 16, 7680, n)) {
        if (n % 2) r.problem("source.width", "must be even (got " + std::to_string(n) + ")");
        else out.width = static_cast<int>(n);
    }
    if (r.integer(s, "height", "source.height", 16, 4320, n)) {
        if (n % 2) r.problem("source.height", "must be even (got " + std::to_string(n) + ")");
        else out.height = static_cast<int>(n);
    }
    if (r.integer(s, "framerate", "source.framerate", 1, 120, n)) out.framerate = static_cast<int>(n);
    if (r.integer(s, "num_buffers", "source.num_buffers", 0, INT32_MAX, n)) {
        out.numBuffers = n;
        if (out.kind != "test" && n > 0)
            r.problem("source.num_buffers", "only applies to the test source");
    }

    const std::string& k = out.kind;
    if ((k == "file" || k == "v4l2" || k == "rtsp" || k == "pipeline") && !hasLocation) {
        r.problem("source.location", "required for a " + k + " source");
    } else if (hasLocation && (k == "test")) {
        r.problem("source.location", "not used by the test source; remove it");
    } else if (hasLocation && out.location.empty()) {
        r.problem("source.location", "must not be empty");
    } else if (k == "file") {
        out.location = resolve(cfg, out.location).string();
        std::error_code ec;
        if (!std::filesystem::is_regular_file(out.location, ec))
            r.problem("source.location", "file " + out.location + " does not exist");
    } else if (k == "rtsp" && out.location.rfind("rtsp://", 0) != 0 &&
               out.location.rfind("rtsps://", 0) != 0) {
        r.problem("source.location", "must be an rtsp:// or rtsps:// URL (got \"" +
                                         out.location + "\")");
    } else if (k == "v4l2" && out.location.rfind("/dev/", 0) != 0) {
        r.problem("source.location", "must be a device path under /dev (got \"" + out.location +
                                         "\")");
    }
    if ((s.contains("loop") || s.contains("realtime")) && k != "file" && k != "test" &&
        !k.empty()) {
        if (s.contains("loop")) r.problem("source.loop", "only applies to a file source");
        if (s.contains("realtime") && k != "pipeline")
            r.problem("source.realtime", "only applies to file and test sources");
    }
}

void parseEncoder(Reader& r, const json& e, EncoderConfig& out) {
    r.unknownKeys(e, "encoder.", {"element", "properties", "keyframe_interval_frames"});
    if (r.string(e, "element", "encoder.element", out.element)) {
        bool ok = !out.element.empty() &&
                  std::all_of(out.element.begin(), out.element.end(), [](char c) {
                      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                             c == '-';
                  });
        if (!ok) r.problem("encoder.element", "must be a GStreamer element name (got \"" +
                                                  out.element + "\")");
    }
    if (r.string(e, "properties", "encoder.properties", out.properties)) {
        // Properties go into a launch description: refuse anything that would add elements.
        if (out.properties.find('!') != std::string::npos)
            r.problem("encoder.properties", "must be \"key=value\" pairs only (found '!')");
    }
    std::int64_t n = 0;
    if (r.integer(e, "keyframe_interval_frames", "encoder.keyframe_interval_frames", 0, 1200, n))
        out.keyframeIntervalFrames = static_cast<int>(n);
}

void parseStorage(Reader& r, const json& s, RecorderConfig& out, const std::filesystem::path& cfg) {
    r.unknownKeys(s, "storage.",
                  {"path", "byte_limit", "free_space_floor", "retention_days", "sync_interval_ms"});
    std::string text;
    if (r.string(s, "path", "storage.path", text)) {
        if (text.empty()) r.problem("storage.path", "must not be empty");
        else out.store.storageDir = resolve(cfg, text);
    } else if (!s.contains("path")) {
        r.problem("storage.path", "required");
    }
    r.bytes(s, "byte_limit", "storage.byte_limit", out.store.byteLimit);
    r.bytes(s, "free_space_floor", "storage.free_space_floor", out.store.freeSpaceFloor);
    std::int64_t n = 0;
    if (s.contains("retention_days")) {
        const json& v = s.at("retention_days");
        if (!v.is_number_integer()) {
            r.problem("storage.retention_days", "must be an integer (got " + common::shownValue(v.dump()) + ")");
        } else if (v.get<std::int64_t>() > policy::kRetentionCeilingDays) {
            r.problem("storage.retention_days",
                      fmt::format("{} is above the policy's ceiling of {} days",
                                  v.get<std::int64_t>(), policy::kRetentionCeilingDays));
        } else if (v.get<std::int64_t>() < 1) {
            r.problem("storage.retention_days",
                      "must be at least 1 (got " + common::shownValue(v.dump()) + ")");
        } else {
            out.store.retentionDays = static_cast<int>(v.get<std::int64_t>());
        }
    }
    if (r.integer(s, "sync_interval_ms", "storage.sync_interval_ms", 50, 10000, n))
        out.store.syncIntervalMicros = n * 1000;
}

}  // namespace

std::filesystem::path resolvedPath(const std::filesystem::path& path) {
    const auto absolute = std::filesystem::absolute(path).lexically_normal();
    std::error_code ec;
    auto resolved = std::filesystem::weakly_canonical(absolute, ec);
    // Unreadable on the way (permissions): judge by the text, and the open will fail anyway.
    return ec ? absolute : resolved;
}

bool liesInside(const std::filesystem::path& inner, const std::filesystem::path& outer) {
    const auto a = resolvedPath(inner);
    const auto b = resolvedPath(outer);
    auto [end, it] = std::mismatch(b.begin(), b.end(), a.begin(), a.end());
    // A trailing "" element (from a trailing slash) does not make b longer than a.
    return end == b.end() || (std::next(end) == b.end() && end->empty());
}

RecorderConfig parseConfig(const nlohmann::json& root, const std::filesystem::path& source) {
    const std::string name = source.empty() ? "config" : source.string();
    if (!root.is_object()) throw common::ConfigError(name, {"the top level must be a JSON object"});

    std::vector<std::string> problems;
    Reader r(problems);
    RecorderConfig out;
    out.path = source;
    r.unknownKeys(root, "",
                  {"camera_id", "source", "encoder", "segment_seconds", "storage", "mask_file",
                   "key_dir", "state_dir"});

    if (r.string(root, "camera_id", "camera_id", out.store.cameraId)) {
        if (!validCameraId(out.store.cameraId))
            r.problem("camera_id", "must be 1..64 characters of A-Z a-z 0-9 . _ - (got \"" +
                                       out.store.cameraId + "\")");
    } else if (!root.contains("camera_id")) {
        r.problem("camera_id", "required");
    }
    if (r.object(root, "source", "source")) parseSource(r, root["source"], out.source, source);
    if (r.object(root, "encoder", "encoder")) parseEncoder(r, root["encoder"], out.encoder);
    r.number(root, "segment_seconds", "segment_seconds", 1, 600, out.segmentSeconds);
    if (r.object(root, "storage", "storage")) parseStorage(r, root["storage"], out, source);
    else if (!root.contains("storage")) r.problem("storage", "required (an object with \"path\")");

    auto requiredPath = [&](const char* key, std::filesystem::path& target) {
        std::string value;
        if (r.string(root, key, key, value)) {
            if (value.empty()) r.problem(key, "must not be empty");
            else target = resolve(source, value);
        } else if (!root.contains(key)) {
            r.problem(key, "required");
        }
    };
    // No mask file is never "no masks": an empty mask list must be written down explicitly.
    requiredPath("mask_file", out.maskFile);
    requiredPath("key_dir", out.store.keyDir);
    requiredPath("state_dir", out.stateDir);
    // Resolved, symlinks followed: a link from internal flash onto the card is on the card.
    refuseOnCard(r, "key_dir", out.store.keyDir, out.store.storageDir, "a stolen card alone must decrypt nothing");
    refuseOnCard(r, "state_dir", out.stateDir, out.store.storageDir,
                 "whoever holds the card could roll back the nonces and the audit log");
    refuseOnCard(r, "mask_file", out.maskFile, out.store.storageDir,
                 "whoever holds the card could remove the privacy masks");

    if (!problems.empty()) throw common::ConfigError(name, std::move(problems));
    return out;
}

}  // namespace mimamori::recorder

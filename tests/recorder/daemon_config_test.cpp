// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// mimamorid's config: defaults, relative paths, and one error per invalid value naming its key.
#include "mimamori/recorder/config.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using mimamori::common::ConfigError;
using mimamori::recorder::parseConfig;
using nlohmann::json;

namespace {

json minimal() {
    return json::parse(R"({
        "camera_id": "cam-1",
        "storage": {"path": "/card/ring"},
        "mask_file": "/etc/mimamori/masks.json",
        "key_dir": "/var/lib/mimamori/keys",
        "state_dir": "/var/lib/mimamori/state"
    })");
}

std::vector<std::string> problemsOf(const json& doc) {
    try {
        (void)parseConfig(doc, "/etc/mimamori/mimamorid.json");
    } catch (const ConfigError& e) {
        return e.problems();
    }
    return {};
}

}  // namespace

TEST_CASE("a minimal config gets the documented defaults") {
    auto c = parseConfig(minimal(), "/etc/mimamori/mimamorid.json");
    CHECK(c.store.cameraId == "cam-1");
    CHECK(c.source.kind == "test");
    CHECK(c.encoder.element == "x264enc");
    CHECK(c.segmentSeconds == 10);
    CHECK(c.store.retentionDays == 12);
    CHECK(c.store.byteLimit == 0);
    CHECK(c.store.syncIntervalMicros == 800'000);
    CHECK(c.store.storageDir == "/card/ring");
}

TEST_CASE("relative paths are relative to the config file's directory") {
    json doc = minimal();
    doc["storage"]["path"] = "ring";
    doc["key_dir"] = "../keys";
    auto c = parseConfig(doc, "/srv/demo/conf/demo.json");
    CHECK(c.store.storageDir == "/srv/demo/conf/ring");
    CHECK(c.store.keyDir == "/srv/demo/keys");
}

TEST_CASE("sizes accept bytes or K/M/G/T suffixes") {
    json doc = minimal();
    doc["storage"]["byte_limit"] = "200G";
    doc["storage"]["free_space_floor"] = 1048576;
    doc["storage"]["retention_days"] = 7;
    auto c = parseConfig(doc, "x.json");
    CHECK(c.store.byteLimit == 200ULL << 30);
    CHECK(c.store.freeSpaceFloor == 1048576);
    CHECK(c.store.retentionDays == 7);
}

TEST_CASE("each invalid value gives its own error naming the key") {
    struct Row {
        const char* pointer;  // JSON pointer of the value to set
        json value;
        const char* key;      // the key the single error must name
    };
    const Row rows[] = {
        {"/camera_id", "", "camera_id"},
        {"/camera_id", "cam 1/../x", "camera_id"},
        {"/camera_id", 7, "camera_id"},
        {"/typo_key", 1, "typo_key"},
        {"/segment_seconds", 0, "segment_seconds"},
        {"/segment_seconds", "10", "segment_seconds"},
        {"/source", "test", "source"},
        {"/source/kind", "webcam", "source.kind"},
        {"/source/width", 1921, "source.width"},
        {"/source/height", 0, "source.height"},
        {"/source/framerate", 500, "source.framerate"},
        {"/source/realtime", "yes", "source.realtime"},
        {"/source/colour", "red", "source.colour"},
        {"/encoder/element", "x264enc ! filesink", "encoder.element"},
        {"/encoder/properties", "bitrate=1 ! fakesink", "encoder.properties"},
        {"/encoder/keyframe_interval_frames", -1, "encoder.keyframe_interval_frames"},
        {"/encoder/speed", 1, "encoder.speed"},
        {"/storage/byte_limit", -5, "storage.byte_limit"},
        {"/storage/byte_limit", "lots", "storage.byte_limit"},
        {"/storage/free_space_floor", "1X", "storage.free_space_floor"},
        {"/storage/retention_days", 15, "storage.retention_days"},
        {"/storage/retention_days", 0, "storage.retention_days"},
        {"/storage/sync_interval_ms", 0, "storage.sync_interval_ms"},
        {"/storage/path", "", "storage.path"},
        {"/storage/retention", 12, "storage.retention"},
        {"/mask_file", "", "mask_file"},
        {"/key_dir", "/card/ring/keys", "key_dir"},
        {"/state_dir", 3, "state_dir"},
    };
    for (const Row& row : rows) {
        json doc = minimal();
        doc[json::json_pointer(row.pointer)] = row.value;
        auto problems = problemsOf(doc);
        INFO(row.pointer, " = ", row.value.dump());
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].rfind(std::string(row.key) + ": ", 0) == 0);
    }
}

TEST_CASE("several bad values are all reported, not just the first") {
    json doc = minimal();
    doc["segment_seconds"] = -1;
    doc["storage"]["retention_days"] = 30;
    doc["source"] = {{"kind", "rtsp"}};  // location missing
    doc.erase("mask_file");
    auto problems = problemsOf(doc);
    CHECK(problems.size() == 4);
}

TEST_CASE("a retention above the policy's ceiling is refused and names the ceiling") {
    json doc = minimal();
    doc["storage"]["retention_days"] = 30;
    auto problems = problemsOf(doc);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("ceiling of 14 days") != std::string::npos);
}

TEST_CASE("required keys and source locations are checked") {
    for (const char* key : {"camera_id", "storage", "mask_file", "key_dir", "state_dir"}) {
        json doc = minimal();
        doc.erase(key);
        auto problems = problemsOf(doc);
        INFO(key);
        REQUIRE(problems.size() == 1);
        CHECK(problems[0].rfind(std::string(key) + ": ", 0) == 0);
    }
    json doc = minimal();
    doc["source"] = {{"kind", "file"}, {"location", "/nonexistent/clip.avi"}};
    auto problems = problemsOf(doc);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("does not exist") != std::string::npos);
    doc["source"] = {{"kind", "rtsp"}, {"location", "http://camera/stream"}};
    CHECK(problemsOf(doc).size() == 1);
    doc["source"] = {{"kind", "v4l2"}, {"location", "/dev/video7"}};
    CHECK(problemsOf(doc).empty());  // a missing camera is a lost source, not a bad config
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Shared test world for retrieval: a real segment store filled by real GStreamer encodes, keys,
// trust file, audit log, nonce store and the HTTP endpoint on 127.0.0.1.
#pragma once

#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/nonce_store.hpp"
#include "mimamori/policy/request.hpp"
#include "mimamori/store/segment_store.hpp"
#include "mimamori/retrieval/client.hpp"
#include "mimamori/retrieval/endpoint.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/tls.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mimamori::retrieval::test {

namespace fs = std::filesystem;
using common::kMicrosPerSecond;
using common::UtcMicros;

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "mimamori-retrieval-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Runs a gst-launch description ending in `appsink name=sink`, hands every sample to
// `onSample` (borrowed for the call) and returns the first error the pipeline posted ("" if none).
template <typename OnSample>
std::string pullSamples(const std::string& description, OnSample&& onSample) {
    gst_init(nullptr, nullptr);
    GError* error = nullptr;
    GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
    if (!pipeline) {
        std::string text = error ? error->message : "parse failed";
        g_clear_error(&error);
        throw std::runtime_error(text);
    }
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    while (GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
        onSample(sample);
        gst_sample_unref(sample);
    }
    GstBus* bus = gst_element_get_bus(pipeline);
    GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    std::string failure;
    if (msg) {
        GError* err = nullptr;
        gst_message_parse_error(msg, &err, nullptr);
        failure = err ? err->message : "error";
        g_clear_error(&err);
        gst_message_unref(msg);
    }
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    return failure;
}

// Runs a gst-launch description ending in `appsink name=sink` and returns all bytes it got.
inline std::vector<std::uint8_t> runToBytes(const std::string& description) {
    std::vector<std::uint8_t> out;
    const std::string failure = pullSamples(description, [&](GstSample* sample) {
        GstMapInfo map;
        GstBuffer* buffer = gst_sample_get_buffer(sample);
        if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
            out.insert(out.end(), map.data, map.data + map.size);
            gst_buffer_unmap(buffer, &map);
        }
    });
    if (!failure.empty()) throw std::runtime_error(failure);
    return out;
}

// MPEG-TS of `frames` frames of H.264 starting on a keyframe, a keyframe every `keyInterval`.
inline std::vector<std::uint8_t> encodeTs(int frames, int fps, int keyInterval, int width = 320, int height = 240,
                                          int pattern = 18 /* ball */) {
    return runToBytes(fmt::format(
        "videotestsrc num-buffers={} pattern={} ! video/x-raw,format=I420,width={},height={},framerate={}/1 ! "
        "x264enc key-int-max={} speed-preset=ultrafast tune=zerolatency ! h264parse ! "
        "mpegtsmux ! appsink name=sink sync=false",
        frames, pattern, width, height, fps, keyInterval));
}

// What a fetched or extracted MP4 decodes to.
struct Decoded {
    int frames = 0;
    UtcMicros firstPts = -1;
    UtcMicros lastEnd = -1;  // pts + duration of the last frame
};

inline Decoded decodeMp4(const fs::path& file) {
    Decoded d;
    const std::string failure = pullSamples(
        fmt::format("filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! appsink name=sink sync=false", file.string()),
        [&](GstSample* sample) {
            GstBuffer* buffer = gst_sample_get_buffer(sample);
            const UtcMicros pts = static_cast<UtcMicros>(GST_BUFFER_PTS(buffer) / GST_USECOND);
            const UtcMicros dur = GST_BUFFER_DURATION_IS_VALID(buffer) ? static_cast<UtcMicros>(GST_BUFFER_DURATION(buffer) / GST_USECOND) : 0;
            if (d.firstPts < 0 || pts < d.firstPts) d.firstPts = pts;
            d.lastEnd = std::max(d.lastEnd, pts + dur);
            ++d.frames;
        });
    if (!failure.empty()) d.frames = -1;
    return d;
}

// Footage layout shared by the tests: 10 fps, a keyframe every 10 frames (1 s GOPs),
// segments of 2 s starting at kT0 (a whole second).
constexpr int kFps = 10;
constexpr int kKeyInterval = 10;
constexpr int kSegmentSeconds = 2;
constexpr UtcMicros kT0 = 1'795'000'000LL * kMicrosPerSecond;  // 2026-11-18, inside retention

// Writes `ts` as `count` segments of `seconds` each into the store, back to back from `start`.
inline void writeSegments(store::SegmentStore& store, const std::vector<std::uint8_t>& ts, UtcMicros start,
                          int count, double seconds) {
    const auto length = static_cast<UtcMicros>(seconds * static_cast<double>(kMicrosPerSecond));
    for (int i = 0; i < count; ++i) {
        const UtcMicros s = start + static_cast<UtcMicros>(i) * length;
        auto writer = store.beginSegment(s);
        writer->write(ts, s + length);
        writer->finish(s + length);
    }
}

// Writes `count` segments of real TS into the store, back to back from `start`.
inline void recordSegments(store::SegmentStore& store, UtcMicros start, int count) {
    writeSegments(store, encodeTs(kSegmentSeconds * kFps, kFps, kKeyInterval), start, count, kSegmentSeconds);
}

// A segment store alone (no endpoint), and extracting from it into a file.
struct StoreOnly {
    TempDir dir;
    common::ManualClock clock{kT0 + 3600 * kMicrosPerSecond};
    std::unique_ptr<store::SegmentStore> store;
    StoreOnly() { reopen(); }
    // Opens the store again, as the daemon does after a restart (recovering partial segments).
    void reopen() {
        store.reset();
        store::StoreConfig sc;
        sc.cameraId = "cam";
        sc.storageDir = dir.path() / "card";
        sc.keyDir = dir.path() / "keys";
        store = store::SegmentStore::open(sc, clock);
    }
    fs::path extractTo(UtcMicros from, UtcMicros to, ExtractResult& result, const std::string& name = "clip.mp4") {
        const fs::path out = dir.path() / name;
        std::vector<std::uint8_t> bytes;
        result = extractMp4(*store, from, to, [&](std::span<const std::uint8_t> b) { bytes.insert(bytes.end(), b.begin(), b.end()); });
        CHECK(result.bytes == bytes.size());
        common::writeFileAtomic(out, std::string(bytes.begin(), bytes.end()));
        return out;
    }
};

// The whole camera plus the police and city, with keys on disk.
// A request for [from, to) on `cameraId` under Art. 7(1)(3), issued now and valid for
// `validFor`, addressed to `police`'s extract key. Unsigned.
inline policy::Request investigationRequest(const std::string& cameraId, UtcMicros now, UtcMicros validFor,
                                            UtcMicros from, UtcMicros to, const policy::SecretKey& police) {
    policy::Request r = policy::newRequest(now, validFor);
    r.cameraId = cameraId;
    r.from = from;
    r.to = to;
    r.groundWord = "criminal-investigation";
    r.ground = policy::classifyGround(r.groundWord);
    r.reference = "KKG-2026-1234";
    r.purpose = "theft investigation";
    r.body = "Hyogo Prefectural Police, Kakogawa Station";
    r.officer = "Sgt. Tanaka";
    r.recipient = police.boxPublic();
    return r;
}

// `r` signed by the police and approved by the city, serialised as the request file.
inline std::string approvedRequest(const policy::Request& r, const policy::SecretKey& police,
                                   const policy::SecretKey& city) {
    policy::SignedRequest s = policy::signRequest(r, police);
    policy::approveRequest(s, city);
    return policy::serializeSignedRequest(s);
}

struct World {
    TempDir dir;
    common::ManualClock clock{kT0 + 3600 * kMicrosPerSecond};
    std::string cameraId = "kakogawa-0042";
    std::unique_ptr<policy::SecretKey> police, city, camera, strangerPolice, strangerCity;
    std::unique_ptr<store::SegmentStore> store;
    std::unique_ptr<policy::AuditLog> audit;
    std::unique_ptr<policy::NonceStore> nonces;
    std::unique_ptr<Endpoint> endpoint;
    EndpointConfig config;
    int segments = 10;

    fs::path keys() const { return dir.path() / "keys"; }
    fs::path auditPath() const { return dir.path() / "state" / "audit.log"; }
    std::string url() const { return fmt::format("http://127.0.0.1:{}", endpoint->port()); }

    explicit World(int maxConcurrent = 1) {
        fs::create_directories(keys());
        fs::create_directories(dir.path() / "state");
        police = std::make_unique<policy::SecretKey>(policy::generateKey(policy::Role::Police, "hyogo-kakogawa-1"));
        city = std::make_unique<policy::SecretKey>(policy::generateKey(policy::Role::City, "kakogawa-city"));
        camera = std::make_unique<policy::SecretKey>(policy::generateKey(policy::Role::Camera, "camera-0042"));
        strangerPolice = std::make_unique<policy::SecretKey>(policy::generateKey(policy::Role::Police, "stranger-police"));
        strangerCity = std::make_unique<policy::SecretKey>(policy::generateKey(policy::Role::City, "stranger-city"));
        for (auto* k : {police.get(), city.get(), camera.get(), strangerPolice.get()}) policy::writeKeyFiles(*k, keys());
        policy::TrustStore trust;
        trust.add(police->publicKey());
        trust.add(city->publicKey());
        common::writeFileAtomic(dir.path() / "trust.json", trust.toJson());

        store::StoreConfig sc;
        sc.cameraId = cameraId;
        sc.storageDir = dir.path() / "card";
        sc.keyDir = dir.path() / "state" / "keys";
        store = store::SegmentStore::open(sc, clock);
        recordSegments(*store, kT0, segments);

        audit = std::make_unique<policy::AuditLog>(auditPath(), *camera, clock);
        nonces = std::make_unique<policy::NonceStore>(dir.path() / "state" / "nonces");
        config = parseEndpointConfig(
            fmt::format(R"({{"address": "127.0.0.1", "port": 0, "trust_file": "{}", "camera_key": "{}",
                           "max_concurrent_extracts": {}, "max_request_bytes": 32768, "insecure_http": true}})",
                        (dir.path() / "trust.json").string(), (keys() / "camera-0042.secret").string(), maxConcurrent),
            dir.path(), dir.path() / "state");
        startEndpoint(*store);
    }

    void startEndpoint(store::SegmentStore& s) {
        endpoint = Endpoint::start(config, cameraId, s, *audit, *nonces, *camera, clock, [] { return std::string(64, 'a'); });
    }

    // A valid request for [from, to), signed by the police and approved by the city.
    policy::Request request(UtcMicros from, UtcMicros to) const {
        return investigationRequest(cameraId, clock.nowUtc(), 24 * 3600 * kMicrosPerSecond, from, to, *police);
    }
    std::string approved(const policy::Request& r) const { return approvedRequest(r, *police, *city); }
    fs::path writeRequest(const std::string& bytes, const std::string& name = "request.json") const {
        const fs::path p = dir.path() / name;
        common::writeFileAtomic(p, bytes);
        return p;
    }

    std::vector<policy::AuditEntry> auditEntries() const { return policy::readAuditLog(auditPath()); }
};

// What `mimamori fetch` is given for `w`'s police key and camera, over plain HTTP.
inline FetchOptions fetchOptions(const World& w, const fs::path& requestFile, const fs::path& out) {
    FetchOptions o;
    o.requestFile = requestFile;
    o.cameraUrl = w.url();
    o.policeKeyFile = w.keys() / "hyogo-kakogawa-1.secret";
    o.cameraKeyFile = w.keys() / "camera-0042.pub";
    o.outDir = out;
    o.insecureHttp = true;  // the World's endpoint speaks plain HTTP; TLS fronts set https:// URLs
    return o;
}

// Mean and maximum luma inside [x0, x1) x [y0, y1) of every decoded frame.
struct Luma {
    int frames = 0;
    double worstMean = 0;
    int max = 0;
};

inline Luma lumaIn(const fs::path& mp4, double x0, double y0, double x1, double y1) {
    gst_init(nullptr, nullptr);
    const std::string description = fmt::format(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! "
        "appsink name=sink sync=false",
        mp4.string());
    GstElement* pipeline = gst_parse_launch(description.c_str(), nullptr);
    REQUIRE(pipeline);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    Luma l;
    while (GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
        GstVideoInfo info;
        gst_video_info_from_caps(&info, gst_sample_get_caps(sample));
        GstVideoFrame frame;
        if (gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ)) {
            const int w = GST_VIDEO_FRAME_WIDTH(&frame), h = GST_VIDEO_FRAME_HEIGHT(&frame);
            const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
            const auto* y = static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0));
            double sum = 0;
            int n = 0;
            for (int row = static_cast<int>(y0 * h); row < static_cast<int>(y1 * h); ++row)
                for (int col = static_cast<int>(x0 * w); col < static_cast<int>(x1 * w); ++col) {
                    const int v = y[row * stride + col];
                    sum += v;
                    ++n;
                    l.max = std::max(l.max, v);
                }
            l.worstMean = std::max(l.worstMean, n ? sum / n : 0);
            gst_video_frame_unmap(&frame);
            ++l.frames;
        }
        gst_sample_unref(sample);
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    return l;
}

// What a camera in a daemon test needs on disk under `dir`: keys/ with police, city and camera
// key files, trust.json accepting the police and city keys, masks.json for camera
// "kakogawa-0042" masking the rectangle (0.1, 0.1)..(0.4, 0.4).
struct CameraFixture {
    explicit CameraFixture(const fs::path& dir)
        : keys(dir / "keys"),
          police(policy::generateKey(policy::Role::Police, "hyogo-kakogawa-1")),
          city(policy::generateKey(policy::Role::City, "kakogawa-city")),
          camera(policy::generateKey(policy::Role::Camera, "camera-0042")) {
        fs::create_directories(keys);
        for (const auto* k : {&police, &city, &camera}) policy::writeKeyFiles(*k, keys);
        writeTlsIdentity(keys, "camera-0042");  // what keygen --role camera writes beside the key
        policy::TrustStore trust;
        trust.add(police.publicKey());
        trust.add(city.publicKey());
        common::writeFileAtomic(dir / "trust.json", trust.toJson());
        common::writeFileAtomic(dir / "masks.json",
                                R"({"version": 1, "camera": "kakogawa-0042", "masks": [{"name": "house 1",
                                   "polygon": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]}]})");
    }
    // Writes dir/mimamorid.json for this camera: `source` (a JSON object), segments of
    // `segmentSeconds`, ring/, daykeys/, state/, and the endpoint on 127.0.0.1:`port` (HTTPS).
    void writeDaemonConfig(const fs::path& dir, int port, const std::string& source, int segmentSeconds) const {
        common::writeFileAtomic(
            dir / "mimamorid.json",
            fmt::format(R"({{"camera_id": "kakogawa-0042", "source": {}, "segment_seconds": {},
 "storage": {{"path": "ring"}}, "mask_file": "masks.json", "key_dir": "daykeys", "state_dir": "state",
 "retrieval": {{"address": "127.0.0.1", "port": {}, "trust_file": "trust.json",
                "camera_key": "keys/camera-0042.secret"}}}}
)",
                        source, segmentSeconds, port));
    }
    // The police fetch [from, to) of camera "kakogawa-0042" from `url` into `outDir`, with a
    // request approved by the city and written to `requestFile`.
    FetchResult fetch(const fs::path& requestFile, UtcMicros from, UtcMicros to, const std::string& url,
                      const fs::path& outDir) const {
        const policy::Request r = investigationRequest("kakogawa-0042", common::SystemClock().nowUtc(),
                                                       3600 * kMicrosPerSecond, from, to, police);
        common::writeFileAtomic(requestFile, approvedRequest(r, police, city));
        FetchOptions o;
        o.requestFile = requestFile;
        o.cameraUrl = url;
        o.policeKeyFile = keys / "hyogo-kakogawa-1.secret";
        o.cameraKeyFile = keys / "camera-0042.pub";
        o.outDir = outDir;
        o.insecureHttp = url.starts_with("http://");  // an endpoint without TLS
        return fetchExtract(o);
    }

    fs::path keys;
    policy::SecretKey police;
    policy::SecretKey city;
    policy::SecretKey camera;
};

}  // namespace mimamori::retrieval::test

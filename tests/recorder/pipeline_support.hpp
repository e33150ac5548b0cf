// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Helpers for the recorder's integration tests: mask files, decoding TS/sources into I420
// frames with real GStreamer pipelines, comparing frames, and reading the ring.
#pragma once

#include "mimamori/common/file.hpp"
#include "mimamori/store/segment_store.hpp"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace mimamori::testing {

// A rectangle in fractions of the frame, as a mask polygon and for pixel checks.
struct Rect {
    double x0, y0, x1, y1;
};

inline std::string maskJson(const std::string& camera, const std::vector<Rect>& rects) {
    std::string masks;
    for (std::size_t i = 0; i < rects.size(); ++i) {
        const Rect& r = rects[i];
        if (i) masks += ',';
        masks += std::string("{\"name\": \"mask ") + std::to_string(i) +
                 "\", \"polygon\": [[" + std::to_string(r.x0) + "," + std::to_string(r.y0) +
                 "],[" + std::to_string(r.x1) + "," + std::to_string(r.y0) + "],[" +
                 std::to_string(r.x1) + "," + std::to_string(r.y1) + "],[" +
                 std::to_string(r.x0) + "," + std::to_string(r.y1) + "]]}";
    }
    return "{\"version\": 1, \"camera\": \"" + camera + "\", \"masks\": [" + masks + "]}\n";
}

// One decoded frame, planes packed without padding.
struct Frame {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> y, u, v;
    bool firstIsKey = true;  // for the first frame of a decoded TS: did it start on a keyframe
};

inline void gstInitOnce() {
    static bool done = [] {
        gst_init(nullptr, nullptr);
        return true;
    }();
    (void)done;
}

inline Frame copyFrame(GstSample* sample) {
    GstVideoInfo info;
    if (!gst_video_info_from_caps(&info, gst_sample_get_caps(sample)))
        throw std::runtime_error("decoded frame without video caps");
    GstVideoFrame vf;
    if (!gst_video_frame_map(&vf, &info, gst_sample_get_buffer(sample), GST_MAP_READ))
        throw std::runtime_error("cannot map a decoded frame");
    Frame f;
    f.width = GST_VIDEO_INFO_WIDTH(&info);
    f.height = GST_VIDEO_INFO_HEIGHT(&info);
    std::vector<std::uint8_t>* planes[3] = {&f.y, &f.u, &f.v};
    for (int p = 0; p < 3; ++p) {
        int w = GST_VIDEO_FRAME_COMP_WIDTH(&vf, p), h = GST_VIDEO_FRAME_COMP_HEIGHT(&vf, p);
        int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, p);
        auto* data = static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&vf, p));
        planes[p]->resize(static_cast<std::size_t>(w) * h);
        for (int row = 0; row < h; ++row)
            std::copy_n(data + static_cast<std::size_t>(row) * stride, w,
                        planes[p]->data() + static_cast<std::size_t>(row) * w);
    }
    gst_video_frame_unmap(&vf);
    return f;
}

// Runs `description` (which must contain "appsink name=out") to the end; returns its frames.
// When `input` is given, it is pushed into "appsrc name=in" first.
inline std::vector<Frame> runToFrames(const std::string& description,
                                      const std::vector<std::uint8_t>* input = nullptr,
                                      bool* firstIsKey = nullptr) {
    gstInitOnce();
    GError* error = nullptr;
    GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
    if (error) {
        std::string message = error->message;
        g_error_free(error);
        if (pipeline) gst_object_unref(pipeline);
        throw std::runtime_error("bad test pipeline: " + message);
    }
    gst_object_ref_sink(pipeline);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
    g_object_set(sink, "sync", FALSE, nullptr);

    // Whether the first H.264 access unit after the parser is a keyframe.
    struct KeyProbe {
        bool seen = false;
        bool key = false;
    } keyProbe;
    if (GstElement* parse = gst_bin_get_by_name(GST_BIN(pipeline), "parse")) {
        GstPad* pad = gst_element_get_static_pad(parse, "src");
        gst_pad_add_probe(
            pad, GST_PAD_PROBE_TYPE_BUFFER,
            [](GstPad*, GstPadProbeInfo* info, gpointer user) -> GstPadProbeReturn {
                auto* k = static_cast<KeyProbe*>(user);
                if (!k->seen) {
                    k->seen = true;
                    k->key = !GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info),
                                                     GST_BUFFER_FLAG_DELTA_UNIT);
                }
                return GST_PAD_PROBE_OK;
            },
            &keyProbe, nullptr);
        gst_object_unref(pad);
        gst_object_unref(parse);
    }
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    if (input) {
        GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline), "in");
        GstBuffer* buffer = gst_buffer_new_memdup(input->data(), input->size());
        gst_app_src_push_buffer(GST_APP_SRC(src), buffer);
        gst_app_src_end_of_stream(GST_APP_SRC(src));
        gst_object_unref(src);
    }
    std::vector<Frame> frames;
    while (GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(sink))) {
        frames.push_back(copyFrame(sample));
        gst_sample_unref(sample);
    }
    GstBus* bus = gst_element_get_bus(pipeline);
    GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    std::string failure;
    if (msg) {
        GError* e = nullptr;
        gst_message_parse_error(msg, &e, nullptr);
        failure = e ? e->message : "error";
        if (e) g_error_free(e);
        gst_message_unref(msg);
    }
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    if (!failure.empty()) throw std::runtime_error("test pipeline failed: " + failure);
    if (firstIsKey) *firstIsKey = keyProbe.seen && keyProbe.key;
    return frames;
}

// Decodes one MPEG-TS byte string the way a viewer would.
inline std::vector<Frame> decodeTs(const std::vector<std::uint8_t>& ts, bool* firstIsKey = nullptr) {
    return runToFrames(
        "appsrc name=in caps=video/mpegts,systemstream=true,packetsize=188 ! tsdemux ! "
        "h264parse name=parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! "
        "appsink name=out",
        &ts, firstIsKey);
}

// Every segment's decrypted TS, oldest first; fails the caller when a segment is unreadable.
inline std::vector<std::vector<std::uint8_t>> readSegments(
    const store::SegmentStore& store, const std::vector<store::SegmentInfo>& segments) {
    std::vector<std::vector<std::uint8_t>> out;
    for (const auto& s : segments) {
        std::vector<std::uint8_t> bytes;
        const auto read = store.read(s, [&](std::span<const std::uint8_t> chunk) {
            bytes.insert(bytes.end(), chunk.begin(), chunk.end());
        });
        if (!read) throw std::runtime_error("segment " + s.path.string() + ": " + read.error());
        out.push_back(std::move(bytes));
    }
    return out;
}

// Pixel statistics of the luma inside a rectangle (in pixels, [x0,x1) x [y0,y1)).
struct Stats {
    double mean = 0;
    int max = 0;
};
inline Stats lumaStats(const Frame& f, int x0, int y0, int x1, int y1) {
    Stats s;
    double sum = 0;
    long n = 0;
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) {
            int v = f.y[static_cast<std::size_t>(y) * f.width + x];
            sum += v;
            s.max = std::max(s.max, v);
            ++n;
        }
    s.mean = n ? sum / static_cast<double>(n) : 0;
    return s;
}

// The largest chroma deviation from neutral (128) inside a rectangle given in luma pixels.
inline int chromaDeviation(const Frame& f, int x0, int y0, int x1, int y1) {
    int worst = 0;
    int cw = (f.width + 1) / 2;
    for (int y = y0 / 2; y < (y1 + 1) / 2; ++y)
        for (int x = x0 / 2; x < (x1 + 1) / 2; ++x) {
            std::size_t i = static_cast<std::size_t>(y) * cw + x;
            worst = std::max({worst, std::abs(int(f.u[i]) - 128), std::abs(int(f.v[i]) - 128)});
        }
    return worst;
}

// Luma PSNR between two frames, ignoring the pixels inside `exclude` (pixel rectangles).
struct PixelRect {
    int x0, y0, x1, y1;
    bool contains(int x, int y) const { return x >= x0 && x < x1 && y >= y0 && y < y1; }
};
inline double psnrOutside(const Frame& a, const Frame& b, const std::vector<PixelRect>& exclude) {
    double sse = 0;
    long n = 0;
    for (int y = 0; y < a.height; ++y)
        for (int x = 0; x < a.width; ++x) {
            bool skip = false;
            for (const auto& r : exclude) skip = skip || r.contains(x, y);
            if (skip) continue;
            std::size_t i = static_cast<std::size_t>(y) * a.width + x;
            double d = double(a.y[i]) - double(b.y[i]);
            sse += d * d;
            ++n;
        }
    if (sse == 0) return 99;
    return 10 * std::log10(255.0 * 255.0 / (sse / static_cast<double>(n)));
}

// The pixel rectangle a fractional mask rectangle covers, shrunk by `inset` on every side.
inline PixelRect pixels(const Rect& r, int width, int height, int inset) {
    return {static_cast<int>(std::ceil(r.x0 * width)) + inset,
            static_cast<int>(std::ceil(r.y0 * height)) + inset,
            static_cast<int>(std::floor(r.x1 * width)) - inset,
            static_cast<int>(std::floor(r.y1 * height)) - inset};
}

}  // namespace mimamori::testing

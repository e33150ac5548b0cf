// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// RAII holders for the GLib/GStreamer handles the recorder uses (private to recorder/src).
#pragma once

#include <glib.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdint>
#include <memory>
#include <span>

namespace mimamori::recorder {

// gst_init once per process; safe from any thread.
void ensureGstInit();

struct GstObjectUnref {
    void operator()(gpointer object) const { gst_object_unref(object); }
};
template <typename T>
using GstPtr = std::unique_ptr<T, GstObjectUnref>;

struct GErrorFree {
    void operator()(GError* e) const { g_error_free(e); }
};
using GErrorPtr = std::unique_ptr<GError, GErrorFree>;

struct GFree {
    void operator()(gchar* p) const { g_free(p); }
};
using GCharPtr = std::unique_ptr<gchar, GFree>;

struct GstSampleUnref {
    void operator()(GstSample* s) const { gst_sample_unref(s); }
};
using GstSamplePtr = std::unique_ptr<GstSample, GstSampleUnref>;

struct GstMessageUnref {
    void operator()(GstMessage* m) const { gst_message_unref(m); }
};
using GstMessagePtr = std::unique_ptr<GstMessage, GstMessageUnref>;

// A mapped buffer, unmapped on destruction. The buffer must outlive it.
class MappedBuffer {
public:
    MappedBuffer(GstBuffer* buffer, GstMapFlags flags) : buffer_(buffer) {
        ok_ = gst_buffer_map(buffer_, &map_, flags);
    }
    ~MappedBuffer() {
        if (ok_) gst_buffer_unmap(buffer_, &map_);
    }
    MappedBuffer(const MappedBuffer&) = delete;
    MappedBuffer& operator=(const MappedBuffer&) = delete;
    bool ok() const { return ok_; }
    std::span<const std::uint8_t> bytes() const {
        return {static_cast<const std::uint8_t*>(map_.data), map_.size};
    }

private:
    GstBuffer* buffer_;
    GstMapInfo map_{};
    bool ok_ = false;
};

// A video frame mapped with its real plane strides; unmapped on destruction.
class MappedVideoFrame {
public:
    MappedVideoFrame(const GstVideoInfo* info, GstBuffer* buffer, GstMapFlags flags) {
        ok_ = gst_video_frame_map(&frame_, const_cast<GstVideoInfo*>(info), buffer, flags);
    }
    ~MappedVideoFrame() {
        if (ok_) gst_video_frame_unmap(&frame_);
    }
    MappedVideoFrame(const MappedVideoFrame&) = delete;
    MappedVideoFrame& operator=(const MappedVideoFrame&) = delete;
    bool ok() const { return ok_; }
    GstVideoFrame* get() { return &frame_; }

private:
    GstVideoFrame frame_{};
    bool ok_ = false;
};

}  // namespace mimamori::recorder

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The GStreamer capture pipeline: builds it from the config, masks every raw frame in place
// through a pad probe, and hands the MPEG-TS bytes to the recorder through an appsink.
#include "mimamori/recorder/pipeline.hpp"

#include "gst_util.hpp"
#include "mimamori/common/log.hpp"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>

namespace mimamori::recorder {
namespace {

constexpr const char* kLog = "pipeline";

// gst-launch quoting: a value inside "..." with backslash escapes.
std::string quoted(const std::string& value) {
    std::string out = "\"";
    for (char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::optional<masking::PixelFormat> pixelFormat(GstVideoFormat format) {
    switch (format) {
    case GST_VIDEO_FORMAT_I420: return masking::PixelFormat::I420;
    case GST_VIDEO_FORMAT_NV12: return masking::PixelFormat::NV12;
    default: return std::nullopt;
    }
}

// The keyframe interval when the config gives no frame count: kDefaultKeyframeSeconds, or the
// segment length if that is shorter (a segment can only start on a keyframe).
GstClockTime defaultKeyframeInterval(const RecorderConfig& config) {
    const double seconds = std::min(kDefaultKeyframeSeconds, config.segmentSeconds);
    return static_cast<GstClockTime>(std::llround(seconds * GST_SECOND));
}

}  // namespace

const char* const kDefaultX264Properties =
    "speed-preset=ultrafast pass=qual quantizer=30 cabac=true dct8x8=true bframes=2 b-adapt=false "
    "psy-tune=ssim threads=1 option-string=deblock=0,0:chroma-qp-offset=-1";

// ---------------------------------------------------------------------------------------------
// MaskState

MaskState::MaskState(masking::MaskSet masks)
    : masks_(std::make_shared<const masking::MaskSet>(std::move(masks))) {}

void MaskState::replace(masking::MaskSet masks) {
    auto set = std::make_shared<const masking::MaskSet>(std::move(masks));
    std::shared_ptr<const masking::RasterMask> current;
    {
        std::lock_guard lock(mutex_);
        current = raster_;
    }
    // Rasterise outside the lock and off the streaming thread.
    std::shared_ptr<const masking::RasterMask> raster;
    if (current)
        raster = std::make_shared<const masking::RasterMask>(*set, current->width(),
                                                             current->height(), current->format());
    std::lock_guard lock(mutex_);
    masks_ = std::move(set);
    raster_ = std::move(raster);
}

std::shared_ptr<const masking::RasterMask> MaskState::rasterFor(int width, int height,
                                                                masking::PixelFormat format) {
    std::shared_ptr<const masking::MaskSet> set;
    {
        std::lock_guard lock(mutex_);
        if (raster_ && raster_->width() == width && raster_->height() == height &&
            raster_->format() == format)
            return raster_;
        set = masks_;
    }
    // New geometry (first frame or a caps change): rasterise for it, then install it unless a
    // reload replaced the set meanwhile (then the newer set wins and is rasterised again).
    for (;;) {
        auto raster = std::make_shared<const masking::RasterMask>(*set, width, height, format);
        std::lock_guard lock(mutex_);
        if (masks_ == set) {
            raster_ = raster;
            return raster;
        }
        set = masks_;
    }
}

std::string MaskState::sha256Hex() const {
    std::lock_guard lock(mutex_);
    return masks_->sha256Hex;
}

std::size_t MaskState::maskCount() const {
    std::lock_guard lock(mutex_);
    return masks_->masks.size();
}

// ---------------------------------------------------------------------------------------------
// Descriptions

std::string sourceDescription(const SourceConfig& s, const std::string& downstream) {
    const std::string caps = fmt::format("video/x-raw,width={},height={},framerate={}/1", s.width,
                                         s.height, s.framerate);
    if (s.kind == "test") {
        // A synthetic scene: fixed structure (colour bars stand for buildings, so a mask over
        // them is checkable) and a moving element (the ball stands for passers-by).
        const std::string live = s.realtime ? "true" : "false";
        const std::string count =
            s.numBuffers > 0 ? fmt::format(" num-buffers={}", s.numBuffers) : "";
        return fmt::format(
            "compositor name=mimamori_scene background=black ! {caps} ! {down}"
            "  videotestsrc is-live={live}{count} pattern=smpte75 ! {caps} ! mimamori_scene."
            "  videotestsrc is-live={live}{count} pattern=ball background-color=0x00000000"
            " foreground-color=0xffffa000 ! video/x-raw,format=AYUV,width={w},height={h},"
            "framerate={f}/1 ! mimamori_scene.",
            fmt::arg("caps", caps), fmt::arg("down", downstream), fmt::arg("live", live),
            fmt::arg("count", count), fmt::arg("w", s.width), fmt::arg("h", s.height),
            fmt::arg("f", s.framerate));
    }
    if (s.kind == "file") {
        // Real-time pacing is done by the appsink (sync=true, see pipelineDescription): a
        // pacing element upstream would block the preroll that a looping file's first
        // segment seek needs.
        return fmt::format("filesrc location={} ! decodebin ! {}", quoted(s.location), downstream);
    }
    if (s.kind == "v4l2")
        return fmt::format("v4l2src device={} ! decodebin ! {}", quoted(s.location), downstream);
    if (s.kind == "rtsp")
        return fmt::format("rtspsrc location={} latency=200 ! decodebin ! {}", quoted(s.location),
                           downstream);
    if (s.kind == "pipeline") return s.location + " ! " + downstream;
    throw std::runtime_error("source.kind: unknown kind \"" + s.kind + "\"");
}

std::string encoderDescription(const EncoderConfig& e) {
    std::string properties = e.properties;
    if (properties.empty() && e.element == "x264enc") properties = kDefaultX264Properties;
    return e.element + " name=mimamori_enc " + properties;
}

namespace {

std::string pipelineDescription(const RecorderConfig& config) {
    // The queue puts masking and encoding on different threads; mpegtsmux repeats PAT/PMT at
    // every keyframe (the segmenter relies on that) and once a second otherwise.
    const std::string downstream =
        "videoconvert ! video/x-raw,format={I420,NV12} ! identity name=mimamori_mask silent=true"
        " ! queue max-size-buffers=8 max-size-bytes=0 max-size-time=0 ! " +
        encoderDescription(config.encoder) +
        " ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"
        " ! mpegtsmux pat-interval=90000 pmt-interval=90000"
        " ! appsink name=mimamori_sink max-buffers=0 emit-signals=false sync=" +
        std::string(config.source.kind == "file" && config.source.realtime ? "true" : "false");
    return sourceDescription(config.source, downstream);
}

}  // namespace

void checkElementsAvailable(const RecorderConfig& config) {
    ensureGstInit();
    std::vector<std::string> needed = {"videoconvert", "identity", "queue", "h264parse",
                                       "mpegtsmux", "appsink", config.encoder.element};
    const std::string& k = config.source.kind;
    if (k == "test") needed.insert(needed.end(), {"compositor", "videotestsrc"});
    if (k == "file") needed.insert(needed.end(), {"filesrc", "decodebin"});
    if (k == "v4l2") needed.insert(needed.end(), {"v4l2src", "decodebin"});
    if (k == "rtsp") needed.insert(needed.end(), {"rtspsrc", "decodebin"});
    for (const auto& name : needed) {
        GstElementFactory* factory = gst_element_factory_find(name.c_str());
        if (!factory)
            throw std::runtime_error("GStreamer element \"" + name +
                                     "\" is not installed (needed by the config)");
        gst_object_unref(factory);
    }
    // Parse once without playing: catches bad encoder properties and bad pipeline text.
    GError* error = nullptr;
    GstElement* probe = gst_parse_launch(pipelineDescription(config).c_str(), &error);
    GErrorPtr errorGuard(error);
    // gst_parse_launch returns a floating reference: sink it so the guard owns it.
    GstPtr<GstElement> guard(probe ? GST_ELEMENT(gst_object_ref_sink(probe)) : nullptr);
    if (error)
        throw std::runtime_error(std::string("cannot build the pipeline: ") + error->message);
}

// ---------------------------------------------------------------------------------------------
// CapturePipeline

struct CapturePipeline::Impl {
    CapturePipeline* owner = nullptr;
    RecorderConfig config;
    std::shared_ptr<MaskState> masks;
    PipelineCounters& counters;
    TsCallback onTs;
    StopCallback onStop;
    std::shared_ptr<StillTap> stills;  // may be null

    GstPtr<GstElement> pipeline;
    GstPtr<GstElement> encoder;
    guint busWatch = 0;
    bool stopReported = false;  // main thread only
    bool loop = false;

    // Streaming thread of the mask stage only.
    GstVideoInfo info{};
    bool haveInfo = false;
    GstSegment rawSegment{};
    GstClockTime keyIntervalNs = GST_SECOND;
    GstClockTime nextKeyNs = GST_CLOCK_TIME_NONE;
    guint keyRequests = 0;
    bool loggedMaskFailure = false;
    // Streaming thread of the encoder's output only.
    GstSegment encodedSegment{};
    // Keyframes on their way from the encoder to the appsink: (decode, presentation) running
    // time in ns. mpegtsmux stamps a keyframe's group with its decode time, which B-frames put
    // before its presentation (except the first: its decode time would be negative, and the
    // PTS stands in); segments are labelled with the presentation time, like their frames.
    std::mutex keyTimesMutex;
    std::deque<std::pair<std::int64_t, std::int64_t>> keyTimes;

    std::atomic<bool> drainRequested{false};
    bool eosPushed = false;  // mask stage's streaming thread only

    std::mutex eosMutex;
    std::condition_variable eosCv;
    bool eosAtSink = false;

    Impl(CapturePipeline* o, const RecorderConfig& c, std::shared_ptr<MaskState> m,
         PipelineCounters& k, TsCallback ts, StopCallback stop, std::shared_ptr<StillTap> st)
        : owner(o), config(c), masks(std::move(m)), counters(k), onTs(std::move(ts)),
          onStop(std::move(stop)), stills(std::move(st)) {
        gst_segment_init(&encodedSegment, GST_FORMAT_TIME);
        gst_segment_init(&rawSegment, GST_FORMAT_TIME);
    }

    // Encoder's streaming thread.
    void noteKeyframe(GstBuffer* buffer) {
        guint64 pts = 0;
        if (gst_segment_to_running_time_full(&encodedSegment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer), &pts) != 1)
            return;
        guint64 dts = pts;
        int sign = 1;
        if (GST_BUFFER_DTS_IS_VALID(buffer))
            sign = gst_segment_to_running_time_full(&encodedSegment, GST_FORMAT_TIME, GST_BUFFER_DTS(buffer), &dts);
        std::lock_guard lock(keyTimesMutex);
        if (keyTimes.size() >= 64) keyTimes.pop_front();  // never matched: bounded all the same
        keyTimes.emplace_back(sign == 1 ? static_cast<std::int64_t>(dts) : 0, static_cast<std::int64_t>(pts));
    }

    // The appsink's streaming thread: the presentation time of the keyframe whose group starts
    // at `runningNs`, or `runningNs` when it is not known.
    std::int64_t keyframePresentation(std::int64_t runningNs) {
        constexpr std::int64_t kMatchNs = GST_MSECOND;
        std::lock_guard lock(keyTimesMutex);
        while (!keyTimes.empty()) {
            const auto [dts, pts] = keyTimes.front();
            if (std::abs(dts - runningNs) <= kMatchNs || std::abs(pts - runningNs) <= kMatchNs) {
                keyTimes.pop_front();
                return pts;
            }
            if (dts > runningNs) break;  // a later keyframe: this group's was not seen
            keyTimes.pop_front();
        }
        return runningNs;
    }

    void noteFrameEnd(std::int64_t runningNs) {
        if (runningNs > owner->lastFrameEndNs_.load()) owner->lastFrameEndNs_.store(runningNs);
    }

    void reportStop(bool eos, const std::string& reason) {
        if (stopReported) return;
        stopReported = true;
        onStop(eos, reason);
    }

    // Applies the masks to one raw buffer in place. False means the frame must not pass.
    bool maskBuffer(GstBuffer*& buffer) {
        if (!haveInfo) return false;
        auto format = pixelFormat(GST_VIDEO_INFO_FORMAT(&info));
        if (!format) return false;
        auto raster =
            masks->rasterFor(GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info), *format);
        buffer = gst_buffer_make_writable(buffer);
        std::optional<MappedVideoFrame> frame;
        frame.emplace(&info, buffer, GST_MAP_WRITE);
        if (!frame->ok()) {
            // Read-only memory (shared with a decoder's reference frames): copy it for real.
            frame.reset();
            GstBuffer* copy = gst_buffer_copy_deep(buffer);
            gst_buffer_unref(buffer);
            buffer = copy;
            frame.emplace(&info, buffer, GST_MAP_WRITE);
            if (!frame->ok()) return false;
        }
        masking::FrameView view;
        view.width = GST_VIDEO_INFO_WIDTH(&info);
        view.height = GST_VIDEO_INFO_HEIGHT(&info);
        view.format = *format;
        const int planes = static_cast<int>(GST_VIDEO_FRAME_N_PLANES(frame->get()));
        for (int p = 0; p < planes && p < 3; ++p) {
            view.planes[p] = static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(frame->get(), p));
            view.strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE(frame->get(), p);
        }
        // A review still is copied only while one is asked for (docs/review-still.md).
        if (stills && stills->wanted(StillStage::BeforeMasks))
            stills->offer(StillStage::BeforeMasks, view, masks->sha256Hex());
        raster->apply(view);
        if (stills && stills->wanted(StillStage::AfterMasks))
            stills->offer(StillStage::AfterMasks, view, masks->sha256Hex());
        return true;
    }

    void onCaps(GstCaps* caps) {
        haveInfo = gst_video_info_from_caps(&info, caps);
        if (!haveInfo) return;
        common::logInfo(kLog, "raw video negotiated: {}x{} {} at {}/{} fps",
                        GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info),
                        gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info)),
                        GST_VIDEO_INFO_FPS_N(&info), GST_VIDEO_INFO_FPS_D(&info));
        int n = GST_VIDEO_INFO_FPS_N(&info), d = GST_VIDEO_INFO_FPS_D(&info);
        const int frames = config.encoder.keyframeIntervalFrames;
        keyIntervalNs = defaultKeyframeInterval(config);
        if (frames > 0)
            keyIntervalNs = (n > 0 && d > 0)
                                ? gst_util_uint64_scale(GST_SECOND, static_cast<guint64>(frames) * d, n)
                                : static_cast<GstClockTime>(frames) * GST_SECOND / config.source.framerate;
    }

    // Asks the encoder for a keyframe once per interval of running time: a segment can only
    // start on a keyframe, and a crash-recovered segment decodes from its first one. Events
    // instead of the encoder's GOP property work for any encoder element and any frame rate
    // (x264enc's key-int-max cannot change once playing). Called before `buffer` is pushed.
    void requestKeyframe(GstPad* pad, GstBuffer* buffer) {
        if (!GST_BUFFER_PTS_IS_VALID(buffer)) return;
        GstClockTime pts = GST_BUFFER_PTS(buffer);
        guint64 running = gst_segment_to_running_time(&rawSegment, GST_FORMAT_TIME, pts);
        if (running == GST_CLOCK_TIME_NONE) return;
        // Slack for timestamp rounding only: a slack that grew with the interval would bring
        // each keyframe a frame early, and a segment would then close a whole interval late.
        constexpr GstClockTime kRoundingNs = 10 * GST_MSECOND;
        if (nextKeyNs != GST_CLOCK_TIME_NONE && running + kRoundingNs < nextKeyNs) return;
        // On schedule, the next one an interval after this one's due time (no drift); after a
        // stall or a gap, an interval after this frame.
        nextKeyNs = (nextKeyNs != GST_CLOCK_TIME_NONE && running < nextKeyNs + keyIntervalNs)
                        ? nextKeyNs + keyIntervalNs
                        : running + keyIntervalNs;
        if (keyRequests++ == 0) return;  // the first frame is a keyframe anyway
        guint64 stream = gst_segment_to_stream_time(&rawSegment, GST_FORMAT_TIME, pts);
        gst_pad_push_event(pad, gst_video_event_new_downstream_force_key_unit(
                                    pts, stream, running, TRUE, keyRequests));
    }
};

namespace {

using Impl = CapturePipeline::Impl;

// Every C callback below is a trampoline: it catches everything, so no exception crosses C.

GstPadProbeReturn maskProbe(GstPad* pad, GstPadProbeInfo* info, gpointer user) noexcept {
    auto* impl = static_cast<Impl*>(user);
    try {
        if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
            GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
            if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
                GstCaps* caps = nullptr;
                gst_event_parse_caps(event, &caps);
                impl->onCaps(caps);
            } else if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
                const GstSegment* segment = nullptr;
                gst_event_parse_segment(event, &segment);
                if (segment->format == GST_FORMAT_TIME) gst_segment_copy_into(segment, &impl->rawSegment);
            }
            return GST_PAD_PROBE_OK;
        }
        if (impl->drainRequested.load()) {
            // Stopping: end the stream here, from the streaming thread, whatever the source
            // does with an EOS event (a looping file would only post SEGMENT_DONE).
            if (!impl->eosPushed) {
                impl->eosPushed = true;
                gst_pad_push_event(pad, gst_event_new_eos());
            }
            return GST_PAD_PROBE_DROP;
        }
        if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
            impl->counters.framesIn++;
            GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
            bool ok = false;
            try {
                ok = impl->maskBuffer(buffer);
            } catch (...) {
                GST_PAD_PROBE_INFO_DATA(info) = buffer;  // may be a new copy: keep ownership right
                throw;
            }
            GST_PAD_PROBE_INFO_DATA(info) = buffer;
            if (ok) {
                impl->counters.framesMasked++;
                impl->requestKeyframe(pad, buffer);
                return GST_PAD_PROBE_OK;
            }
        } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
            GstBufferList* list = gst_buffer_list_make_writable(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
            GST_PAD_PROBE_INFO_DATA(info) = list;
            for (guint i = 0; i < gst_buffer_list_length(list);) {
                impl->counters.framesIn++;
                GstBuffer* buffer = gst_buffer_ref(gst_buffer_list_get(list, i));
                gst_buffer_list_remove(list, i, 1);  // leaves `buffer` with one owner: us
                bool ok = false;
                try {
                    ok = impl->maskBuffer(buffer);
                } catch (const std::exception& e) {
                    common::logError(kLog, "masking failed: {}", e.what());
                }
                if (ok) {
                    gst_buffer_list_insert(list, static_cast<gint>(i), buffer);
                    impl->counters.framesMasked++;
                    ++i;
                } else {
                    gst_buffer_unref(buffer);
                    impl->counters.maskFailures++;
                }
            }
            return GST_PAD_PROBE_OK;
        } else {
            return GST_PAD_PROBE_OK;
        }
    } catch (const std::exception& e) {
        common::logError(kLog, "masking failed: {}", e.what());
    } catch (...) {
        common::logError(kLog, "masking failed: unknown exception");
    }
    // Fail closed: a frame that could not be masked never reaches the encoder.
    impl->counters.maskFailures++;
    if (!impl->loggedMaskFailure) {
        impl->loggedMaskFailure = true;
        common::logError(kLog, "dropping frames that cannot be masked (format {})",
                         impl->haveInfo ? gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&impl->info))
                                        : "not negotiated");
    }
    return GST_PAD_PROBE_DROP;
}

GstPadProbeReturn encodedProbe(GstPad*, GstPadProbeInfo* info, gpointer user) noexcept {
    auto* impl = static_cast<Impl*>(user);
    if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
        GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
        if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
            const GstSegment* segment = nullptr;
            gst_event_parse_segment(event, &segment);
            if (segment->format == GST_FORMAT_TIME) gst_segment_copy_into(segment, &impl->encodedSegment);
        }
        return GST_PAD_PROBE_OK;
    }
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
        GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
        impl->counters.framesOut++;
        if (GST_BUFFER_PTS_IS_VALID(buffer) && !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT)) {
            try {
                impl->noteKeyframe(buffer);
            } catch (...) {
                // Only the segment's label falls back to the decode time.
            }
        }
        if (GST_BUFFER_PTS_IS_VALID(buffer)) {
            GstClockTime end = GST_BUFFER_PTS(buffer) +
                               (GST_BUFFER_DURATION_IS_VALID(buffer) ? GST_BUFFER_DURATION(buffer) : 0);
            guint64 running =
                gst_segment_to_running_time(&impl->encodedSegment, GST_FORMAT_TIME, end);
            if (running != GST_CLOCK_TIME_NONE)
                impl->noteFrameEnd(static_cast<std::int64_t>(running));
        }
    }
    return GST_PAD_PROBE_OK;
}

GstFlowReturn onNewSample(GstAppSink* sink, gpointer user) noexcept {
    auto* impl = static_cast<Impl*>(user);
    try {
        GstSamplePtr sample(gst_app_sink_pull_sample(sink));
        if (!sample) return GST_FLOW_EOS;
        GstBuffer* buffer = gst_sample_get_buffer(sample.get());
        if (!buffer) return GST_FLOW_OK;
        std::int64_t running = -1;
        if (GST_BUFFER_PTS_IS_VALID(buffer)) {
            const GstSegment* segment = gst_sample_get_segment(sample.get());
            guint64 t = segment ? gst_segment_to_running_time(segment, GST_FORMAT_TIME,
                                                              GST_BUFFER_PTS(buffer))
                                : GST_BUFFER_PTS(buffer);
            if (t != GST_CLOCK_TIME_NONE) running = static_cast<std::int64_t>(t);
        }
        // mpegtsmux leaves DELTA_UNIT off only the PAT that opens a keyframe's group.
        bool keyframeStart = !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
        if (keyframeStart && running >= 0) running = impl->keyframePresentation(running);
        MappedBuffer map(buffer, GST_MAP_READ);
        if (!map.ok()) throw std::runtime_error("cannot map an MPEG-TS buffer");
        impl->onTs(map.bytes(), running, keyframeStart);
        return GST_FLOW_OK;
    } catch (const std::exception& e) {
        common::logError(kLog, "recording a TS buffer failed: {}", e.what());
    } catch (...) {
        common::logError(kLog, "recording a TS buffer failed: unknown exception");
    }
    // GST_FLOW_ERROR makes appsink post an error on the bus: the recorder rebuilds.
    return GST_FLOW_ERROR;
}

void onSinkEos(GstAppSink*, gpointer user) noexcept {
    auto* impl = static_cast<Impl*>(user);
    std::lock_guard lock(impl->eosMutex);
    impl->eosAtSink = true;
    impl->eosCv.notify_all();
}

gboolean onBusMessage(GstBus*, GstMessage* message, gpointer user) noexcept {
    auto* impl = static_cast<Impl*>(user);
    try {
        switch (GST_MESSAGE_TYPE(message)) {
        case GST_MESSAGE_ERROR: {
            GError* error = nullptr;
            gchar* debug = nullptr;
            gst_message_parse_error(message, &error, &debug);
            GErrorPtr errorGuard(error);
            GCharPtr debugGuard(debug);
            std::string reason = fmt::format("source lost: {} (from {})",
                                             error ? error->message : "unknown error",
                                             GST_OBJECT_NAME(GST_MESSAGE_SRC(message)));
            common::logDebug(kLog, "error details: {}", debug ? debug : "");
            impl->reportStop(false, reason);
            break;
        }
        case GST_MESSAGE_EOS:
            impl->reportStop(true, "end of stream");
            break;
        case GST_MESSAGE_SEGMENT_DONE:
            // Looping file: a non-flushing segment seek back to the start keeps running time
            // (and so the recording) continuous.
            if (impl->loop &&
                !gst_element_seek(impl->pipeline.get(), 1.0, GST_FORMAT_TIME, GST_SEEK_FLAG_SEGMENT,
                                  GST_SEEK_TYPE_SET, 0, GST_SEEK_TYPE_NONE, GST_CLOCK_TIME_NONE))
                impl->reportStop(false, "source lost: cannot loop the file");
            break;
        case GST_MESSAGE_WARNING: {
            GError* error = nullptr;
            gchar* debug = nullptr;
            gst_message_parse_warning(message, &error, &debug);
            GErrorPtr errorGuard(error);
            GCharPtr debugGuard(debug);
            common::logWarning(kLog, "{}: {}", GST_OBJECT_NAME(GST_MESSAGE_SRC(message)),
                               error ? error->message : "warning");
            break;
        }
        default:
            break;
        }
    } catch (const std::exception& e) {
        common::logError(kLog, "bus message handling failed: {}", e.what());
    } catch (...) {
        common::logError(kLog, "bus message handling failed");
    }
    return G_SOURCE_CONTINUE;
}

// The first error message waiting on the bus, as text, for a failed state change.
std::string pendingError(GstElement* pipeline) {
    GstPtr<GstBus> bus(gst_element_get_bus(pipeline));
    GstMessagePtr message(gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR));
    if (!message) return "the pipeline refused to start";
    GError* error = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(message.get(), &error, &debug);
    GErrorPtr errorGuard(error);
    GCharPtr debugGuard(debug);
    return fmt::format("{} (from {})", error ? error->message : "unknown error",
                       GST_OBJECT_NAME(GST_MESSAGE_SRC(message.get())));
}

}  // namespace

CapturePipeline::CapturePipeline(const RecorderConfig& config, std::shared_ptr<MaskState> masks,
                                 PipelineCounters& counters, TsCallback onTs, StopCallback onStop,
                                 std::shared_ptr<StillTap> stills)
    : impl_(std::make_unique<Impl>(this, config, std::move(masks), counters, std::move(onTs),
                                   std::move(onStop), std::move(stills))) {
    ensureGstInit();
    const std::string description = pipelineDescription(config);
    common::logDebug(kLog, "pipeline: {}", description);
    GError* error = nullptr;
    GstElement* element = gst_parse_launch(description.c_str(), &error);
    GErrorPtr errorGuard(error);
    if (!element) throw std::runtime_error(std::string("cannot build the pipeline: ") +
                                           (error ? error->message : "unknown error"));
    impl_->pipeline.reset(GST_ELEMENT(gst_object_ref_sink(element)));  // was floating
    if (error) throw std::runtime_error(std::string("cannot build the pipeline: ") + error->message);
    impl_->loop = config.source.kind == "file" && config.source.loop;

    GstBin* bin = GST_BIN(impl_->pipeline.get());
    GstPtr<GstElement> mask(gst_bin_get_by_name(bin, "mimamori_mask"));
    impl_->encoder.reset(gst_bin_get_by_name(bin, "mimamori_enc"));
    GstPtr<GstElement> sink(gst_bin_get_by_name(bin, "mimamori_sink"));
    if (!mask || !impl_->encoder || !sink)
        throw std::runtime_error("cannot build the pipeline: a named element is missing");

    // Cap x264enc's own GOP (before playing: the property cannot change later) at twice the
    // requested interval, so keyframes keep coming even if a force-key-unit request were lost.
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(impl_->encoder.get()), "key-int-max") &&
        config.encoder.properties.find("key-int-max") == std::string::npos) {
        const double seconds = static_cast<double>(defaultKeyframeInterval(config)) / GST_SECOND;
        const int frames = config.encoder.keyframeIntervalFrames > 0
                               ? config.encoder.keyframeIntervalFrames
                               : static_cast<int>(std::lround(seconds * config.source.framerate));
        g_object_set(impl_->encoder.get(), "key-int-max", static_cast<guint>(2 * std::max(frames, 1)), nullptr);
    }

    GstPtr<GstPad> maskPad(gst_element_get_static_pad(mask.get(), "src"));
    gst_pad_add_probe(maskPad.get(),
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                                   GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                                   GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                      maskProbe, impl_.get(), nullptr);
    GstPtr<GstPad> encPad(gst_element_get_static_pad(impl_->encoder.get(), "src"));
    if (encPad)
        gst_pad_add_probe(encPad.get(),
                          static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                                       GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                          encodedProbe, impl_.get(), nullptr);

    GstAppSinkCallbacks callbacks{};
    callbacks.new_sample = onNewSample;
    callbacks.eos = onSinkEos;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &callbacks, impl_.get(), nullptr);

    GstPtr<GstBus> bus(gst_element_get_bus(impl_->pipeline.get()));
    impl_->busWatch = gst_bus_add_watch(bus.get(), onBusMessage, impl_.get());
}

CapturePipeline::~CapturePipeline() { stop(); }

common::Result<void> CapturePipeline::start() {
    GstElement* p = impl_->pipeline.get();
    if (impl_->loop) {
        // A flushing segment seek after preroll arms the SEGMENT_DONE looping.
        if (gst_element_set_state(p, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE ||
            gst_element_get_state(p, nullptr, nullptr, 10 * GST_SECOND) == GST_STATE_CHANGE_FAILURE) {
            impl_->stopReported = true;
            return common::Error{pendingError(p)};
        }
        gst_element_seek(p, 1.0, GST_FORMAT_TIME,
                         static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_SEGMENT),
                         GST_SEEK_TYPE_SET, 0, GST_SEEK_TYPE_NONE, GST_CLOCK_TIME_NONE);
    }
    if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        impl_->stopReported = true;  // the caller handles it; the bus watch must not repeat it
        return common::Error{pendingError(p)};
    }
    return common::success();
}

bool CapturePipeline::drain(int timeoutMs) {
    if (!impl_->pipeline) return true;
    impl_->drainRequested = true;  // the next raw frame becomes end-of-stream
    gst_element_send_event(impl_->pipeline.get(), gst_event_new_eos());  // for idle live sources
    std::unique_lock lock(impl_->eosMutex);
    return impl_->eosCv.wait_for(lock, std::chrono::milliseconds(timeoutMs),
                                 [&] { return impl_->eosAtSink; });
}

void CapturePipeline::stop() {
    if (!impl_ || !impl_->pipeline) return;
    if (impl_->busWatch) {
        g_source_remove(impl_->busWatch);
        impl_->busWatch = 0;
    }
    impl_->stopReported = true;
    gst_element_set_state(impl_->pipeline.get(), GST_STATE_NULL);
    impl_->encoder.reset();
    impl_->pipeline.reset();
}

}  // namespace mimamori::recorder

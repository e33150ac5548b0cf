// Extracting a range from the ring: tsdemux ! h264parse per segment, whole GOPs kept, mp4mux.
#include "mimamori/retrieval/extract.hpp"

#include "mimamori/common/log.hpp"

#include <fmt/format.h>
#include <gst/gst.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mimamori::retrieval {
namespace {

constexpr int kRetrievalNice = 10;
// A fragment per second keeps the muxer's memory small and lets players seek.
constexpr guint kFragmentMillis = 1000;
constexpr int kMuxQueueSeconds = 3;

pid_t currentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

void initGstreamer() {
    static std::once_flag once;
    static std::string failure;
    std::call_once(once, [] {
        GError* error = nullptr;
        if (!gst_init_check(nullptr, nullptr, &error)) {
            failure = error ? error->message : "unknown error";
            g_clear_error(&error);
        }
    });
    if (!failure.empty()) throw ExtractError("cannot initialise GStreamer: " + failure);
}

// --- A task pool whose threads belong to retrieval alone ---------------------------------
// GStreamer's default pool shares its threads process-wide: a thread we lowered in priority
// would go back to the pool and could later run the recorder's muxer. Our own pool starts a
// fresh thread per task with the nice value of the thread that started the task.
struct RetrievalTaskPool {
    GstTaskPool parent;
};
struct RetrievalTaskPoolClass {
    GstTaskPoolClass parentClass;
};

GType retrievalTaskPoolType();

void poolPrepare(GstTaskPool*, GError**) {}
void poolCleanup(GstTaskPool*) {}

gpointer poolPush(GstTaskPool*, GstTaskPoolFunction func, gpointer userData, GError** error) {
    const int niceValue = getpriority(PRIO_PROCESS, static_cast<id_t>(currentTid()));
    try {
        std::thread([func, userData, niceValue] {
            setpriority(PRIO_PROCESS, static_cast<id_t>(currentTid()), niceValue);
            func(userData);
        }).detach();
    } catch (const std::exception& e) {
        g_set_error(error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED, "cannot start thread: %s", e.what());
    }
    return nullptr;  // detached: GstTask waits for its own end, there is nothing to join
}

void retrievalTaskPoolClassInit(gpointer klass, gpointer) {
    auto* pool = reinterpret_cast<GstTaskPoolClass*>(klass);
    pool->prepare = poolPrepare;
    pool->cleanup = poolCleanup;
    pool->push = poolPush;
}

GType retrievalTaskPoolType() {
    static const GType type = g_type_register_static_simple(
        GST_TYPE_TASK_POOL, "MimamoriRetrievalTaskPool", sizeof(RetrievalTaskPoolClass),
        retrievalTaskPoolClassInit, sizeof(RetrievalTaskPool), nullptr, GTypeFlags{});
    return type;
}

// --- RAII ---------------------------------------------------------------------------------
struct ObjectUnref {
    void operator()(gpointer p) const { if (p) gst_object_unref(p); }
};
template <typename T>
using GstPtr = std::unique_ptr<T, ObjectUnref>;

struct BufferRef {
    GstBuffer* buffer = nullptr;
    explicit BufferRef(GstBuffer* b) : buffer(b) {}
    BufferRef(BufferRef&& o) noexcept : buffer(std::exchange(o.buffer, nullptr)) {}
    BufferRef& operator=(BufferRef&& o) noexcept {
        std::swap(buffer, o.buffer);
        return *this;
    }
    BufferRef(const BufferRef&) = delete;
    BufferRef& operator=(const BufferRef&) = delete;
    ~BufferRef() { if (buffer) gst_buffer_unref(buffer); }
};

struct CapsRef {
    GstCaps* caps = nullptr;
    CapsRef() = default;
    CapsRef(const CapsRef&) = delete;
    CapsRef& operator=(const CapsRef&) = delete;
    ~CapsRef() { if (caps) gst_caps_unref(caps); }
    void set(GstCaps* c) {
        if (c) gst_caps_ref(c);
        if (caps) gst_caps_unref(caps);
        caps = c;
    }
};

GstElement* makeElement(const char* factory) {
    GstElement* e = gst_element_factory_make(factory, nullptr);
    if (!e) throw ExtractError(fmt::format("GStreamer element '{}' is missing (install its plugin)", factory));
    return e;
}

// The first error message on a bus, if any (non-blocking).
std::optional<std::string> busError(GstElement* pipeline) {
    GstPtr<GstBus> bus(gst_element_get_bus(pipeline));
    while (GstMessage* msg = gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR)) {
        GError* err = nullptr;
        gchar* debug = nullptr;
        gst_message_parse_error(msg, &err, &debug);
        std::string text = fmt::format("{}: {}", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                                       err ? err->message : "error");
        g_clear_error(&err);
        g_free(debug);
        gst_message_unref(msg);
        return text;
    }
    return std::nullopt;
}

// --- One access unit, retimed to UTC --------------------------------------------------------
struct Frame {
    BufferRef buffer;
    UtcMicros pts = 0;
    UtcMicros dts = 0;
};

// Collects whole GOPs and passes on those overlapping [from, to).
class GopFilter {
public:
    using Emit = std::function<void(std::vector<Frame>&, UtcMicros end, GstCaps* caps)>;
    GopFilter(UtcMicros from, UtcMicros to, Emit emit) : from_(from), to_(to), emit_(std::move(emit)) {}

    // `caps`: the stream format in force for this frame (borrowed for the call).
    void add(Frame frame, bool keyframe, GstCaps* caps) {
        if (keyframe) {
            close(frame.pts);
            gopStart_ = frame.pts;
            caps_.set(caps);
        } else if (gop_.empty()) {
            return;  // no keyframe yet to decode it from
        }
        gop_.push_back(std::move(frame));
    }
    // Ends the current GOP at `end` (the segment's end: segments start on keyframes).
    void close(UtcMicros end) {
        if (gop_.empty()) return;
        if (end > from_ && gopStart_ < to_) emit_(gop_, end, caps_.caps);
        gop_.clear();
    }

private:
    UtcMicros from_;
    UtcMicros to_;
    Emit emit_;
    CapsRef caps_;
    std::vector<Frame> gop_;
    UtcMicros gopStart_ = 0;
};

// --- The muxer: mp4mux fed from our own pad, its output taken by our own pad ---------------
class Muxer {
public:
    explicit Muxer(const ByteSink& sink) : sink_(sink) {
        pool_.reset(static_cast<GstTaskPool*>(gst_object_ref_sink(g_object_new(retrievalTaskPoolType(), nullptr))));
        pipeline_.reset(static_cast<GstElement*>(gst_object_ref_sink(gst_pipeline_new("retrieval-mux"))));
        mux_ = makeElement("mp4mux");
        // latency: lets mp4mux queue this much media per pad, so the demuxing thread hands over
        // frames in batches instead of waiting for the muxer thread after every frame.
        g_object_set(mux_, "fragment-duration", kFragmentMillis, "streamable", TRUE, "latency",
                     static_cast<GstClockTime>(kMuxQueueSeconds * GST_SECOND), nullptr);
        gst_bin_add(GST_BIN(pipeline_.get()), mux_);
        GstPtr<GstBus> bus(gst_element_get_bus(pipeline_.get()));
        gst_bus_set_sync_handler(bus.get(), &Muxer::onSyncMessage, this, nullptr);

        GstPad* muxSink = gst_element_request_pad_simple(mux_, "video_%u");
        if (!muxSink) throw ExtractError("mp4mux: no video pad");
        muxSinkPad_.reset(muxSink);
        src_.reset(static_cast<GstPad*>(gst_object_ref_sink(gst_pad_new("extract-src", GST_PAD_SRC))));
        sinkPad_.reset(static_cast<GstPad*>(gst_object_ref_sink(gst_pad_new("extract-sink", GST_PAD_SINK))));
        gst_pad_set_element_private(sinkPad_.get(), this);
        gst_pad_set_chain_function(sinkPad_.get(), &Muxer::onChain);
        gst_pad_set_event_function(sinkPad_.get(), &Muxer::onEvent);
        // A queue decouples the demuxing thread from the muxer's per-frame hand-over.
        GstElement* queue = makeElement("queue");
        g_object_set(queue, "max-size-buffers", 0u, "max-size-bytes", 0u, "max-size-time",
                     static_cast<guint64>(kMuxQueueSeconds * GST_SECOND), nullptr);
        gst_bin_add(GST_BIN(pipeline_.get()), queue);
        GstPtr<GstPad> queueSink(gst_element_get_static_pad(queue, "sink"));
        GstPtr<GstPad> queueSrc(gst_element_get_static_pad(queue, "src"));
        GstPtr<GstPad> muxSrc(gst_element_get_static_pad(mux_, "src"));
        if (gst_pad_link(src_.get(), queueSink.get()) != GST_PAD_LINK_OK ||
            gst_pad_link(queueSrc.get(), muxSink) != GST_PAD_LINK_OK ||
            gst_pad_link(muxSrc.get(), sinkPad_.get()) != GST_PAD_LINK_OK)
            throw ExtractError("mp4mux: cannot link pads");
        gst_pad_set_active(sinkPad_.get(), TRUE);
        gst_pad_set_active(src_.get(), TRUE);
        if (gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
            throw ExtractError("mp4mux: cannot start: " + busError(pipeline_.get()).value_or("state change failed"));
    }

    ~Muxer() {
        if (pipeline_) gst_element_set_state(pipeline_.get(), GST_STATE_NULL);
        if (src_) gst_pad_set_active(src_.get(), FALSE);
        if (sinkPad_) gst_pad_set_active(sinkPad_.get(), FALSE);
        if (muxSinkPad_) gst_element_release_request_pad(mux_, muxSinkPad_.get());
    }
    Muxer(const Muxer&) = delete;
    Muxer& operator=(const Muxer&) = delete;

    // Called on the demuxing thread: the stream's caps (codec_data); first call starts the stream.
    void setCaps(GstCaps* caps) {
        if (currentCaps_.caps && gst_caps_is_equal(currentCaps_.caps, caps)) return;
        if (!started_) {
            gst_pad_push_event(src_.get(), gst_event_new_stream_start("mimamori-extract"));
            pushCaps(caps);
            GstSegment segment;
            gst_segment_init(&segment, GST_FORMAT_TIME);
            gst_pad_push_event(src_.get(), gst_event_new_segment(&segment));
            started_ = true;
        } else {
            pushCaps(caps);
        }
    }

    // `base`: UTC of time zero in the MP4.
    void push(std::vector<Frame>& gop, UtcMicros gopEnd, UtcMicros base) {
        for (std::size_t i = 0; i < gop.size(); ++i) {
            Frame& f = gop[i];
            const UtcMicros nextDts = i + 1 < gop.size() ? gop[i + 1].dts : gopEnd;
            GstBuffer* out = gst_buffer_make_writable(std::exchange(f.buffer.buffer, nullptr));
            // mp4mux refuses decoding times that go back (clock steps between segments).
            UtcMicros dts = std::max(f.dts - base, lastDts_ + 1);
            UtcMicros pts = std::max(f.pts - base, dts);
            lastDts_ = dts;
            GST_BUFFER_DTS(out) = static_cast<GstClockTime>(dts) * GST_USECOND;
            GST_BUFFER_PTS(out) = static_cast<GstClockTime>(pts) * GST_USECOND;
            GST_BUFFER_DURATION(out) = static_cast<GstClockTime>(std::max<UtcMicros>(nextDts - f.dts, 1)) * GST_USECOND;
            const GstFlowReturn flow = gst_pad_push(src_.get(), out);
            if (flow != GST_FLOW_OK) fail(fmt::format("mp4mux refused a frame ({})", gst_flow_get_name(flow)));
            ++frames_;
        }
    }

    // Sends EOS and waits until the muxer has written its last byte.
    void finish() {
        if (!started_) throw ExtractError("no footage in the requested range");
        gst_pad_push_event(src_.get(), gst_event_new_eos());
        std::unique_lock lock(mutex_);
        while (!eos_ && error_.empty()) {
            cond_.wait_for(lock, std::chrono::milliseconds(100));
            if (error_.empty())
                if (auto e = busError(pipeline_.get())) error_ = *e;
        }
        if (!error_.empty()) throw ExtractError(error_);
    }

    std::uint64_t frames() const { return frames_; }
    std::uint64_t bytes() const { return bytes_; }

private:
    void pushCaps(GstCaps* caps) {
        currentCaps_.set(caps);
        gst_pad_push_event(src_.get(), gst_event_new_caps(caps));
    }

    void fail(std::string message) {
        {
            std::lock_guard lock(mutex_);
            if (!error_.empty()) message = error_;
        }
        if (auto e = busError(pipeline_.get())) message += " (" + *e + ")";
        throw ExtractError(message);
    }

    // Streaming thread of mp4mux (ours, see RetrievalTaskPool). Never throws into C.
    static GstFlowReturn onChain(GstPad* pad, GstObject*, GstBuffer* buffer) {
        auto* self = static_cast<Muxer*>(gst_pad_get_element_private(pad));
        GstMapInfo map;
        GstFlowReturn result = GST_FLOW_OK;
        if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
            self->setError("cannot map a muxed buffer");
            result = GST_FLOW_ERROR;
        } else {
            try {
                self->sink_(std::span<const std::uint8_t>(map.data, map.size));
                self->bytes_ += map.size;
            } catch (const std::exception& e) {
                self->setError(e.what());
                result = GST_FLOW_ERROR;
            }
            gst_buffer_unmap(buffer, &map);
        }
        gst_buffer_unref(buffer);
        return result;
    }

    static gboolean onEvent(GstPad* pad, GstObject*, GstEvent* event) {
        auto* self = static_cast<Muxer*>(gst_pad_get_element_private(pad));
        if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
            const GstSegment* segment = nullptr;
            gst_event_parse_segment(event, &segment);
            // A byte segment pointing back means the muxer wants to seek: not possible here.
            if (segment->format == GST_FORMAT_BYTES && segment->start != self->bytes_)
                self->setError("mp4mux tried to seek back in its output");
        } else if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
            std::lock_guard lock(self->mutex_);
            self->eos_ = true;
            self->cond_.notify_all();
        }
        gst_event_unref(event);
        return TRUE;
    }

    void setError(std::string message) {
        std::lock_guard lock(mutex_);
        if (error_.empty()) error_ = std::move(message);
        cond_.notify_all();
    }

    // Gives each streaming task our own pool (posted synchronously when the task is made).
    static GstBusSyncReply onSyncMessage(GstBus*, GstMessage* msg, gpointer data) {
        auto* self = static_cast<Muxer*>(data);
        if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_STREAM_STATUS) {
            GstStreamStatusType type;
            GstElement* owner = nullptr;
            gst_message_parse_stream_status(msg, &type, &owner);
            if (type == GST_STREAM_STATUS_TYPE_CREATE) {
                const GValue* value = gst_message_get_stream_status_object(msg);
                if (value && G_VALUE_HOLDS_OBJECT(value) && GST_IS_TASK(g_value_get_object(value)))
                    gst_task_set_pool(GST_TASK(g_value_get_object(value)), self->pool_.get());
            }
        }
        return GST_BUS_PASS;
    }

    const ByteSink& sink_;
    GstPtr<GstTaskPool> pool_;
    GstPtr<GstElement> pipeline_;
    GstElement* mux_ = nullptr;  // owned by pipeline_
    GstPtr<GstPad> muxSinkPad_;
    GstPtr<GstPad> src_;
    GstPtr<GstPad> sinkPad_;
    CapsRef currentCaps_;
    bool started_ = false;
    UtcMicros lastDts_ = -1;
    std::uint64_t frames_ = 0;
    std::atomic<std::uint64_t> bytes_{0};
    std::mutex mutex_;
    std::condition_variable cond_;
    bool eos_ = false;
    std::string error_;
};

// --- Demuxing one segment on the calling thread ---------------------------------------------
// tsdemux ! h264parse ! capsfilter(avc, au), pushed and drained by us: no thread of its own.
class SegmentDemuxer {
public:
    using FrameFn = std::function<void(GstBuffer*, GstCaps*)>;

    explicit SegmentDemuxer(FrameFn onFrame) : onFrame_(std::move(onFrame)) {
        pipeline_.reset(static_cast<GstElement*>(gst_object_ref_sink(gst_pipeline_new("retrieval-demux"))));
        demux_ = makeElement("tsdemux");
        parse_ = makeElement("h264parse");
        filter_ = makeElement("capsfilter");
        GstCaps* caps = gst_caps_from_string("video/x-h264,stream-format=avc,alignment=au");
        g_object_set(filter_, "caps", caps, nullptr);
        gst_caps_unref(caps);
        gst_bin_add_many(GST_BIN(pipeline_.get()), demux_, parse_, filter_, nullptr);
        if (!gst_element_link(parse_, filter_)) throw ExtractError("cannot link h264parse to capsfilter");
        g_signal_connect(demux_, "pad-added", G_CALLBACK(&SegmentDemuxer::onPadAdded), this);

        src_.reset(static_cast<GstPad*>(gst_object_ref_sink(gst_pad_new("segment-src", GST_PAD_SRC))));
        sink_.reset(static_cast<GstPad*>(gst_object_ref_sink(gst_pad_new("segment-sink", GST_PAD_SINK))));
        gst_pad_set_element_private(sink_.get(), this);
        gst_pad_set_chain_function(sink_.get(), &SegmentDemuxer::onChain);
        gst_pad_set_event_function(sink_.get(), &SegmentDemuxer::onEvent);
        GstPtr<GstPad> demuxSink(gst_element_get_static_pad(demux_, "sink"));
        GstPtr<GstPad> filterSrc(gst_element_get_static_pad(filter_, "src"));
        if (gst_pad_link(src_.get(), demuxSink.get()) != GST_PAD_LINK_OK ||
            gst_pad_link(filterSrc.get(), sink_.get()) != GST_PAD_LINK_OK)
            throw ExtractError("cannot link the demuxer's pads");
        gst_pad_set_active(sink_.get(), TRUE);
        gst_pad_set_active(src_.get(), TRUE);
        if (gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
            throw ExtractError("tsdemux: cannot start: " + busError(pipeline_.get()).value_or("state change failed"));

        gst_pad_push_event(src_.get(), gst_event_new_stream_start("mimamori-segment"));
        GstCaps* tsCaps = gst_caps_from_string("video/mpegts,systemstream=true,packetsize=188");
        gst_pad_push_event(src_.get(), gst_event_new_caps(tsCaps));
        gst_caps_unref(tsCaps);
        GstSegment segment;
        gst_segment_init(&segment, GST_FORMAT_BYTES);
        gst_pad_push_event(src_.get(), gst_event_new_segment(&segment));
    }

    ~SegmentDemuxer() {
        if (pipeline_) gst_element_set_state(pipeline_.get(), GST_STATE_NULL);
        if (src_) gst_pad_set_active(src_.get(), FALSE);
        if (sink_) gst_pad_set_active(sink_.get(), FALSE);
    }
    SegmentDemuxer(const SegmentDemuxer&) = delete;
    SegmentDemuxer& operator=(const SegmentDemuxer&) = delete;

    // Pushes TS bytes; frames come out through onFrame on this same thread.
    void push(std::span<const std::uint8_t> ts) {
        GstBuffer* buffer = gst_buffer_new_memdup(ts.data(), ts.size());
        GST_BUFFER_OFFSET(buffer) = offset_;
        offset_ += ts.size();
        check(gst_pad_push(src_.get(), buffer));
    }

    // Drains the parser (EOS); the last frame of the segment comes out here.
    void finish() {
        gst_pad_push_event(src_.get(), gst_event_new_eos());
        rethrow();
        if (auto e = busError(pipeline_.get())) throw ExtractError(*e);
    }

private:
    void check(GstFlowReturn flow) {
        rethrow();
        if (flow != GST_FLOW_OK && flow != GST_FLOW_NOT_LINKED) {
            throw ExtractError(fmt::format("demuxing failed ({}){}", gst_flow_get_name(flow),
                                           busError(pipeline_.get()).value_or("")));
        }
    }
    void rethrow() {
        if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
    }

    static void onPadAdded(GstElement*, GstPad* pad, gpointer data) {
        auto* self = static_cast<SegmentDemuxer*>(data);
        const gchar* name = GST_PAD_NAME(pad);
        if (!g_str_has_prefix(name, "video")) return;  // cameras record video only
        GstPtr<GstPad> parseSink(gst_element_get_static_pad(self->parse_, "sink"));
        if (gst_pad_is_linked(parseSink.get())) return;  // one video stream is all we keep
        gst_pad_link(pad, parseSink.get());
    }

    // Runs on the pushing thread; exceptions are carried back to push().
    static GstFlowReturn onChain(GstPad* pad, GstObject*, GstBuffer* buffer) {
        auto* self = static_cast<SegmentDemuxer*>(gst_pad_get_element_private(pad));
        try {
            self->onFrame_(buffer, self->caps_.caps);
            return GST_FLOW_OK;
        } catch (...) {
            self->failure_ = std::current_exception();
            return GST_FLOW_ERROR;
        }
    }

    static gboolean onEvent(GstPad* pad, GstObject*, GstEvent* event) {
        auto* self = static_cast<SegmentDemuxer*>(gst_pad_get_element_private(pad));
        if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
            GstCaps* caps = nullptr;
            gst_event_parse_caps(event, &caps);
            self->caps_.set(caps);
        }
        gst_event_unref(event);
        return TRUE;
    }

    FrameFn onFrame_;
    GstPtr<GstElement> pipeline_;
    GstElement* demux_ = nullptr;  // owned by pipeline_
    GstElement* parse_ = nullptr;
    GstElement* filter_ = nullptr;
    GstPtr<GstPad> src_;
    GstPtr<GstPad> sink_;
    CapsRef caps_;
    std::uint64_t offset_ = 0;
    std::exception_ptr failure_;
};

}  // namespace

void lowerThreadPriority() {
    const id_t tid = static_cast<id_t>(currentTid());
    errno = 0;
    const int current = getpriority(PRIO_PROCESS, tid);
    if (errno == 0 && current < kRetrievalNice && setpriority(PRIO_PROCESS, tid, kRetrievalNice) != 0)
        common::logWarning("retrieval", "cannot lower the extract thread's priority: {}", std::strerror(errno));
}

ExtractResult extractMp4(const recorder::SegmentStore& store, UtcMicros from, UtcMicros to,
                         const ByteSink& sink) {
    if (to <= from) throw ExtractError("empty range");
    initGstreamer();
    const std::vector<recorder::SegmentInfo> segments = store.list(from, to);
    if (segments.empty()) throw ExtractError("no footage in the requested range");

    ExtractResult result;
    Muxer muxer(sink);
    std::optional<UtcMicros> base;
    GopFilter gops(from, to, [&](std::vector<Frame>& gop, UtcMicros end, GstCaps* caps) {
        muxer.setCaps(caps);
        if (!base) {
            base = gop.front().pts;
            result.actualFrom = gop.front().pts;
        }
        muxer.push(gop, end, *base);
        result.actualTo = end;
    });

    for (const recorder::SegmentInfo& segment : segments) {
        std::optional<GstClockTime> firstPts;
        SegmentDemuxer demuxer([&](GstBuffer* buffer, GstCaps* caps) {
            if (!caps) throw ExtractError(fmt::format("segment {}: no stream format", segment.sequence));
            const GstClockTime pts = GST_BUFFER_PTS(buffer);
            if (!GST_CLOCK_TIME_IS_VALID(pts)) {
                gst_buffer_unref(buffer);
                return;  // cannot be placed in time
            }
            GstClockTime dts = GST_BUFFER_DTS(buffer);
            if (!GST_CLOCK_TIME_IS_VALID(dts)) dts = pts;
            if (!firstPts) firstPts = pts;
            // UTC of a frame: the segment's start plus its distance from the segment's first frame.
            auto toUtc = [&](GstClockTime t) {
                return segment.start + (static_cast<UtcMicros>(t) - static_cast<UtcMicros>(*firstPts)) /
                                           static_cast<UtcMicros>(GST_USECOND);
            };
            const bool keyframe = !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
            gops.add(Frame{BufferRef(buffer), toUtc(pts), toUtc(dts)}, keyframe, caps);
        });
        const std::optional<std::string> readError =
            store.read(segment, [&](std::span<const std::uint8_t> ts) { demuxer.push(ts); });
        if (readError) throw ExtractError(fmt::format("segment {}: {}", segment.sequence, *readError));
        demuxer.finish();
        gops.close(segment.end);
        ++result.segments;
    }
    if (muxer.frames() == 0) throw ExtractError("no footage in the requested range");
    muxer.finish();
    result.frames = muxer.frames();
    result.bytes = muxer.bytes();
    return result;
}

}  // namespace mimamori::retrieval

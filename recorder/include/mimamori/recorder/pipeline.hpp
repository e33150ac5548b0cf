// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The capture pipeline: source -> raw I420/NV12 -> privacy masks in place -> H.264 -> MPEG-TS.
// GStreamer types stay inside recorder/src; this header speaks in plain structs and callbacks.
#pragma once

#include "mimamori/common/result.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/recorder/still_tap.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace mimamori::recorder {

// The masks in force, swappable at run time (SIGHUP). Thread-safe: the streaming thread asks
// for a raster per frame, the main thread replaces the set.
class MaskState {
public:
    explicit MaskState(masking::MaskSet masks);

    // Installs a new, already validated set. The raster for the geometry the stream last used
    // is built here, on the caller's thread, before the swap: the streaming thread never
    // waits for a rebuild caused by a reload.
    void replace(masking::MaskSet masks);

    // The raster for this geometry; rebuilt (on the calling streaming thread) only when the
    // negotiated caps changed. Never null.
    [[nodiscard]] std::shared_ptr<const masking::RasterMask> rasterFor(int width, int height,
                                                         masking::PixelFormat format);
    [[nodiscard]] std::string sha256Hex() const;
    [[nodiscard]] std::size_t maskCount() const;

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const masking::MaskSet> masks_;
    std::shared_ptr<const masking::RasterMask> raster_;  // null until the first frame
};

// Counters the pipeline updates from its streaming threads; read from any thread.
struct PipelineCounters {
    std::atomic<std::uint64_t> framesIn{0};      // raw frames that reached the mask stage
    std::atomic<std::uint64_t> framesMasked{0};  // frames masked and passed to the encoder
    std::atomic<std::uint64_t> framesOut{0};     // encoded frames leaving the encoder
    std::atomic<std::uint64_t> maskFailures{0};  // frames dropped because masking was impossible
};

// Called on a streaming thread for every MPEG-TS buffer. `bytes` lives only for the call.
// `runningNs` is the buffer's pipeline running time (-1 when unknown); `keyframeStart` is true
// for the first packet (PAT) of the group that holds a keyframe: a segment may start there.
// Must not block for long; may throw (the trampoline turns it into a pipeline error).
using TsCallback =
    std::function<void(std::span<const std::uint8_t> bytes, std::int64_t runningNs,
                       bool keyframeStart)>;

// Called on the main-loop thread once when the pipeline stops on its own: `endOfStream` for a
// finished file or test source, otherwise `reason` says what failed ("source lost: ...").
using StopCallback = std::function<void(bool endOfStream, const std::string& reason)>;

// The gst-launch description of the source followed by `downstream` (which receives raw video;
// the test source appends its branches after it). Tests use it to produce reference frames,
// the benchmark to build its baseline.
[[nodiscard]] std::string sourceDescription(const SourceConfig& source, const std::string& downstream);
// The encoder part: "<element> <properties>" with the defaults filled in for x264enc.
[[nodiscard]] std::string encoderDescription(const EncoderConfig& encoder);
// The default x264enc settings for a watch camera (see docs/config.md).
extern const char* const kDefaultX264Properties;
// Seconds between keyframes when encoder.keyframe_interval_frames is 0. A static street scene
// costs most of its bits in keyframes; an extract still covers its range to within one GOP.
inline constexpr double kDefaultKeyframeSeconds = 10.0;

// Throws std::runtime_error naming the first GStreamer element the config needs that is not
// installed. Used by --check-config and before the first start.
void checkElementsAvailable(const RecorderConfig& config);

// One instance of the pipeline; built, played, and destroyed (set to NULL) as a whole. The
// recorder builds a fresh one after a source loss. Must be created and destroyed on the
// thread running the default GLib main context (its bus watch is dispatched there).
class CapturePipeline {
public:
    // `stills` (may be null) is offered frames at the mask stage while a still is asked for.
    CapturePipeline(const RecorderConfig& config, std::shared_ptr<MaskState> masks,
                    PipelineCounters& counters, TsCallback onTs, StopCallback onStop,
                    std::shared_ptr<StillTap> stills = nullptr);
    ~CapturePipeline();
    CapturePipeline(const CapturePipeline&) = delete;
    CapturePipeline& operator=(const CapturePipeline&) = delete;

    // Sets the pipeline playing. Returns an error when it cannot start (e.g. the camera device
    // is missing); the caller then treats it as a lost source.
    [[nodiscard]] common::Result<void> start();
    // Sends end-of-stream and waits (up to `timeoutMs`) until the last TS bytes were delivered,
    // so the current segment can be finished cleanly. Returns false on timeout.
    [[nodiscard]] bool drain(int timeoutMs);
    // Stops at once (state NULL); no callback runs after this returns.
    void stop();
    // Running time just after the last encoded frame seen, or -1.
    [[nodiscard]] std::int64_t lastFrameEndNs() const { return lastFrameEndNs_.load(); }

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
    std::atomic<std::int64_t> lastFrameEndNs_{-1};
};

}  // namespace mimamori::recorder

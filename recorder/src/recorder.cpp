// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder: pipeline lifecycle on the GLib main loop, the segmenter and its writing thread,
// retention enforcement, mask reloads and the health record.
#include "mimamori/recorder/recorder.hpp"

#include "gst_util.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/recorder/health.hpp"
#include "mimamori/recorder/pipeline.hpp"
#include "mimamori/store/segment_store.hpp"
#include "mimamori/store/shred_tally.hpp"

#include <fmt/format.h>
#include <glib-unix.h>
#include <glib.h>
#include <sys/resource.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <optional>
#include <thread>

namespace mimamori::recorder {
namespace {

constexpr const char* kLog = "recorder";
constexpr int kFirstRetryMs = 1000;
constexpr int kMaxRetryMs = 30000;
constexpr int kDrainTimeoutMs = 5000;
// Not (yet) a constant of policy::audit: the recorder is the only writer of this entry.
constexpr std::string_view kKeyRatchetFailed = "key_ratchet_failed";
// Descriptors the recorder itself needs at most at once: the segment being written and its
// directory, a recovery's source and copy, the index, health and key files' temporary files,
// the audit log, the ring lock, and GStreamer's pipes and sockets.
constexpr rlim_t kRecorderDescriptors = 64;

// Network clients must never take the descriptors the recorder needs (docs/health.md): run
// with the soft RLIMIT_NOFILE raised to the hard limit, which the systemd unit sets with
// LimitNOFILE well above everything the network side may hold (the endpoint sizes its
// connection budget from this limit, keeping a reserve). Everything in the process waits with
// poll(2) or epoll(7), never select(2), so descriptors above 1023 are safe.
void raiseDescriptorLimit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    const rlim_t before = limit.rlim_cur;
    if (limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
    }
    if (limit.rlim_cur < 4 * kRecorderDescriptors)
        common::logWarning(kLog, "only {} file descriptors (RLIMIT_NOFILE); the unit sets LimitNOFILE=65536",
                           limit.rlim_cur);
    else if (limit.rlim_cur != before)
        common::logInfo(kLog, "file descriptors: soft limit raised from {} to {}", before, limit.rlim_cur);
}
// How far before the nominal cut a keyframe still closes the segment. Keyframes are asked for
// on the segment's pace in presentation time, but the TS carries them at their decode time,
// which B-frames put a few frames earlier, except for the very first keyframe (its decode time
// cannot go below the stream's start). So allow half a keyframe interval, at most 0.5 s: enough
// for any B-frame delay, and never so much that an earlier keyframe would cut a segment short.
UtcMicros cutTolerance(const RecorderConfig& config) {
    const double interval = config.encoder.keyframeIntervalFrames > 0
                                ? double(config.encoder.keyframeIntervalFrames) / config.source.framerate
                                : std::min(kDefaultKeyframeSeconds, config.segmentSeconds);
    return std::min<UtcMicros>(500'000, static_cast<UtcMicros>(interval * 1e6 / 2));
}

// Bytes of TS between two hand-overs to the writing thread. A batch starts at a keyframe group
// or wherever the writer last took the queue's tail.
struct Batch {
    bool flush = false;     // finish the open segment at `end` (source stopped)
    bool keyStart = false;  // begins with the PAT of a keyframe group: a segment may start here
    UtcMicros start = 0;
    UtcMicros end = 0;      // UTC of the last packet in the batch (or the flush time)
    std::vector<std::uint8_t> bytes;
    // Footage from here to `start` was dropped because the queue was full: a gap.
    std::optional<UtcMicros> droppedFrom;
    std::uint64_t droppedFrames = 0;
};

// Bounded hand-over from the appsink (streaming thread) to the writing thread. The streaming
// thread only appends under a short lock; when the disk falls behind and the bound is hit, it
// drops whole keyframe groups (a partial group would not decode) and counts them.
class WriteQueue {
public:
    explicit WriteQueue(std::size_t limitBytes) : limit_(limitBytes) {}

    void pushTs(std::span<const std::uint8_t> ts, UtcMicros t, bool keyStart) {
        bool wake = false;
        {
            std::lock_guard lock(mutex_);
            if (closed_) return;
            if (keyStart) dropping_ = false;
            if (dropping_ || queuedBytes_ + ts.size() > limit_) {
                if (!dropping_) ++dropEpisodes_;
                if (!droppedFrom_) droppedFrom_ = lastAccepted_.value_or(t);
                dropping_ = true;
                if (t != lastDroppedTime_) {
                    ++droppedFrames_;
                    ++droppedSinceGap_;
                }
                lastDroppedTime_ = t;
                return;
            }
            if (keyStart || queue_.empty() || queue_.back().flush) {
                queue_.push_back(Batch{false, keyStart, t, t, {}, {}, 0});
                queue_.back().bytes.reserve(64 * 1024);
                takeDropped(queue_.back());
                wake = true;
            }
            Batch& batch = queue_.back();
            batch.bytes.insert(batch.bytes.end(), ts.begin(), ts.end());
            batch.end = t;
            lastAccepted_ = t;
            queuedBytes_ += ts.size();
        }
        if (wake) cv_.notify_one();
    }

    void pushFlush(UtcMicros end) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(Batch{true, false, end, end, {}, {}, 0});
            takeDropped(queue_.back());
            dropping_ = false;
            lastAccepted_.reset();
        }
        cv_.notify_one();
    }

    // Blocks until a batch is there; partial batches are taken after a short wait so bytes
    // reach the store (and its once-a-second sync) promptly. False once closed and empty.
    bool pop(Batch& out) {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (queue_.empty()) {
                if (closed_) return false;
                cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
                continue;
            }
            bool complete = queue_.size() > 1 || queue_.front().flush || closed_;
            // One open batch: let it grow for a moment, then take it as it is.
            if (!complete &&
                cv_.wait_for(lock, std::chrono::milliseconds(100),
                             [&] { return closed_ || queue_.size() > 1; }))
                continue;
            out = std::move(queue_.front());
            queue_.pop_front();
            queuedBytes_ -= out.bytes.size();
            return true;
        }
    }

    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        cv_.notify_all();
    }

    std::uint64_t droppedFrames() const {
        std::lock_guard lock(mutex_);
        return droppedFrames_;
    }
    // How many times the bound was hit (each time whole keyframe groups were dropped).
    std::uint64_t dropEpisodes() const {
        std::lock_guard lock(mutex_);
        return dropEpisodes_;
    }

private:
    // Hands the footage dropped since the last accepted batch to `batch` (as a gap before it).
    void takeDropped(Batch& batch) {
        if (!droppedFrom_) return;
        batch.droppedFrom = droppedFrom_;
        batch.droppedFrames = droppedSinceGap_;
        droppedFrom_.reset();
        droppedSinceGap_ = 0;
    }

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Batch> queue_;
    std::size_t limit_;
    std::size_t queuedBytes_ = 0;
    bool dropping_ = false;
    bool closed_ = false;
    std::uint64_t droppedFrames_ = 0;
    std::uint64_t dropEpisodes_ = 0;
    UtcMicros lastDroppedTime_ = -1;
    std::optional<UtcMicros> lastAccepted_;  // end of the last footage queued
    std::optional<UtcMicros> droppedFrom_;   // set while footage is being dropped
    std::uint64_t droppedSinceGap_ = 0;
};

// Maps one pipeline's running time to UTC: anchored to the wall clock once, at its first
// buffer, and never before the end of what was recorded already. After that only running
// time counts, so a wall-clock step (NTP, LTE) never reorders or overlaps footage.
class TimeMap {
public:
    void reset(UtcMicros floor) {
        std::lock_guard lock(mutex_);
        set_ = false;
        floor_ = floor;
    }

    // Streaming thread. Returns the UTC and whether this was the first buffer.
    std::pair<UtcMicros, bool> map(std::int64_t runningNs, const common::Clock& clock) {
        std::lock_guard lock(mutex_);
        bool first = false;
        if (!set_) {
            base_ = std::max(clock.nowUtc(), floor_);
            firstNs_ = std::max<std::int64_t>(runningNs, 0);
            last_ = base_;
            set_ = first = true;
        }
        UtcMicros t = runningNs >= 0 ? base_ + (runningNs - firstNs_) / 1000 : last_;
        last_ = std::max(t, last_);
        return {last_, first};
    }

    std::optional<UtcMicros> endFor(std::int64_t runningNs) const {
        std::lock_guard lock(mutex_);
        if (!set_) return std::nullopt;
        UtcMicros t = runningNs >= 0 ? base_ + (runningNs - firstNs_) / 1000 : last_;
        return std::max(t, last_);
    }

    std::optional<UtcMicros> last() const {
        std::lock_guard lock(mutex_);
        if (!set_) return std::nullopt;
        return last_;
    }

    UtcMicros floor() const {
        std::lock_guard lock(mutex_);
        return set_ ? std::max(last_, floor_) : floor_;
    }

private:
    mutable std::mutex mutex_;
    bool set_ = false;
    std::int64_t firstNs_ = 0;
    UtcMicros base_ = 0;
    UtcMicros last_ = 0;
    UtcMicros floor_ = 0;
};

}  // namespace

struct Recorder::Impl {
    RecorderConfig config;
    const common::Clock& clock;
    RecorderOptions options;
    store::SegmentStore* store;  // borrowed from the composition root, outlives the recorder
    std::shared_ptr<MaskState> masks;
    std::shared_ptr<StillTap> stills = std::make_shared<StillTap>();  // lent to each pipeline
    PipelineCounters counters;
    Health health;
    WriteQueue queue;
    TimeMap time;

    // Main-loop thread only.
    std::unique_ptr<CapturePipeline> pipeline;
    std::function<void()> onEnded;  // the source ended under exitAtEndOfStream
    std::vector<guint> timers;      // enforcement and health, while started
    bool running = false;   // start() was called
    bool finished = false;  // stop() ran
    guint retryTimer = 0;
    int backoffMs = kFirstRetryMs;
    bool stopping = false;
    int exitCode = 0;
    bool healthWriteFailed = false;
    std::optional<std::int64_t> lastRatchetLogMono;  // monotonic; empty until first logged
    std::uint64_t loggedDropEpisodes = 0;
    std::atomic<bool> framesFlowing{false};
    policy::AuditLog* audit = nullptr;  // borrowed; null when the daemon keeps no audit log
    // For the service manager's readiness and watchdog (Recorder::progress()).
    std::atomic<std::uint64_t> segmentsBegun{0};
    std::atomic<std::uint64_t> writesStored{0};
    store::ShredTally shredTally;       // main-loop thread only (retention runs)

    // Writing thread only.
    std::thread writerThread;
    std::unique_ptr<store::SegmentWriter> writer;
    UtcMicros segmentStart = 0;
    UtcMicros segmentLastEnd = 0;
    // While the store refuses writes (EMFILE, ENOSPC, EIO): where the lost footage starts and
    // why. Footage is lost from the end of the last chunk that reached the card until the next
    // segment is begun and written.
    struct WriteGap {
        UtcMicros start = 0;
        std::string reason;
    };
    std::optional<WriteGap> writeGap;
    UtcMicros lostFrom = 0;  // where footage is lost if the operation under way fails
    UtcMicros handedEnd = 0; // end of the newest footage handed to this thread, written or not

    Impl(RecorderConfig c, masking::MaskSet m, store::SegmentStore& st, policy::AuditLog* a, const common::Clock& k,
         RecorderOptions o)
        : config(std::move(c)), clock(k), options(o), store(&st),
          masks(std::make_shared<MaskState>(std::move(m))),
          health(config.stateDir / "health.json", config.store.cameraId, k.nowUtc()),
          queue(o.queueLimitBytes), audit(a), shredTally(config.stateDir / "shred-tally", k) {}

    FrameCounts frameCounts() const {
        return {counters.framesIn.load(), counters.framesOut.load(), counters.maskFailures.load(),
                queue.droppedFrames()};
    }

    // Main-loop or writing thread (the audit log is thread-safe). An audit write failure (card
    // or flash full) is logged, never fatal: recording has priority over its own paperwork.
    void record(std::string_view type, const policy::AuditFields& fields) {
        if (!audit) return;
        try {
            audit->append(type, fields);
        } catch (const std::exception& e) {
            common::logError(kLog, "audit log: cannot record {}: {}", type, e.what());
        }
    }

    // ---- writing thread ---------------------------------------------------------------------

    void finishSegment(UtcMicros end) {
        if (!writer) return;
        auto open = std::move(writer);  // on a throw the writer is abandoned as after a crash
        store::SegmentInfo info;
        try {
            info = open->finish(std::max(end, segmentLastEnd));
        } catch (...) {
            lostFrom = open->writtenEnd();  // recovery keeps the chunks written before
            throw;
        }
        health.segmentWritten(info);
        common::logDebug(kLog, "segment {} {} .. {} ({} bytes)", info.sequence,
                         common::formatUtc(info.start), common::formatUtc(info.end),
                         info.bytesOnDisk);
    }

    void handle(Batch& batch) {
        handedEnd = std::max(handedEnd, batch.end);
        if (batch.droppedFrom) droppedGap(*batch.droppedFrom, batch.start, batch.droppedFrames);
        if (batch.flush) {
            finishSegment(batch.end);
            return;
        }
        if (batch.keyStart) {
            const auto length = static_cast<UtcMicros>(config.segmentSeconds * 1e6);
            if (writer && batch.start - segmentStart >= length - cutTolerance(config))
                finishSegment(batch.start);
            if (!writer) {
                lostFrom = batch.start;
                writer = store->beginSegment(batch.start);
                segmentStart = segmentLastEnd = batch.start;
                ++segmentsBegun;
            }
        }
        if (!writer) return;  // after a write failure: wait for the next keyframe
        try {
            writer->write(batch.bytes, batch.end);
        } catch (...) {
            lostFrom = writer->writtenEnd();
            throw;
        }
        segmentLastEnd = std::max(segmentLastEnd, batch.end);
        ++writesStored;
        if (writeGap) writeResumed(segmentStart);
    }

    // Writing thread: the store refused footage. The first failure opens a gap (health and
    // audit log); later failures while it lasts only count.
    void writeFailed(const std::exception& e) {
        health.segmentFailed();
        writer.reset();
        if (writeGap) {
            common::logError(kLog, "writing the segment failed again: {}", e.what());
            return;
        }
        writeGap = WriteGap{lostFrom, fmt::format("write failed: {}", e.what())};
        common::logError(kLog, "writing the segment failed: {}; footage from {} is lost until a new segment "
                               "starts at a keyframe",
                         e.what(), common::formatUtc(lostFrom));
        health.openGap(lostFrom, writeGap->reason);
        record(policy::audit::kRecordingGap,
               {{"start", common::formatUtc(lostFrom)}, {"reason", writeGap->reason}});
    }

    // Writing thread: a segment begun at `at` took its first write after failures.
    void writeResumed(UtcMicros at) {
        health.settleGap(writeGap->start, at, writeGap->reason);
        common::logInfo(kLog, "writing resumed at {}: {:.3f} s of footage lost since {}", common::formatUtc(at),
                        static_cast<double>(at - writeGap->start) / common::kMicrosPerSecond,
                        common::formatUtc(writeGap->start));
        writeGap.reset();
    }

    // Writing thread: the queue dropped [from, to) because the card could not keep up.
    void droppedGap(UtcMicros from, UtcMicros to, std::uint64_t frames) {
        const std::string reason = fmt::format("storage too slow: {} frames dropped", frames);
        health.addGap(from, to, reason);
        record(policy::audit::kRecordingGap,
               {{"start", common::formatUtc(from)}, {"end", common::formatUtc(to)}, {"reason", reason}});
    }

    void writerLoop() {
        Batch batch;
        while (queue.pop(batch)) {
            try {
                handle(batch);
            } catch (const std::exception& e) {
                writeFailed(e);
            }
        }
        try {
            finishSegment(segmentLastEnd);
        } catch (const std::exception& e) {
            common::logError(kLog, "finishing the last segment failed: {}", e.what());
            writeFailed(e);
        }
        // Stopping while writes fail: the gap ends with the recording.
        if (writeGap) health.settleGap(writeGap->start, std::max(handedEnd, writeGap->start), writeGap->reason);
    }

    // ---- streaming thread -------------------------------------------------------------------

    void onTs(std::span<const std::uint8_t> bytes, std::int64_t runningNs, bool keyStart) {
        auto [utc, first] = time.map(runningNs, clock);
        if (first) {
            framesFlowing = true;
            health.closeGap(utc);
            health.setState("recording");
            common::logInfo(kLog, "recording: first frame at {}", common::formatUtc(utc));
        }
        queue.pushTs(bytes, utc, keyStart);
    }

    // ---- main-loop thread -------------------------------------------------------------------

    void startPipeline() {
        if (stopping) return;
        UtcMicros floor = time.floor();
        time.reset(floor);
        framesFlowing = false;
        std::optional<std::string> failure;  // why the source could not start
        try {
            pipeline = std::make_unique<CapturePipeline>(
                config, masks, counters,
                [this](std::span<const std::uint8_t> b, std::int64_t ns, bool key) { onTs(b, ns, key); },
                [this](bool eos, const std::string& reason) { onPipelineStopped(eos, reason); }, stills);
            const common::Result<void> started = pipeline->start();
            if (!started) failure = started.error();
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure) return;
        pipeline.reset();
        sourceLost(std::nullopt, "source lost: " + *failure);
    }

    // Records the gap and schedules the next attempt with back-off (1 s doubling to 30 s).
    void sourceLost(std::optional<UtcMicros> end, const std::string& reason) {
        const UtcMicros gapStart = end ? *end : std::max(clock.nowUtc(), time.floor());
        if (!health.gapOpen())
            record(policy::audit::kRecordingGap, {{"start", common::formatUtc(gapStart)}, {"reason", reason}});
        health.openGap(gapStart, reason);
        health.setState("waiting for source");
        common::logWarning(kLog, "{}; retrying in {} s", reason, backoffMs / 1000.0);
        if (retryTimer) g_source_remove(retryTimer);
        retryTimer = g_timeout_add(static_cast<guint>(backoffMs), &Impl::onRetryTimer, this);
        backoffMs = std::min(backoffMs * 2, kMaxRetryMs);
    }

    // Called from the pipeline's bus watch: the pipeline may not be destroyed here, so the
    // teardown runs from an idle callback.
    void onPipelineStopped(bool eos, const std::string& reason) {
        if (stopping) return;
        std::optional<UtcMicros> end =
            eos ? time.endFor(pipeline ? pipeline->lastFrameEndNs() : -1) : time.last();
        if (end) queue.pushFlush(*end);
        if (eos) common::logInfo(kLog, "the source ended");
        if (framesFlowing) backoffMs = kFirstRetryMs;
        if (eos && options.exitAtEndOfStream) {
            stopping = true;
            g_idle_add(&Impl::onIdleEnded, this);
            return;
        }
        g_idle_add(&Impl::onIdleTeardown, this);
        sourceLost(end, reason);
    }

    void stopRecording() {
        if (stopping) return;
        stopping = true;
        common::logInfo(kLog, "stopping: finishing the current segment");
        if (retryTimer) {
            g_source_remove(retryTimer);
            retryTimer = 0;
        }
        if (pipeline) {
            bool drained = pipeline->drain(kDrainTimeoutMs);
            if (!drained) common::logWarning(kLog, "the pipeline did not drain in time");
            auto end = drained ? time.endFor(pipeline->lastFrameEndNs()) : time.last();
            pipeline->stop();
            pipeline.reset();
            if (end) queue.pushFlush(*end);
        }
    }

    common::Result<void> reloadMasks() {
        common::logInfo(kLog, "reloading masks from {}", config.maskFile.string());
        std::string refusal;
        try {
            masking::MaskSet set = masking::loadMaskFile(config.maskFile);
            if (set.camera != config.store.cameraId)
                throw std::runtime_error("the file is for camera \"" + set.camera + "\", not \"" +
                                         config.store.cameraId + "\"");
            std::string sha = set.sha256Hex;
            std::size_t count = set.masks.size();
            const std::string oldSha = masks->sha256Hex();
            masks->replace(std::move(set));
            if (sha != oldSha)
                record(policy::audit::kMaskChanged, {{"old_hash", oldSha}, {"new_hash", sha},
                                                     {"masks", static_cast<std::int64_t>(count)}});
            health.setMasks(sha, count);
            common::logInfo(kLog, "masks reloaded: {} masks, sha256 {}", count, sha);
            return common::success();
        } catch (const masking::MaskFileError& e) {
            for (const auto& finding : e.findings())
                common::logError(kLog, "mask reload refused: {}: {}", e.source(), finding.toString());
            refusal = e.findings().empty() ? std::string(e.what())
                                           : e.source() + ": " + e.findings().front().toString();
        } catch (const std::exception& e) {
            common::logError(kLog, "mask reload refused: {}", e.what());
            refusal = e.what();
        }
        common::logError(kLog, "keeping the previous masks (sha256 {})", masks->sha256Hex());
        return common::Error{"mask reload refused: " + refusal + "; the previous masks stay in force"};
    }

    void enforce() {
        try {
            auto result = store->enforce();
            if (!result.deleted.empty()) {
                common::logInfo(kLog, "deleted {} segments ({}), {} .. {}", result.deleted.size(),
                                result.reason, common::formatUtc(result.deleted.front().start),
                                common::formatUtc(result.deleted.back().end));
            }
            if (result.keyAdvances) common::logInfo(kLog, "advanced the day key {} time(s)", result.keyAdvances);
            // One audit entry per shredded day, not per run: a full ring deletes every 30 s, and
            // a log that lasts years must hold a few entries a day (docs/audit-log.md).
            const auto shredded = shredTally.add(result);
            for (const store::ShreddedDay& day : shredded)
                record(policy::audit::kDayShredded, {{"day", store::ShredTally::dayText(day.day)},
                                                     {"segments", static_cast<std::int64_t>(day.segments)},
                                                     {"bytes", static_cast<std::int64_t>(day.bytes)},
                                                     {"reasons", day.reasons}});
            if (!shredded.empty()) saveShredTally();
            keyRatchetChecked(result);
            // A retention shortfall is logged by the store itself, once an hour.
            health.setStorage(store->usage());
        } catch (const std::exception& e) {
            common::logError(kLog, "retention enforcement failed: {}", e.what());
        }
    }

    void saveShredTally() {
        try {
            shredTally.save();
        } catch (const std::exception& e) {
            common::logError(kLog, "cannot save the count of deleted segments: {}", e.what());
        }
    }

    // A ratchet that cannot advance leaves expired footage decryptable: never silently. The
    // health record says so at once, the audit log once per episode (when it can still be
    // written), the daemon's log once an hour; every enforcement retries.
    void keyRatchetChecked(const store::SegmentStore::Enforcement& result) {
        const KeyRatchetHealth before = health.keyRatchet();
        KeyRatchetHealth now;
        now.day = result.keyDay;
        now.targetDay = result.keyTargetDay;
        now.failing = result.keyError.has_value();
        if (now.failing) {
            now.error = *result.keyError;
            now.failingSince = before.failing && before.failingSince ? before.failingSince : clock.nowUtc();
            const auto mono = clock.monotonicMicros();
            if (!before.failing || !lastRatchetLogMono || mono - *lastRatchetLogMono >= 3600 * common::kMicrosPerSecond) {
                lastRatchetLogMono = mono;
                common::logError(kLog, "the day key cannot advance ({} days behind): footage past retention "
                                       "stays decryptable: {}",
                                 now.targetDay - now.day, now.error);
            }
        }
        health.setKeyRatchet(now);
        if (now.failing && !before.failing) {
            record(kKeyRatchetFailed,
                   {{"day", common::formatUtc(now.day * common::kMicrosPerDay).substr(0, 10)},
                    {"target_day", common::formatUtc(now.targetDay * common::kMicrosPerDay).substr(0, 10)},
                    {"error", now.error}});
            writeHealth();
        } else if (!now.failing && before.failing) {
            common::logInfo(kLog, "the day key advances again");
        }
    }

    void writeHealth() {
        // The streaming thread never logs a drop itself (it must not wait on stderr).
        if (auto episodes = queue.dropEpisodes(); episodes != loggedDropEpisodes) {
            loggedDropEpisodes = episodes;
            common::logWarning(kLog, "the storage could not keep up: {} frames dropped so far",
                               queue.droppedFrames());
        }
        try {
            health.write(frameCounts(), clock.nowUtc());
            healthWriteFailed = false;
        } catch (const std::exception& e) {
            if (!healthWriteFailed) common::logError(kLog, "cannot write health: {}", e.what());
            healthWriteFailed = true;
        }
    }

    // ---- GLib trampolines (never throw into C) ----------------------------------------------

    template <typename F>
    static gboolean guarded(const char* what, F&& f) noexcept {
        try {
            return f();
        } catch (const std::exception& e) {
            common::logError(kLog, "{}: {}", what, e.what());
        } catch (...) {
            common::logError(kLog, "{}: unknown exception", what);
        }
        return G_SOURCE_CONTINUE;
    }

    static gboolean onRetryTimer(gpointer p) noexcept {
        auto* self = static_cast<Impl*>(p);
        return guarded("retry", [&] {
            self->retryTimer = 0;
            self->pipeline.reset();
            common::logInfo(kLog, "starting the source again");
            self->startPipeline();
            return G_SOURCE_REMOVE;
        });
    }
    static gboolean onIdleTeardown(gpointer p) noexcept {
        auto* self = static_cast<Impl*>(p);
        return guarded("teardown", [&] {
            self->pipeline.reset();
            return G_SOURCE_REMOVE;
        });
    }
    static gboolean onIdleEnded(gpointer p) noexcept {
        auto* self = static_cast<Impl*>(p);
        return guarded("end", [&] {
            self->pipeline.reset();
            if (self->onEnded) self->onEnded();
            return G_SOURCE_REMOVE;
        });
    }
    static gboolean onEnforceTimer(gpointer p) noexcept {
        auto* self = static_cast<Impl*>(p);
        return guarded("enforce", [&] {
            self->enforce();
            return G_SOURCE_CONTINUE;
        });
    }
    static gboolean onHealthTimer(gpointer p) noexcept {
        auto* self = static_cast<Impl*>(p);
        return guarded("health", [&] {
            self->writeHealth();
            return G_SOURCE_CONTINUE;
        });
    }
};

Recorder::Recorder(RecorderConfig config, masking::MaskSet masks, store::SegmentStore& store,
                   policy::AuditLog* audit, const common::Clock& clock, RecorderOptions options) {
    raiseDescriptorLimit();
    std::filesystem::create_directories(config.stateDir);
    checkElementsAvailable(config);
    impl_ = std::make_unique<Impl>(std::move(config), std::move(masks), store, audit, clock, options);
    Impl& r = *impl_;
    r.health.setMasks(r.masks->sha256Hex(), r.masks->maskCount());

    // Continue after what the ring holds; the time the recorder was down is a gap.
    auto segments = r.store->all();
    UtcMicros now = clock.nowUtc();
    if (!segments.empty()) {
        UtcMicros lastEnd = segments.back().end;
        for (const auto& gap : r.health.gaps())
            if (gap.end) lastEnd = std::max(lastEnd, *gap.end);
        r.time.reset(segments.back().end);
        if (now - lastEnd > 2 * common::kMicrosPerSecond)
            r.health.openGap(lastEnd, "recorder not running");
    }
    common::logInfo(kLog,
                    "camera {}: {} source, {} masks (sha256 {}), {} segments in {}, retention {} "
                    "days",
                    r.config.store.cameraId, r.config.source.kind, r.masks->maskCount(),
                    r.masks->sha256Hex(), segments.size(), r.config.store.storageDir.string(),
                    r.config.store.retentionDays);
}

Recorder::~Recorder() {
    if (!impl_) return;
    if (impl_->running) {
        (void)stop();
        return;
    }
    impl_->pipeline.reset();
    impl_->queue.close();
    if (impl_->writerThread.joinable()) impl_->writerThread.join();
}

std::string Recorder::maskSha256() const { return impl_->masks->sha256Hex(); }

common::Result<void> Recorder::reloadMasks() { return impl_->reloadMasks(); }

StillTap& Recorder::stills() { return *impl_->stills; }

Recorder::Progress Recorder::progress() const {
    return {impl_->segmentsBegun.load(), impl_->writesStored.load()};
}

bool Recorder::waitingForSource() const { return impl_->retryTimer != 0; }

std::string Recorder::healthSummary() const { return impl_->health.summary(); }

void Recorder::start(std::function<void()> onEnded) {
    Impl& r = *impl_;
    if (r.running) throw std::logic_error("Recorder::start() called twice");
    r.running = true;
    r.onEnded = std::move(onEnded);
    r.timers = {
        g_timeout_add_seconds(static_cast<guint>(r.options.enforceIntervalSeconds), &Impl::onEnforceTimer, &r),
        g_timeout_add_seconds(static_cast<guint>(r.options.healthIntervalSeconds), &Impl::onHealthTimer, &r),
    };
    r.writerThread = std::thread([&r] { r.writerLoop(); });
    r.enforce();
    r.writeHealth();
    r.startPipeline();
}

int Recorder::stop() {
    Impl& r = *impl_;
    if (!r.running || r.finished) return r.exitCode;
    r.finished = true;
    r.stopRecording();
    for (guint id : r.timers) g_source_remove(id);
    r.timers.clear();
    if (r.retryTimer) g_source_remove(r.retryTimer);
    r.retryTimer = 0;
    r.pipeline.reset();
    r.queue.close();
    r.writerThread.join();
    r.saveShredTally();
    // A gap still open at a clean stop ends now; the next start opens "recorder not running".
    r.health.closeGap(std::max(r.clock.nowUtc(), r.time.floor()));
    r.health.setState("stopped");
    try {
        r.health.setStorage(r.store->usage());
    } catch (const std::exception& e) {
        common::logError(kLog, "reading storage use failed: {}", e.what());
    }
    r.writeHealth();
    common::logInfo(kLog, "stopped");
    return r.exitCode;
}

}  // namespace mimamori::recorder

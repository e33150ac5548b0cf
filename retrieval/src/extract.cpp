// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Extracting a range from the ring: segments read, demuxed and cut into whole GOPs on a thread
// of the extract's own, handed over in GOP batches to the calling thread, which writes MP4.
#include "mimamori/retrieval/extract.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/retrieval/fmp4.hpp"
#include "mimamori/retrieval/h264.hpp"
#include "mimamori/retrieval/ts_demux.hpp"

#include <fmt/format.h>

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <algorithm>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mimamori::retrieval {
namespace {

constexpr int kRetrievalNice = 10;
// MP4 bytes queued between the threads. The extract's memory is this, plus the GOP being cut
// (held whole until its end is known) and the fragment being written (at most one GOP or 4 MiB):
// a few MB for the recorder's GOPs of a few seconds.
constexpr std::size_t kQueueBytes = 4u << 20;
constexpr std::int64_t kTicksPerSecond = FragmentedMp4Writer::kTimescale;
// A frame duration to fall back on when an extract holds a single frame before a gap.
constexpr std::int64_t kFallbackFrameTicks = kTicksPerSecond / 15;
// Bounds on one segment's timestamps (hostile or broken footage): a frame presented this long
// after its decoding, or decoded this long after the previous frame, makes the segment damaged.
constexpr std::int64_t kMaxCompositionTicks = 10 * kTicksPerSecond;
constexpr std::int64_t kMaxFrameTicks = 60 * kTicksPerSecond;
// A GOP is held whole until its end is known; beyond this it is refused (damaged footage).
constexpr std::size_t kMaxGopBytes = std::size_t{64} << 20;

pid_t currentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
    const std::int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
UtcMicros ticksToMicros(std::int64_t ticks) { return floorDiv(ticks * 100, 9); }
std::int64_t microsToTicks(UtcMicros us) { return floorDiv(us * 9, 100); }

// Thrown on the reading thread when the muxing side has given up; never leaves the extract.
struct Abandoned {};

// A replay found footage that differs from its recipe. Not an ExtractError, so that the
// reader's per-segment damage handling cannot take it for damage and carry on.
struct Changed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One access unit on its way, length-prefixed, with its times.
struct Frame {
    std::vector<std::uint8_t> data;
    UtcMicros ptsUtc = 0;      // where the GOP cut happens
    std::int64_t pts = 0;      // 90 kHz ticks since the epoch: the segment's start + TS distance
    std::int64_t dts = 0;
    std::int64_t nominal = 0;  // the frame duration in force (0: not known yet)
    std::size_t segment = 0;   // index in the extract's segment list
    bool keyframe = false;
    bool repaired = false;     // its recorded DTS (or PTS) was moved to keep the order valid
    std::uint32_t description = 1;  // its GOP's stream format: 1-based, as in the MP4's stsd
    std::shared_ptr<const ParameterSets> parameterSets;  // in force when it was decoded
};

// What the reading thread hands over: the stream formats first, then samples.
struct Batch {
    bool start = false;                 // the first batch: carries what the moov needs
    std::vector<ParameterSets> formats;  // with `start`: every stream format in the extract
    std::uint32_t startOffset = 0;      // with `start`: the first keyframe's composition offset
    std::vector<Mp4Sample> samples;
    std::size_t bytes = 0;
};

// A bounded hand-over between one producer and one consumer. The producer blocks while more
// than `maxBytes` wait (a batch larger than that still passes alone).
class BatchQueue {
public:
    explicit BatchQueue(std::size_t maxBytes) : maxBytes_(maxBytes) {}

    // Producer. False once the consumer abandoned the extract.
    bool push(Batch batch) {
        std::unique_lock lock(mutex_);
        notFull_.wait(lock, [&] { return abandoned_ || bytes_ == 0 || bytes_ + batch.bytes <= maxBytes_; });
        if (abandoned_) return false;
        bytes_ += batch.bytes;
        queue_.push_back(std::move(batch));
        notEmpty_.notify_one();
        return true;
    }
    // Producer: no more batches; `error` is rethrown to the consumer (before queued batches).
    void close(std::exception_ptr error = nullptr) {
        std::lock_guard lock(mutex_);
        closed_ = true;
        error_ = std::move(error);
        notEmpty_.notify_all();
    }
    // Consumer: the next batch, or nothing after close(); rethrows the producer's error.
    std::optional<Batch> pop() {
        std::unique_lock lock(mutex_);
        notEmpty_.wait(lock, [&] { return !queue_.empty() || closed_; });
        if (error_) std::rethrow_exception(error_);
        if (queue_.empty()) return std::nullopt;
        Batch batch = std::move(queue_.front());
        queue_.pop_front();
        bytes_ -= batch.bytes;
        notFull_.notify_one();
        return batch;
    }
    // Consumer: stop the producer at its next push.
    void abandon() {
        std::lock_guard lock(mutex_);
        abandoned_ = true;
        notFull_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable notFull_;
    std::condition_variable notEmpty_;
    std::deque<Batch> queue_;
    std::size_t bytes_ = 0;
    const std::size_t maxBytes_;
    bool closed_ = false;
    bool abandoned_ = false;
    std::exception_ptr error_;
};

std::string describe(const ParameterSets& ps) {
    try {
        const SpsInfo s = parseSps(ps.sps.at(0));
        return fmt::format("{}x{} profile {} level {}", s.width, s.height, s.profileIdc, s.levelIdc);
    } catch (const std::exception&) {
        return "unreadable SPS";
    }
}

// Places kept frames on the MP4's timeline (time 0 = the first kept keyframe's presentation)
// and batches them for the muxer. A frame lasts until the next one, except before a recording
// gap and at the end, where it lasts the frame duration in force. Decode times must grow: a
// segment that starts before the previous one ended (the clock stepped back) is moved to
// follow it.
//
// Without a queue it only scans: it records the stream format of every GOP it is given (the
// MP4's sample entries, which the moov lists before the first sample) and passes nothing on.
class Timeline {
public:
    Timeline() = default;
    Timeline(BatchQueue& queue, std::vector<std::shared_ptr<const ParameterSets>> formats)
        : queue_(&queue), formats_(std::move(formats)) {}

    void addGop(std::vector<Frame>& gop) {
        const Frame& key = gop.front();
        if (!key.parameterSets || key.parameterSets->sps.empty() || key.parameterSets->pps.empty())
            throw ExtractError("no SPS and PPS before the first keyframe");
        const std::uint32_t description = formatOf(key);
        if (!queue_) return;
        if (!started_) {
            started_ = true;
            firstDts_ = key.dts;
            batch_.start = true;
            for (const auto& f : formats_) batch_.formats.push_back(*f);
            if (key.pts - key.dts < 0 || key.pts - key.dts > std::numeric_limits<std::int32_t>::max())
                throw ExtractError(fmt::format("a keyframe at {}: PTS and DTS too far apart", common::formatUtc(key.ptsUtc)));
            batch_.startOffset = static_cast<std::uint32_t>(key.pts - key.dts);
        }
        if (formats_.size() > 1) inBand(gop.front());
        for (Frame& f : gop) {
            f.description = description;
            add(std::move(f));
        }
        flushBatch();
    }

    const std::vector<std::shared_ptr<const ParameterSets>>& formats() const { return formats_; }

    void finish() {
        if (pending_) {
            const std::int64_t duration = nominal(*pending_);
            out(std::move(*pending_), duration);
            pending_.reset();
        }
        flushBatch();
    }

    std::uint64_t frames() const { return frames_; }
    std::uint64_t repairs() const { return repairs_; }

private:
    // Several formats (an avc3 sample entry): the keyframe carries its SPS and PPS in-band,
    // length-prefixed like its other NAL units, before them (14496-10 7.4.1.2.3 order).
    static void inBand(Frame& key) {
        std::vector<std::uint8_t> data;
        auto put = [&](const std::vector<std::uint8_t>& nal) {
            const auto n = static_cast<std::uint32_t>(nal.size());
            for (const int shift : {24, 16, 8, 0}) data.push_back(static_cast<std::uint8_t>(n >> shift));
            data.insert(data.end(), nal.begin(), nal.end());
        };
        for (const auto& sps : key.parameterSets->sps) put(sps);
        for (const auto& pps : key.parameterSets->pps) put(pps);
        data.insert(data.end(), key.data.begin(), key.data.end());
        key.data = std::move(data);
    }

    // The 1-based stream format of the GOP opened by `key`. Scanning adds formats not seen yet.
    std::uint32_t formatOf(const Frame& key) {
        for (std::size_t i = 0; i < formats_.size(); ++i)
            if (formats_[i] == key.parameterSets || *formats_[i] == *key.parameterSets)
                return static_cast<std::uint32_t>(i + 1);
        if (queue_ || formats_.size() >= FragmentedMp4Writer::kMaxFormats)
            throw ExtractError(fmt::format("a stream format change to {} at {}: more than {} stream formats in the range",
                                           describe(*key.parameterSets), common::formatUtc(key.ptsUtc),
                                           FragmentedMp4Writer::kMaxFormats));
        FragmentedMp4Writer::checkFormat(*key.parameterSets);  // fails here, where the segment is known
        formats_.push_back(key.parameterSets);
        return static_cast<std::uint32_t>(formats_.size());
    }

    static std::int64_t nominal(const Frame& f) { return f.nominal > 0 ? f.nominal : kFallbackFrameTicks; }

    void add(Frame f) {
        if (pending_) {
            const std::int64_t step = nominal(*pending_);
            if (f.segment != pending_->segment && f.segment != shiftedSegment_) {
                const std::int64_t expected = pending_->dts + step;
                shift_ = f.dts + step / 2 < expected ? expected - f.dts : 0;  // overlap: butt-join
                shiftedSegment_ = f.segment;
            }
            if (f.segment == shiftedSegment_) {
                f.pts += shift_;
                f.dts += shift_;
            }
            const std::int64_t delta = f.dts - pending_->dts;
            const bool continuous = f.segment == pending_->segment || std::abs(delta - step) <= step / 2;
            out(std::move(*pending_), continuous ? delta : step);
        } else {
            shiftedSegment_ = f.segment;
            shift_ = 0;
        }
        pending_ = std::move(f);
    }

    void out(Frame f, std::int64_t duration) {
        if (duration <= 0 || duration > std::numeric_limits<std::int32_t>::max())
            throw ExtractError(fmt::format("a frame at {} lasts {} ticks", common::formatUtc(f.ptsUtc), duration));
        const std::int64_t offset = f.pts - f.dts;
        if (std::abs(offset) > std::numeric_limits<std::int32_t>::max())
            throw ExtractError(fmt::format("a frame at {}: PTS and DTS too far apart", common::formatUtc(f.ptsUtc)));
        Mp4Sample s;
        s.decodeTime = static_cast<std::uint64_t>(f.dts - firstDts_);
        s.duration = static_cast<std::uint32_t>(duration);
        s.compositionOffset = static_cast<std::int32_t>(offset);
        s.keyframe = f.keyframe;
        s.description = f.description;
        s.data = std::move(f.data);
        batch_.bytes += s.data.size();
        batch_.samples.push_back(std::move(s));
        ++frames_;
        if (f.repaired) ++repairs_;
    }

    void flushBatch() {
        if (!queue_ || (batch_.samples.empty() && !batch_.start)) return;
        if (!queue_->push(std::exchange(batch_, Batch{}))) throw Abandoned{};
    }

    BatchQueue* queue_ = nullptr;
    std::vector<std::shared_ptr<const ParameterSets>> formats_;
    bool started_ = false;
    std::int64_t firstDts_ = 0;
    std::optional<Frame> pending_;
    std::size_t shiftedSegment_ = 0;
    std::int64_t shift_ = 0;
    Batch batch_;
    std::uint64_t frames_ = 0;
    std::uint64_t repairs_ = 0;
};

// Collects whole GOPs and passes on those overlapping [from, to). A segment normally begins
// with an IDR picture; one that does not (an encoder with intra refresh, whose forced
// keyframes are recovery points) continues the GOP of the segment before it, since the
// recorder cut both out of one stream.
class GopFilter {
public:
    GopFilter(UtcMicros from, UtcMicros to, Timeline& timeline) : from_(from), to_(to), timeline_(timeline) {}

    void add(Frame frame) {
        if (frame.keyframe) {
            close(segmentEnd_ ? *segmentEnd_ : frame.ptsUtc);
            gopStart_ = frame.ptsUtc;
        } else if (gop_.empty()) {
            return;  // no keyframe yet to decode it from
        }
        segmentEnd_.reset();
        if (gopBytes_ + frame.data.size() > kMaxGopBytes)
            throw ExtractError(fmt::format("a GOP of more than {} MiB from {} (no IDR picture since)",
                                           kMaxGopBytes >> 20, common::formatUtc(gopStart_)));
        gopBytes_ += frame.data.size();
        gop_.push_back(std::move(frame));
    }
    // A segment begins at `start`: nothing of it has been read yet.
    void beginSegment(UtcMicros start) { soundTo_ = start; }
    // The segment read to its end at `end`; its last GOP ends there unless the next segment
    // continues it.
    void endSegment(UtcMicros end) {
        segmentEnd_ = end;
        lastSegmentEnd_ = end;
        soundTo_ = end;
    }
    // After the last segment.
    void finish() {
        if (segmentEnd_) close(*segmentEnd_);
    }
    // The segment `index` turned out damaged: the GOP being collected is lost with it, except
    // for what earlier segments put in it (then closed where they ended). Returns where the
    // sound footage of the segment ends (the end of its last whole GOP, or its start).
    UtcMicros abandonSegment(std::size_t index, UtcMicros segmentStart) {
        const auto own = std::find_if(gop_.begin(), gop_.end(), [&](const Frame& f) { return f.segment == index; });
        gop_.erase(own, gop_.end());
        if (!gop_.empty()) close(std::min(lastSegmentEnd_, segmentStart));
        gop_.clear();
        gopBytes_ = 0;
        segmentEnd_.reset();
        return soundTo_;
    }
    // Ends the current GOP at `end` (the next keyframe's time, or where its last segment ended).
    void close(UtcMicros end) {
        if (!gop_.empty()) {
            if (end > from_ && gopStart_ < to_) {
                timeline_.addGop(gop_);
                if (!actualFrom_) actualFrom_ = gopStart_;
                actualTo_ = end;
            }
            gop_.clear();
            gopBytes_ = 0;
        }
        soundTo_ = end;
    }
    std::optional<UtcMicros> actualFrom() const { return actualFrom_; }
    UtcMicros actualTo() const { return actualTo_; }
    UtcMicros from() const { return from_; }
    UtcMicros to() const { return to_; }

private:
    UtcMicros from_;
    UtcMicros to_;
    Timeline& timeline_;
    std::vector<Frame> gop_;
    UtcMicros gopStart_ = 0;
    std::optional<UtcMicros> actualFrom_;
    UtcMicros actualTo_ = 0;
    UtcMicros soundTo_ = 0;
    std::optional<UtcMicros> segmentEnd_;  // set between segments while the last GOP may go on
    UtcMicros lastSegmentEnd_ = 0;
    std::size_t gopBytes_ = 0;
};

// The reading thread's work: decrypt, demux and cut every segment, in order. A segment that
// cannot be read is left out from its last whole GOP on and named as a gap.
class SegmentReader {
public:
    // `timeline` scans or emits (see Timeline); only an emitting pass logs the damage it finds.
    // With `expectedGaps` (a replay), a segment must fail exactly where it failed before.
    SegmentReader(const store::SegmentStore& store, const std::vector<store::SegmentInfo>& segments,
                  UtcMicros from, UtcMicros to, Timeline& timeline, bool emitting,
                  const std::vector<FootageGap>* expectedGaps = nullptr)
        : store_(store), segments_(segments), timeline_(timeline), gops_(from, to, timeline_), emitting_(emitting),
          expectedGaps_(expectedGaps) {}

    void run(ExtractResult& result) {
        for (std::size_t i = 0; i < segments_.size(); ++i) {
            readSegment(i, result);
            ++result.segments;
        }
        gops_.finish();
        timeline_.finish();
        result.frames = timeline_.frames();
        result.timestampRepairs = timeline_.repairs();
        if (gops_.actualFrom()) {
            result.actualFrom = *gops_.actualFrom();
            result.actualTo = gops_.actualTo();
        } else {
            // Nothing sound in the range: say why, segment by segment.
            throw ExtractError(damage_.empty() ? std::string("no footage in the requested range")
                                               : "no sound footage in the requested range: " + damage_);
        }
    }

private:
    void readSegment(std::size_t index, ExtractResult& result) {
        const store::SegmentInfo& segment = segments_[index];
        gops_.beginSegment(segment.start);
        try {
            demuxSegment(index);
        } catch (const ExtractError& e) {
            // Everything up to the last whole GOP was sound and is kept; the rest of the
            // segment is a gap. Only the part inside the requested range is worth naming.
            const UtcMicros lostFrom = std::max(gops_.abandonSegment(index, segment.start), gops_.from());
            const UtcMicros lostTo = std::min(std::max(segment.end, lostFrom), gops_.to());
            if (expectedGaps_) {
                const FootageGap now{segment.sequence, lostFrom, lostTo, e.what()};
                const bool planned = lostTo <= lostFrom ? !expectedGapIn(segment.sequence)
                                                        : std::find(expectedGaps_->begin(), expectedGaps_->end(),
                                                                    now) != expectedGaps_->end();
                if (!planned)
                    throw Changed(fmt::format("segment {} ({}) no longer reads as when the extract was hashed: {}",
                                              segment.sequence, common::formatUtc(segment.start), e.what()));
            }
            if (emitting_)
                common::logWarning("retrieval", "segment {} ({}) left out of the extract: {}", segment.sequence,
                                   common::formatUtc(segment.start), e.what());
            if (lostTo > lostFrom) result.gaps.push_back({segment.sequence, lostFrom, lostTo, e.what()});
            damage_ += fmt::format("{}segment {} ({}): {}", damage_.empty() ? "" : "; ", segment.sequence,
                                   common::formatUtc(segment.start), e.what());
            parameterSets_.reset();  // what the damaged segment set is not to be trusted
            return;
        }
        if (expectedGaps_ && expectedGapIn(segment.sequence))
            throw Changed(fmt::format("segment {} ({}) was damaged when the extract was hashed and now reads",
                                      segment.sequence, common::formatUtc(segment.start)));
    }

    bool expectedGapIn(std::uint64_t sequence) const {
        return std::any_of(expectedGaps_->begin(), expectedGaps_->end(),
                           [&](const FootageGap& g) { return g.segment == sequence; });
    }

    void demuxSegment(std::size_t index) {
        const store::SegmentInfo& segment = segments_[index];
        const std::int64_t startTicks = microsToTicks(segment.start);
        std::optional<std::int64_t> firstPts;
        std::optional<std::int64_t> lastDts;
        std::int64_t rebase = 0;  // added to the segment's times after its clock stepped back
        std::exception_ptr failure;
        TsDemuxer demuxer([&](const TsAccessUnit& au) {
            Frame f;
            // A scanning pass needs only the keyframes and parameter sets: the samples are
            // converted into one reused buffer and not kept.
            scratch_.clear();
            const AvccAccessUnit avcc = annexBToAvcc(au.data, emitting_ ? f.data : scratch_);
            if (!avcc.parameterSets.empty()) {
                auto next = std::make_shared<ParameterSets>(parameterSets_ ? *parameterSets_ : ParameterSets{});
                if (!avcc.parameterSets.sps.empty()) next->sps = avcc.parameterSets.sps;
                if (!avcc.parameterSets.pps.empty()) next->pps = avcc.parameterSets.pps;
                if (!parameterSets_ || *next != *parameterSets_) parameterSets_ = std::move(next);
            }
            // A frame's UTC: the segment's start plus its distance from the segment's first frame.
            if (!firstPts) firstPts = au.pts;
            std::int64_t pts = tsTimeDiff(au.pts, *firstPts) + rebase;
            std::int64_t dts = tsTimeDiff(au.dts, *firstPts) + rebase;
            if (std::abs(pts - dts) > kMaxCompositionTicks)
                throw ExtractError(fmt::format("PTS and DTS {} ticks apart (TS byte {})", pts - dts, au.offset));
            if (lastDts) {
                if (dts - *lastDts > kMaxFrameTicks)
                    throw ExtractError(fmt::format("decode time jumps {} ticks ahead (TS byte {})", dts - *lastDts,
                                                   au.offset));
                if (dts <= *lastDts) {
                    // As ffmpeg's muxers do: the smallest move that keeps decode times increasing.
                    // A step back of more than a frame is the stream's clock restarting: the rest
                    // of the segment continues one frame after the previous one instead.
                    const std::int64_t step = nominal_ > 0 ? nominal_ : kFallbackFrameTicks;
                    if (*lastDts - dts > step) {
                        const std::int64_t move = *lastDts + step - dts;
                        rebase += move;
                        dts += move;
                        pts += move;
                    } else {
                        dts = *lastDts + 1;
                    }
                    f.repaired = true;
                } else {
                    nominal_ = dts - *lastDts;
                }
            }
            if (pts < dts) {  // never presented before it is decoded
                pts = dts;
                f.repaired = true;
            }
            lastDts = dts;
            f.ptsUtc = segment.start + ticksToMicros(pts);
            f.pts = startTicks + pts;
            f.dts = startTicks + dts;
            f.nominal = nominal_;
            f.segment = index;
            f.keyframe = avcc.keyframe;
            f.parameterSets = parameterSets_;
            gops_.add(std::move(f));
        });
        const common::Result<void> read = store_.read(segment, [&](std::span<const std::uint8_t> ts) {
            if (failure) return;  // the rest of a segment that already failed
            try {
                demuxer.push(ts);
            } catch (...) {
                failure = std::current_exception();
            }
        });
        if (failure) std::rethrow_exception(failure);
        if (!read) throw ExtractError(read.error());
        demuxer.finish(segment.recovered);
        gops_.endSegment(segment.end);
    }

    const store::SegmentStore& store_;
    const std::vector<store::SegmentInfo>& segments_;
    Timeline& timeline_;
    GopFilter gops_;
    bool emitting_;
    std::shared_ptr<const ParameterSets> parameterSets_;
    std::int64_t nominal_ = 0;
    std::string damage_;  // every damaged segment, for the error when nothing is sound
    std::vector<std::uint8_t> scratch_;
    const std::vector<FootageGap>* expectedGaps_;
};

}  // namespace

void lowerThreadPriority() {
    const id_t tid = static_cast<id_t>(currentTid());
    errno = 0;
    const int current = getpriority(PRIO_PROCESS, tid);
    if (errno == 0 && current < kRetrievalNice && setpriority(PRIO_PROCESS, tid, kRetrievalNice) != 0)
        common::logWarning("retrieval", "cannot lower the extract thread's priority: {}", std::strerror(errno));
}

namespace {

// Both passes of an extract (or, with `replay`, only the second), the reading thread beside the
// calling one.
ExtractResult runExtract(const store::SegmentStore& store, UtcMicros from, UtcMicros to,
                         const std::vector<store::SegmentInfo>& segments, const ExtractRecipe* replay,
                         const ByteSink& sink) {
    ExtractResult result;
    BatchQueue queue(kQueueBytes);
    std::thread readingThread([&] {
        try {
            pthread_setname_np(pthread_self(), "extract-reader");
            lowerThreadPriority();
            // Two passes over the range: the first finds every stream format (the moov lists
            // them before the first sample), the second hands the samples over. A replay takes
            // the formats from its recipe.
            std::vector<std::shared_ptr<const ParameterSets>> formats;
            if (replay) {
                for (const ParameterSets& f : replay->formats) formats.push_back(std::make_shared<const ParameterSets>(f));
            } else {
                Timeline scan;
                ExtractResult scanned;
                SegmentReader(store, segments, from, to, scan, false).run(scanned);
                formats = scan.formats();
            }
            for (const auto& f : formats) result.recipe.formats.push_back(*f);
            Timeline timeline(queue, std::move(formats));
            SegmentReader(store, segments, from, to, timeline, true, replay ? &replay->gaps : nullptr).run(result);
            queue.close();
        } catch (const Abandoned&) {
            queue.close();
        } catch (const Changed& e) {
            queue.close(std::make_exception_ptr(ExtractError(e.what())));
        } catch (...) {
            queue.close(std::current_exception());
        }
    });
    std::optional<FragmentedMp4Writer> mp4;
    try {
        while (std::optional<Batch> batch = queue.pop()) {
            if (batch->start) mp4.emplace(sink, batch->formats, batch->startOffset);
            for (Mp4Sample& s : batch->samples) mp4->add(std::move(s));
        }
        if (!mp4) throw ExtractError("no footage in the requested range");  // the reader says why first
        mp4->finish();
    } catch (...) {
        queue.abandon();
        readingThread.join();
        throw;
    }
    readingThread.join();
    result.bytes = mp4->bytes();
    result.recipe.segments = segments;
    result.recipe.gaps = result.gaps;
    return result;
}

bool sameSegment(const store::SegmentInfo& a, const store::SegmentInfo& b) {
    return a.sequence == b.sequence && a.start == b.start && a.end == b.end && a.bytesOnDisk == b.bytesOnDisk;
}

}  // namespace

ExtractResult extractMp4(const store::SegmentStore& store, UtcMicros from, UtcMicros to,
                         const ByteSink& sink) {
    if (to <= from) throw ExtractError("empty range");
    const std::vector<store::SegmentInfo> segments = store.list(from, to);
    if (segments.empty()) throw ExtractError("no footage in the requested range");
    return runExtract(store, from, to, segments, nullptr, sink);
}

ExtractResult replayMp4(const store::SegmentStore& store, UtcMicros from, UtcMicros to,
                        const ExtractRecipe& recipe, const ByteSink& sink) {
    if (to <= from) throw ExtractError("empty range");
    if (recipe.segments.empty() || recipe.formats.empty()) throw ExtractError("an empty recipe");
    // The ring must list exactly the recipe's segments, as they were; a segment the recorder
    // finished since (a range reaching the newest footage) would change the MP4 too.
    const std::vector<store::SegmentInfo> listed = store.list(from, to);
    for (const store::SegmentInfo& planned : recipe.segments) {
        const auto it = std::find_if(listed.begin(), listed.end(),
                                     [&](const store::SegmentInfo& s) { return s.sequence == planned.sequence; });
        if (it == listed.end())
            throw ExtractError(fmt::format("segment {} ({}) is no longer in the ring", planned.sequence,
                                           common::formatUtc(planned.start)));
        if (!sameSegment(*it, planned))
            throw ExtractError(fmt::format("segment {} ({}) is not the one the extract was hashed from",
                                           planned.sequence, common::formatUtc(planned.start)));
    }
    if (listed.size() != recipe.segments.size())
        throw ExtractError(fmt::format("the ring lists {} segments in the range, the extract was hashed from {}",
                                       listed.size(), recipe.segments.size()));
    // Read through the ring's current descriptions (paths), now known to match the recipe's.
    return runExtract(store, from, to, listed, &recipe, sink);
}

}  // namespace mimamori::retrieval

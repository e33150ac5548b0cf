// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The encrypted ring: segment writers, recovery at open, the in-memory index, retention, capacity.
#include "mimamori/store/segment_store.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/policy/retention.hpp"
#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/segment_format.hpp"

#include "segment_store_index.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mimamori::store {
namespace {

namespace fs = std::filesystem;
using common::kMicrosPerDay;
using common::kMicrosPerSecond;

constexpr std::string_view kLog = "ring";
constexpr const char* kLockName = "ring.lock";
// The bitrate behind "days the capacity holds" is taken over this much recent footage.
constexpr UtcMicros kBitrateWindow = 6 * 3600 * kMicrosPerSecond;
constexpr std::int64_t kShortfallLogInterval = 3600 * kMicrosPerSecond;

std::string errnoText() { return std::strerror(errno); }

// Normalised absolute path without a trailing separator, resolving symlinks of what exists.
fs::path canonicalDir(const fs::path& p) {
    fs::path out = fs::weakly_canonical(fs::absolute(p));
    if (!out.has_filename() && out.has_parent_path()) out = out.parent_path();
    return out;
}

bool isInsideOrSame(const fs::path& inner, const fs::path& outer) {
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
        if (i == inner.end() || *i != *o) return false;
    return true;
}

void validate(const StoreConfig& c) {
    std::vector<std::string> problems;
    if (c.cameraId.empty()) problems.push_back("camera id is empty");
    if (c.cameraId.size() > format::kCameraIdBytes)
        problems.push_back(fmt::format("camera id is longer than {} bytes", format::kCameraIdBytes));
    if (c.storageDir.empty()) problems.push_back("storage directory is empty");
    if (c.keyDir.empty()) problems.push_back("key directory is empty");
    if (c.retentionDays < 1 || c.retentionDays > policy::kRetentionCeilingDays)
        problems.push_back(fmt::format("retention of {} days is outside 1..{} (the policy's ceiling)",
                                       c.retentionDays, policy::kRetentionCeilingDays));
    if (c.syncIntervalMicros <= 0) problems.push_back("sync interval must be positive");
    if (!problems.empty()) {
        std::string text = "segment store: ";
        for (std::size_t i = 0; i < problems.size(); ++i) text += (i ? "; " : "") + problems[i];
        throw std::invalid_argument(text);
    }
}

// What the store keeps per finished segment; the file name follows from sequence and start.
using Entry = IndexEntry;

struct Orphan {
    fs::path partPath;
    fs::path finalPath;
    std::int64_t keyDay = 0;
};

// State shared by the store and its writers (a writer may finish after enforce() ran).
struct Core {
    Core(const StoreConfig& c, const common::Clock& k, bool ro) : config(c), clock(k), readOnly(ro) {}

    const StoreConfig config;
    const common::Clock& clock;
    const bool readOnly;
    common::UniqueFd lock;
    // Store time: monotonic, anchored once at open (see docs/segment-format.md, "Time").
    UtcMicros anchorStore = 0;
    std::int64_t anchorMono = 0;

    mutable std::mutex mutex;                // guards everything below
    std::optional<KeyRatchet> ratchet;
    std::map<std::uint64_t, Entry> segments;  // finished segments by sequence
    std::uint64_t totalBytes = 0;
    std::multiset<std::int64_t> liveKeyDays;  // key days of open writers and unrecovered orphans
    std::vector<Orphan> orphans;
    std::uint64_t nextSequence = 1;
    std::size_t partialOnDisk = 0;            // read-only stores: .part files seen at open
    std::optional<RingIndex> index;
    std::size_t indexRecords = 0;             // records in the index file, live or stale
    std::int64_t lastShortfallLog = INT64_MIN;
    std::vector<std::string> findings;        // set once by open()

    UtcMicros storeNow() const { return anchorStore + (clock.monotonicMicros() - anchorMono); }

    std::optional<common::SecureBuffer> keyFor(const format::FileHeader& h) const {
        if (!ratchet) return std::nullopt;
        return ratchet->segmentKey(h.keyDay, h.sequence);
    }

    fs::path pathOf(const Entry& e) const {
        return config.storageDir / format::segmentFileName(e.sequence, e.start, format::kFinalSuffix);
    }

    SegmentInfo info(const Entry& e) const {
        return SegmentInfo{e.sequence, e.start, e.end, e.bytes, pathOf(e), e.recovered, e.keyDay};
    }

    void add(const Entry& e) {
        totalBytes += e.bytes;
        // Entries mostly arrive in sequence order: the hint makes that insertion O(1).
        segments.insert_or_assign(segments.end(), e.sequence, e);
    }

    void indexAppend(const Entry& e) {
        if (!index) return;
        try {
            index->append(e);
            ++indexRecords;
        } catch (const common::FileError& error) {
            // The index is a cache: the next open decrypts this one segment instead.
            common::logWarning(kLog, "index append failed: {}", error.what());
        }
    }

    // Rewrites the index as exactly the live segments (one atomic file of 64 bytes each).
    void indexRewrite() {
        std::vector<IndexEntry> entries;
        entries.reserve(segments.size());
        for (const auto& [sequence, e] : segments) entries.push_back(e);
        index->rewrite(entries, nextSequence);
        indexRecords = entries.size() + 1;
    }

    // The log grows by one record per segment while deletions only make records stale:
    // compact it once stale records outnumber live ones (every ~retention of a full ring).
    bool indexNeedsCompaction(std::size_t records) const {
        return records > 2 * segments.size() + 1024;
    }

    void releaseKeyDay(std::int64_t day) {
        const auto it = liveKeyDays.find(day);
        if (it != liveKeyDays.end()) liveKeyDays.erase(it);
    }
};

Entry entryOf(const format::FileHeader& h, UtcMicros end, UtcMicros storeTime, std::uint64_t bytes, bool recovered) {
    return Entry{h.sequence, h.start, end, storeTime, h.keyDay, bytes, recovered};
}

// Decodes a whole finished file into an Entry; nullopt (with the reason) unless it is complete.
std::optional<Entry> entryOfCompleteFile(const Core& core, const fs::path& path, std::string& why) {
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        why = fmt::format("{}: {}", path.string(), errnoText());
        return std::nullopt;
    }
    const auto result = format::decodeSegment(
        fd.get(), path.filename().string(), [&](const format::FileHeader& h) { return core.keyFor(h); }, nullptr);
    if (result.error || !result.final || !result.header) {
        why = result.error.value_or("incomplete");
        return std::nullopt;
    }
    if (core.pathOf(entryOf(*result.header, 0, 0, 0, false)) != path) {
        why = fmt::format("{}: the name does not match its header", path.filename().string());
        return std::nullopt;
    }
    return entryOf(*result.header, result.final->end, result.final->storeTime, result.goodFileBytes,
                   (result.header->flags & format::kFlagRecovered) != 0);
}

void removeFile(const fs::path& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw common::FileError(fmt::format("{}: unlink: {}", path.string(), errnoText()));
    common::fsyncDirectory(path.parent_path());
}

// Brings a partial or damaged segment to a final, authentic file under its canonical name
// (from its header) holding every chunk up to the last authenticated one, or removes it when
// nothing in it authenticates. The rewrite goes through "<name>.rec" + fsync + rename, so a
// power cut during recovery leaves either the source or the finished result.
std::optional<Entry> recoverFile(const Core& core, const fs::path& source) {
    const fs::path dir = source.parent_path();
    const std::string name = source.filename().string();
    common::UniqueFd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) throw common::FileError(fmt::format("{}: {}", source.string(), errnoText()));
    auto keys = [&](const format::FileHeader& h) { return core.keyFor(h); };
    const auto scan = format::decodeSegment(in.get(), name, keys, nullptr);
    if (!scan.header || (!scan.final && scan.dataChunks == 0)) {
        removeFile(source);
        common::logWarning(kLog, "removed {}: nothing in it authenticates ({})", name,
                           scan.error.value_or("no data chunk"));
        return std::nullopt;
    }
    const format::FileHeader& original = *scan.header;
    const fs::path finalPath = core.pathOf(entryOf(original, 0, 0, 0, false));
    if (finalPath != source && fs::exists(finalPath)) {
        // Recovered before, but the power went before this copy was removed; or a stray copy.
        removeFile(source);
        common::logWarning(kLog, "removed {}: segment {} is already final", name, original.sequence);
        return std::nullopt;
    }

    if (scan.final && !scan.error) {
        // Sealed but not yet renamed when the power went: it is complete as it stands.
        if (::fsync(in.get()) != 0) throw common::FileError(fmt::format("{}: fsync: {}", name, errnoText()));
        if (source != finalPath && ::rename(source.c_str(), finalPath.c_str()) != 0)
            throw common::FileError(fmt::format("{}: rename: {}", name, errnoText()));
        common::fsyncDirectory(dir);
        common::logInfo(kLog, "completed {}: it was sealed before the interruption", name);
        return entryOf(original, scan.final->end, scan.final->storeTime, scan.goodFileBytes,
                       (original.flags & format::kFlagRecovered) != 0);
    }
    if (scan.dataChunks == 0 || !scan.lastPrefix) {
        removeFile(source);
        common::logWarning(kLog, "removed {}: nothing in it authenticates ({})", name,
                           scan.error.value_or("no data chunk"));
        return std::nullopt;
    }

    const fs::path temp = dir / format::segmentFileName(original.sequence, original.start, format::kRecoverySuffix);
    common::UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (!out.valid()) throw common::FileError(fmt::format("{}: {}", temp.string(), errnoText()));
    auto key = core.keyFor(original);
    if (!key) throw std::logic_error("recovery: key vanished between two passes");
    format::SegmentEncryptor encryptor(
        out.get(), temp.string(),
        format::makeHeader(format::cameraIdOf(original), original.sequence, original.start, original.keyDay,
                           original.flags | format::kFlagRecovered),
        *key);
    if (::lseek(in.get(), 0, SEEK_SET) != 0) throw common::FileError(fmt::format("{}: seek: {}", name, errnoText()));
    std::uint64_t copied = 0;
    format::ChunkPrefix last{};
    // What this second pass finds was judged by the scan above; only the count copied matters.
    (void)format::decodeSegment(in.get(), name, keys,
                          [&](const format::ChunkPrefix& prefix, std::span<const std::uint8_t> payload) {
                              if (copied == scan.dataChunks) return;
                              encryptor.writeChunk(prefix, payload);
                              last = prefix;
                              ++copied;
                          });
    if (copied != scan.dataChunks) throw common::FileError(fmt::format("{}: changed during recovery", name));
    const format::FinalRecord record{last.mediaEnd, last.storeTime, scan.payloadBytes, scan.dataChunks};
    encryptor.writeFinal(record);
    if (::fsync(out.get()) != 0) throw common::FileError(fmt::format("{}: fsync: {}", temp.string(), errnoText()));
    out.reset();
    if (::rename(temp.c_str(), finalPath.c_str()) != 0)
        throw common::FileError(fmt::format("{}: rename: {}", temp.string(), errnoText()));
    common::fsyncDirectory(dir);
    if (source != finalPath) removeFile(source);
    common::logWarning(kLog, "recovered {} as {}: {} chunks, {} TS bytes, footage up to {} ({})", name,
                       finalPath.filename().string(), scan.dataChunks, scan.payloadBytes,
                       common::formatUtc(last.mediaEnd), scan.error.value_or("no final chunk"));
    return entryOf(original, last.mediaEnd, last.storeTime, encryptor.bytesWritten(), true);
}

class Writer final : public SegmentWriter {
public:
    Writer(std::shared_ptr<Core> core, std::uint64_t sequence, UtcMicros start, std::int64_t keyDay,
           fs::path partPath, fs::path finalPath, common::UniqueFd fd, const common::SecureBuffer& key)
        : core_(std::move(core)), sequence_(sequence), start_(start), keyDay_(keyDay),
          partPath_(std::move(partPath)), finalPath_(std::move(finalPath)), fd_(std::move(fd)),
          encryptor_(fd_.get(), partPath_.string(),
                     format::makeHeader(core_->config.cameraId, sequence, start, keyDay, 0), key),
          claimedEnd_(start), writtenEnd_(start), lastMediaEnd_(start), lastSync_(core_->clock.monotonicMicros()) {
        buffer_.reserve(format::kMaxPayloadPerChunk);
    }

    ~Writer() override {
        if (state_ == State::Finished) return;
        fd_.reset();
        std::lock_guard lock(core_->mutex);
        core_->orphans.push_back(Orphan{partPath_, finalPath_, keyDay_});
        common::logWarning(kLog, "segment {} abandoned unfinished; enforce() will recover it",
                           partPath_.filename().string());
    }

    void write(std::span<const std::uint8_t> ts, UtcMicros mediaEnd) override {
        if (state_ != State::Open) throw std::logic_error("segment writer: write after finish or failure");
        try {
            std::size_t used = 0;
            while (used < ts.size()) {
                const std::size_t n = std::min(format::kMaxPayloadPerChunk - buffer_.size(), ts.size() - used);
                buffer_.insert(buffer_.end(), ts.begin() + static_cast<std::ptrdiff_t>(used),
                               ts.begin() + static_cast<std::ptrdiff_t>(used + n));
                used += n;
                if (used == ts.size()) writeEnds_.push_back(WriteEnd{buffer_.size(), mediaEnd});
                if (buffer_.size() == format::kMaxPayloadPerChunk) sealFront(buffer_.size());
            }
            lastMediaEnd_ = mediaEnd;
            if (core_->clock.monotonicMicros() - lastSync_ >= core_->config.syncIntervalMicros) {
                sync(sealForSync());
            }
        } catch (...) {
            state_ = State::Failed;
            throw;
        }
    }

    SegmentInfo finish(UtcMicros end) override {
        if (state_ != State::Open) throw std::logic_error("segment writer: finish after finish or failure");
        format::FinalRecord record{};
        try {
            if (!buffer_.empty()) sealFront(buffer_.size());
            record = format::FinalRecord{end, core_->storeNow(), payloadBytes_, dataChunks_};
            encryptor_.writeFinal(record);
            writtenEnd_ = end;  // a sealed file is kept whole, even if the fsync or rename fails
            if (::fsync(fd_.get()) != 0)
                throw common::FileError(fmt::format("{}: fsync: {}", partPath_.string(), errnoText()));
            fd_.reset();
            if (::rename(partPath_.c_str(), finalPath_.c_str()) != 0)
                throw common::FileError(fmt::format("{}: rename: {}", partPath_.string(), errnoText()));
            common::fsyncDirectory(finalPath_.parent_path());
        } catch (...) {
            state_ = State::Failed;
            throw;
        }
        state_ = State::Finished;
        const Entry e{sequence_, start_, end, record.storeTime, keyDay_, encryptor_.bytesWritten(), false};
        std::lock_guard lock(core_->mutex);
        core_->add(e);
        core_->releaseKeyDay(keyDay_);
        core_->indexAppend(e);
        return core_->info(e);
    }

    UtcMicros writtenEnd() const override { return writtenEnd_; }

private:
    enum class State { Open, Finished, Failed };

    // Seals the first `n` buffered TS bytes as one chunk. The chunk claims the end time of the
    // last write it holds whole, so a recovered segment never claims footage it does not hold.
    void sealFront(std::size_t n) {
        std::size_t whole = 0;
        while (whole < writeEnds_.size() && writeEnds_[whole].offset <= n) ++whole;
        if (whole > 0) claimedEnd_ = writeEnds_[whole - 1].mediaEnd;
        encryptor_.writeChunk(format::ChunkPrefix{claimedEnd_, core_->storeNow()},
                              std::span<const std::uint8_t>(buffer_.data(), n));
        writtenEnd_ = claimedEnd_;
        payloadBytes_ += n;
        ++dataChunks_;
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
        writeEnds_.erase(writeEnds_.begin(), writeEnds_.begin() + static_cast<std::ptrdiff_t>(whole));
        for (auto& w : writeEnds_) w.offset -= n;
        unsynced_ = true;
    }

    // Before an fdatasync: seal the buffer so that the file ends on a block boundary when that
    // holds back only the newest few bytes. A sync that ends mid-block writes that block again at
    // the next sync: at about 1 Mbit/s and one sync a second that rewrite alone costs 3-4% more
    // bytes on the card. The bytes held back (under one block) go out with the next chunk; they
    // are sealed at once when they hold more than a quarter of a sync interval of footage.
    // Returns the footage held back, in microseconds.
    std::int64_t sealForSync() {
        if (buffer_.empty()) return 0;
        const std::uint64_t fileEnd = encryptor_.bytesWritten() + format::kChunkOverheadBytes;
        const std::uint64_t aligned = (fileEnd + buffer_.size()) / kBlockBytes * kBlockBytes;
        std::size_t n = buffer_.size();
        if (aligned > fileEnd) {
            const auto candidate = static_cast<std::size_t>(aligned - fileEnd);
            UtcMicros claimed = claimedEnd_;
            for (const auto& w : writeEnds_)
                if (w.offset <= candidate) claimed = w.mediaEnd;
            if (lastMediaEnd_ - claimed <= core_->config.syncIntervalMicros / 4) n = candidate;
        }
        sealFront(n);
        return buffer_.empty() ? 0 : lastMediaEnd_ - claimedEnd_;
    }

    // `heldBack` microseconds of footage stay unsynced: the next sync comes that much earlier,
    // so no footage waits longer than the sync interval.
    void sync(std::int64_t heldBack) {
        if (unsynced_ && ::fdatasync(fd_.get()) != 0)
            throw common::FileError(fmt::format("{}: fdatasync: {}", partPath_.string(), errnoText()));
        unsynced_ = false;
        lastSync_ = core_->clock.monotonicMicros() - heldBack;
    }

    std::shared_ptr<Core> core_;
    std::uint64_t sequence_;
    UtcMicros start_;
    std::int64_t keyDay_;
    fs::path partPath_;
    fs::path finalPath_;
    common::UniqueFd fd_;
    format::SegmentEncryptor encryptor_;
    // Where each write ended in buffer_, with its media end time (for the chunks' claims).
    struct WriteEnd {
        std::size_t offset;
        UtcMicros mediaEnd;
    };
    static constexpr std::uint64_t kBlockBytes = 4096;  // page and ext4/FAT block size

    std::vector<std::uint8_t> buffer_;
    std::vector<WriteEnd> writeEnds_;
    UtcMicros claimedEnd_;   // what the last sealed chunk claimed
    UtcMicros writtenEnd_;   // what the last chunk written whole claimed
    UtcMicros lastMediaEnd_;
    std::int64_t lastSync_;
    std::uint64_t payloadBytes_ = 0;
    std::uint64_t dataChunks_ = 0;
    bool unsynced_ = false;
    State state_ = State::Open;
};

// Names in one arena: a ring of 100k files is listed without 100k small allocations.
struct DirListing {
    struct Name {
        std::uint64_t sequence;
        std::size_t offset, length;
    };
    std::string arena;
    std::vector<Name> finals, parts;
    std::vector<std::string> stale;  // leftovers of an interrupted recovery

    std::string_view name(const Name& n) const { return std::string_view(arena).substr(n.offset, n.length); }
    void add(std::vector<Name>& to, std::uint64_t sequence, std::string_view name) {
        to.push_back(Name{sequence, arena.size(), name.size()});
        arena.append(name);
    }
};

DirListing scanDirectory(const fs::path& dir) {
    DirListing out;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) throw common::FileError(fmt::format("{}: {}", dir.string(), errnoText()));
    for (;;) {
        errno = 0;
        const dirent* e = ::readdir(d.get());
        if (e == nullptr) {
            if (errno != 0) throw common::FileError(fmt::format("{}: readdir: {}", dir.string(), errnoText()));
            break;
        }
        const std::string_view name(e->d_name);
        if (auto s = format::parseSegmentFileName(name, format::kFinalSuffix)) out.add(out.finals, *s, name);
        else if (auto p = format::parseSegmentFileName(name, format::kPartialSuffix)) out.add(out.parts, *p, name);
        else if (format::parseSegmentFileName(name, format::kRecoverySuffix)) out.stale.emplace_back(name);
    }
    auto bySequence = [](const DirListing::Name& x, const DirListing::Name& y) { return x.sequence < y.sequence; };
    std::sort(out.finals.begin(), out.finals.end(), bySequence);
    std::sort(out.parts.begin(), out.parts.end(), bySequence);
    return out;
}

std::optional<std::uint64_t> freeBytes(const fs::path& dir) {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

class Store final : public SegmentStore {
public:
    explicit Store(std::shared_ptr<Core> core) : core_(std::move(core)) {}

    std::unique_ptr<SegmentWriter> beginSegment(UtcMicros start) override {
        requireWritable("beginSegment");
        std::uint64_t sequence;
        std::int64_t keyDay;
        std::optional<common::SecureBuffer> key;
        {
            std::lock_guard lock(core_->mutex);
            sequence = core_->nextSequence++;
            // Keys follow store time, floored at the oldest key still held (docs: "Keys").
            keyDay = std::max(core_->ratchet->day(), dayIndex(core_->storeNow()));
            key = core_->ratchet->segmentKey(keyDay, sequence);
            if (!key) throw std::logic_error("segment store: no key for the current day");
            core_->liveKeyDays.insert(keyDay);
        }
        try {
            const fs::path dir = core_->config.storageDir;
            fs::path part = dir / format::segmentFileName(sequence, start, format::kPartialSuffix);
            fs::path final = dir / format::segmentFileName(sequence, start, format::kFinalSuffix);
            common::UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
            if (!fd.valid()) throw common::FileError(fmt::format("{}: {}", part.string(), errnoText()));
            return std::make_unique<Writer>(core_, sequence, start, keyDay, std::move(part), std::move(final),
                                            std::move(fd), *key);
        } catch (...) {
            std::lock_guard lock(core_->mutex);
            core_->releaseKeyDay(keyDay);
            throw;
        }
    }

    std::vector<SegmentInfo> list(UtcMicros from, UtcMicros to) const override {
        std::lock_guard lock(core_->mutex);
        std::vector<SegmentInfo> out;
        for (const auto& [sequence, e] : core_->segments)
            if (e.start < to && e.end > from) out.push_back(core_->info(e));
        return out;
    }

    common::Result<void> read(const SegmentInfo& segment,
                              const std::function<void(std::span<const std::uint8_t>)>& sink) const override {
        const std::string name = segment.path.filename().string();
        common::UniqueFd fd(::open(segment.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return common::Error{fmt::format("{}: cannot open: {}", segment.path.string(), errnoText())};
        std::optional<std::string> mismatch;
        auto keys = [&](const format::FileHeader& h) -> std::optional<common::SecureBuffer> {
            // Check what the header says before a byte reaches the sink.
            if (h.sequence != segment.sequence || h.start != segment.start)
                mismatch = fmt::format("{}: header says segment {} from {}, expected {} from {}", name, h.sequence,
                                       common::formatUtc(h.start), segment.sequence, common::formatUtc(segment.start));
            else if (format::cameraIdOf(h) != core_->config.cameraId)
                mismatch = fmt::format("{}: recorded by camera '{}', not '{}'", name, format::cameraIdOf(h),
                                       core_->config.cameraId);
            if (mismatch) return std::nullopt;
            std::lock_guard lock(core_->mutex);
            return core_->keyFor(h);
        };
        try {
            const auto result = format::decodeSegment(
                fd.get(), name, keys,
                [&](const format::ChunkPrefix&, std::span<const std::uint8_t> payload) {
                    if (sink && !payload.empty()) sink(payload);
                });
            if (mismatch) return common::Error{*mismatch};
            if (result.error) return common::Error{*result.error};
            if (result.final->end != segment.end)
                return common::Error{fmt::format("{}: sealed end time {} differs from the listed {}", name,
                                                 common::formatUtc(result.final->end),
                                                 common::formatUtc(segment.end))};
            return common::success();
        } catch (const std::exception& e) {
            return common::Error{fmt::format("{}: {}", name, e.what())};
        }
    }

    void setHoldProvider(HoldProvider provider) override {
        std::lock_guard lock(holdMutex_);
        holdProvider_ = std::move(provider);
    }

    Enforcement enforce() override {
        requireWritable("enforce");
        Enforcement out;
        std::set<std::uint64_t> held;
        {
            // Asked before the ring's lock: the provider takes locks of its own.
            std::lock_guard lock(holdMutex_);
            if (holdProvider_)
                for (const std::uint64_t sequence : holdProvider_()) held.insert(sequence);
        }
        {
            std::lock_guard lock(core_->mutex);
            enforceLocked(out, held);
        }
        // The files go outside the lock: a long backlog of deletions (after a long downtime)
        // must not hold up the recording thread's finish().
        for (const auto& d : out.deleted)
            if (::unlink(d.path.c_str()) != 0 && errno != ENOENT)
                common::logError(kLog, "cannot delete {}: {} (no longer listed; removed at the next start)",
                                 d.path.string(), errnoText());
        if (!out.deleted.empty()) {
            common::fsyncDirectory(core_->config.storageDir);
            common::logInfo(kLog, "deleted {} segments ({}): {} .. {}", out.deleted.size(), out.reason,
                            out.deleted.front().path.filename().string(), out.deleted.back().path.filename().string());
        }
        return out;
    }

    Usage usage() const override {
        std::lock_guard lock(core_->mutex);
        return usageLocked();
    }

    std::vector<std::string> openFindings() const override {
        std::lock_guard lock(core_->mutex);
        return core_->findings;
    }

private:
    void requireWritable(const char* what) const {
        if (core_->readOnly) throw std::logic_error(fmt::format("segment store opened read-only: no {}", what));
    }

    void enforceLocked(Enforcement& out, const std::set<std::uint64_t>& held) {
        recoverOrphansLocked();
        const UtcMicros now = core_->storeNow();
        const int days = std::min(core_->config.retentionDays, policy::kRetentionCeilingDays);
        const UtcMicros cutoff = now - days * kMicrosPerDay;
        const UtcMicros ceiling = now - policy::kRetentionCeilingDays * kMicrosPerDay;
        std::vector<std::string> reasons;
        auto drop = [&](std::map<std::uint64_t, Entry>::iterator it, const char* reason) {
            if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) reasons.emplace_back(reason);
            out.deleted.push_back(core_->info(it->second));
            core_->totalBytes -= it->second.bytes;
            return core_->segments.erase(it);
        };
        // The oldest segment not under an evidence hold; past the ceiling a hold no longer counts.
        // Without holds this is the front: what has expired is a prefix of the ring (store time
        // only grows along the sequence), and deleting from the front keeps it ordered.
        auto oldestUnheld = [&] {
            auto it = core_->segments.begin();
            while (it != core_->segments.end() && held.count(it->first) && it->second.storeTime > ceiling) ++it;
            return it;
        };
        auto dropOldest = [&](const char* reason) {
            auto it = oldestUnheld();
            if (it == core_->segments.end()) it = core_->segments.begin();  // capacity wins over a hold
            const std::uint64_t bytes = it->second.bytes;
            drop(it, reason);
            return bytes;
        };
        for (auto it = oldestUnheld(); it != core_->segments.end() && it->second.storeTime <= cutoff;) {
            if (held.count(it->first) && it->second.storeTime > ceiling) ++it;
            else it = drop(it, "retention");
        }
        const std::uint64_t limit = core_->config.byteLimit;
        while (limit > 0 && !core_->segments.empty() && core_->totalBytes > limit) dropOldest("byte limit");
        if (core_->config.freeSpaceFloor > 0) {
            if (auto free = freeBytes(core_->config.storageDir)) {
                std::uint64_t available = *free;
                while (available < core_->config.freeSpaceFloor && !core_->segments.empty()) {
                    available += dropOldest("free-space floor");
                }
                if (available < core_->config.freeSpaceFloor && core_->segments.empty())
                    common::logError(kLog, "free space on {} is below the floor of {} bytes with the ring empty",
                                     core_->config.storageDir.string(), core_->config.freeSpaceFloor);
            }
        }
        for (std::size_t i = 0; i < reasons.size(); ++i) out.reason += (i ? ", " : "") + reasons[i];
        if (core_->indexNeedsCompaction(core_->indexRecords)) {
            try {
                core_->indexRewrite();
            } catch (const std::exception& e) {
                common::logWarning(kLog, "index compaction failed: {}", e.what());
            }
        }

        advanceKeyLocked(cutoff, now, out);

        const Usage u = usageLocked();
        if (u.daysCapacityHolds > 0 && u.daysCapacityHolds < days) {
            out.shortfallDays = u.daysCapacityHolds;
            const std::int64_t mono = core_->clock.monotonicMicros();
            if (core_->lastShortfallLog == INT64_MIN || mono - core_->lastShortfallLog >= kShortfallLogInterval) {
                core_->lastShortfallLog = mono;
                common::logWarning(kLog, "retention shortfall: {} bytes hold {:.3g} days at the recent bitrate, "
                                         "{} days configured",
                                   u.capacityBytes, u.daysCapacityHolds, days);
            }
        }
    }

    // The oldest key kept is that of the day holding the retention cutoff, unless a segment still
    // kept (or being written) needs an older one: a key is shredded only when all its footage is.
    void advanceKeyLocked(UtcMicros cutoff, UtcMicros now, Enforcement& out) {
        std::int64_t target = dayIndex(cutoff);
        for (const auto& [sequence, e] : core_->segments) target = std::min(target, e.keyDay);
        if (!core_->liveKeyDays.empty()) target = std::min(target, *core_->liveKeyDays.begin());
        const std::int64_t from = core_->ratchet->day();
        out.keyDay = from;
        out.keyTargetDay = std::max(target, from);
        if (target <= from) return;
        try {
            core_->ratchet->advanceTo(target, now);
            out.keyAdvances = static_cast<int>(target - from);
            out.keyDay = target;
            common::logInfo(kLog, "day key advanced from day {} to day {} ({}): earlier footage is shredded",
                            from, target, common::formatUtc(target * kMicrosPerDay).substr(0, 10));
        } catch (const std::exception& e) {
            // Footage past retention is deleted from the card all the same, but its key stays:
            // whoever images the flash could still decrypt it. The caller makes that loud.
            out.keyError = e.what();
            common::logError(kLog, "day key not advanced from day {} to day {}: {}; footage of {} .. {} stays "
                                   "decryptable until it is",
                             from, target, e.what(), common::formatUtc(from * kMicrosPerDay).substr(0, 10),
                             common::formatUtc(target * kMicrosPerDay - 1).substr(0, 10));
        }
    }

    void recoverOrphansLocked() {
        auto orphans = std::exchange(core_->orphans, {});
        for (const Orphan& o : orphans) {
            try {
                std::optional<Entry> e;
                if (fs::exists(o.partPath)) {
                    e = recoverFile(*core_, o.partPath);
                } else if (fs::exists(o.finalPath)) {
                    std::string why;
                    e = entryOfCompleteFile(*core_, o.finalPath, why);
                    if (!e) e = recoverFile(*core_, o.finalPath);
                }
                if (e) {
                    core_->add(*e);
                    core_->indexAppend(*e);
                }
                core_->releaseKeyDay(o.keyDay);
            } catch (const std::exception& error) {
                common::logError(kLog, "recovery of {} failed, will retry: {}", o.partPath.filename().string(),
                                 error.what());
                core_->orphans.push_back(o);
            }
        }
    }

    Usage usageLocked() const {
        Usage u;
        u.bytes = core_->totalBytes;
        u.segments = core_->segments.size();
        u.partial = core_->readOnly ? core_->partialOnDisk : core_->liveKeyDays.size();
        for (const auto& [sequence, e] : core_->segments) {
            u.oldest = u.oldest ? std::min(*u.oldest, e.start) : e.start;
            u.newest = u.newest ? std::max(*u.newest, e.end) : e.end;
        }
        const StoreConfig& c = core_->config;
        std::uint64_t capacity = c.byteLimit;
        if (auto free = freeBytes(c.storageDir)) {
            const std::uint64_t usable = u.bytes + (*free > c.freeSpaceFloor ? *free - c.freeSpaceFloor : 0);
            capacity = c.byteLimit > 0 ? std::min(c.byteLimit, usable) : usable;
        }
        u.capacityBytes = capacity;
        // Recent bitrate: the newest footage, up to kBitrateWindow of it.
        std::uint64_t bytes = 0;
        UtcMicros duration = 0;
        for (auto it = core_->segments.rbegin(); it != core_->segments.rend() && duration < kBitrateWindow; ++it) {
            const UtcMicros d = it->second.end - it->second.start;
            if (d <= 0) continue;
            duration += d;
            bytes += it->second.bytes;
        }
        if (duration > 0 && bytes > 0) {
            const double bytesPerDay = static_cast<double>(bytes) * static_cast<double>(kMicrosPerDay) /
                                       static_cast<double>(duration);
            u.daysCapacityHolds = static_cast<double>(capacity) / bytesPerDay;
        }
        return u;
    }

    std::shared_ptr<Core> core_;
    std::mutex holdMutex_;  // the provider; taken before core_->mutex, never inside it
    HoldProvider holdProvider_;
};

std::shared_ptr<Core> openCore(const StoreConfig& config, const common::Clock& clock, bool readOnly) {
    validate(config);
    common::ensureSodium();
    const std::int64_t startMono = clock.monotonicMicros();
    auto core = std::make_shared<Core>(config, clock, readOnly);
    const fs::path& storage = config.storageDir;
    if (!readOnly) {
        fs::create_directories(storage);
        fs::create_directories(config.keyDir);
        fs::permissions(config.keyDir, fs::perms::owner_all);
    } else {
        for (const fs::path& d : {storage, config.keyDir})
            if (!fs::is_directory(d)) throw common::FileError(fmt::format("{}: no such directory", d.string()));
    }
    // A stolen card must not carry the key: refuse a key directory on the storage path.
    if (isInsideOrSame(canonicalDir(config.keyDir), canonicalDir(storage)))
        throw std::invalid_argument(fmt::format("segment store: key directory {} lies inside storage {}",
                                                config.keyDir.string(), storage.string()));
    if (!readOnly) {
        const fs::path lockPath = storage / kLockName;
        core->lock.reset(::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
        if (!core->lock.valid()) throw common::FileError(fmt::format("{}: {}", lockPath.string(), errnoText()));
        if (::flock(core->lock.get(), LOCK_EX | LOCK_NB) != 0)
            throw common::FileError(fmt::format("{}: the ring is in use by another process", storage.string()));
    }

    DirListing listing = scanDirectory(storage);
    RingIndex index(storage / RingIndex::kFileName);
    RingIndex::Loaded loaded = index.load();
    core->ratchet = KeyRatchet::load(config.keyDir);
    if (!core->ratchet) {
        if (readOnly)
            throw common::FileError(fmt::format("{}: no day key ({})", config.keyDir.string(), KeyRatchet::kFileName));
        if (!listing.finals.empty() || !listing.parts.empty())
            throw std::runtime_error(fmt::format(
                "segment store: {} has no day key but {} holds {} segments; refusing to start a new key "
                "(restore the key directory or empty the storage)",
                config.keyDir.string(), storage.string(), listing.finals.size() + listing.parts.size()));
    }

    std::uint64_t maxSequence = loaded.nextSequence > 0 ? loaded.nextSequence - 1 : 0;
    std::size_t indexed = 0, verified = 0, recovered = 0, removed = 0;
    std::vector<Entry> toAppend;
    // Both lists are sorted by sequence: walk them side by side.
    auto indexIt = loaded.entries.begin();
    for (const auto& item : listing.finals) {
        maxSequence = std::max(maxSequence, item.sequence);
        while (indexIt != loaded.entries.end() && indexIt->sequence < item.sequence) ++indexIt;
        if (indexIt != loaded.entries.end() && indexIt->sequence == item.sequence) {
            if (core->ratchet && indexIt->keyDay < core->ratchet->day()) {
                // Expired footage whose key is already shredded: the power went after the key
                // advanced but before the file was deleted. Nothing can decrypt it; never list it.
                const std::string name(listing.name(item));
                if (!readOnly) {
                    removeFile(storage / name);
                    common::logInfo(kLog, "removed {}: its day key is shredded (expired)", name);
                }
                core->findings.push_back(fmt::format("{} {}: its day key is shredded", readOnly ? "not listed" : "removed",
                                                     name));
                ++removed;
                continue;
            }
            core->add(*indexIt);
            ++indexed;
            continue;
        }
        // Not in the index (renamed just before a crash, or the index was lost): authenticate it.
        const std::string name(listing.name(item));
        const fs::path path = storage / name;
        std::string why;
        if (auto e = entryOfCompleteFile(*core, path, why)) {
            core->add(*e);
            toAppend.push_back(*e);
            ++verified;
        } else if (readOnly) {
            common::logWarning(kLog, "not listing {}: {}", name, why);
            core->findings.push_back(fmt::format("not listed: {}", why));
        } else if (auto r = recoverFile(*core, path)) {
            core->add(*r);
            toAppend.push_back(*r);
            ++recovered;
            core->findings.push_back(fmt::format("recovered {} to its last whole chunk: {}", name, why));
        } else {
            ++removed;
            core->findings.push_back(fmt::format("removed {}: {}", name, why));
        }
    }
    for (const auto& item : listing.parts) {
        maxSequence = std::max(maxSequence, item.sequence);
        if (readOnly) {
            ++core->partialOnDisk;
            continue;
        }
        const std::string name(listing.name(item));
        if (auto r = recoverFile(*core, storage / name)) {
            core->add(*r);
            toAppend.push_back(*r);
            ++recovered;
            core->findings.push_back(fmt::format("recovered partial {} (footage up to {})", name,
                                                 common::formatUtc(r->end)));
        } else {
            ++removed;
            core->findings.push_back(fmt::format("removed {}: nothing in it authenticates", name));
        }
    }
    if (!readOnly) {
        for (const std::string& name : listing.stale) {
            ::unlink((storage / name).c_str());
            common::logInfo(kLog, "removed {}: left by an interrupted recovery", name);
        }
        if (!listing.stale.empty()) common::fsyncDirectory(storage);
    }
    core->nextSequence = std::max<std::uint64_t>(maxSequence + 1, 1);

    // Store time resumes from the newest footage plus the wall-clock gap since it (docs: "Time").
    const UtcMicros wall = clock.nowUtc();
    UtcMicros storeTime = wall;
    if (!core->segments.empty()) {
        // The wall clock's reading when the last segment was sealed, not the largest label: a
        // label written during a wrong forward step must not hide a real downtime later.
        const UtcMicros newestEnd = core->segments.rbegin()->second.end;
        UtcMicros newestStamp = INT64_MIN;
        for (const auto& [sequence, e] : core->segments) newestStamp = std::max(newestStamp, e.storeTime);
        const UtcMicros gap = std::max<UtcMicros>(0, wall - newestEnd);
        storeTime = newestStamp + gap;
        if (gap > kMicrosPerDay && !readOnly)
            common::logWarning(kLog, "the wall clock ({}) is {:.1f} days past the newest footage: counted as downtime",
                               common::formatUtc(wall), static_cast<double>(gap) / kMicrosPerDay);
        if (wall < newestEnd && !readOnly)
            common::logWarning(kLog, "the wall clock ({}) is behind the newest footage ({}): store time keeps going "
                                     "from the footage",
                               common::formatUtc(wall), common::formatUtc(newestEnd));
    }
    if (core->ratchet) storeTime = std::max(storeTime, core->ratchet->writtenAt());
    core->anchorStore = storeTime;
    core->anchorMono = clock.monotonicMicros();

    if (!readOnly) {
        if (!core->ratchet) {
            core->ratchet = KeyRatchet::create(config.keyDir, dayIndex(storeTime), storeTime);
            common::logInfo(kLog, "created the root day key for day {} ({}) in {}", core->ratchet->day(),
                            common::formatUtc(storeTime).substr(0, 10), config.keyDir.string());
        }
        core->index.emplace(storage / RingIndex::kFileName);
        core->indexRecords = loaded.records;
        if (loaded.damaged || core->indexNeedsCompaction(loaded.records + toAppend.size())) {
            core->indexRewrite();
        } else {
            for (const Entry& e : toAppend) core->indexAppend(e);
        }
    }
    common::logLine(readOnly ? common::LogLevel::Debug : common::LogLevel::Info, kLog,
                    fmt::format("opened {}{}: {} segments ({} bytes, {} from the index, {} verified, {} recovered, {} removed) "
                          "in {} ms; next segment {}",
                    storage.string(), readOnly ? " read-only" : "", core->segments.size(), core->totalBytes, indexed,
                    verified, recovered, removed, (clock.monotonicMicros() - startMono) / 1000, core->nextSequence));
    return core;
}

}  // namespace

std::unique_ptr<SegmentStore> SegmentStore::open(const StoreConfig& config, const common::Clock& clock) {
    return std::make_unique<Store>(openCore(config, clock, false));
}

std::unique_ptr<SegmentStore> SegmentStore::openReadOnly(const StoreConfig& config, const common::Clock& clock) {
    return std::make_unique<Store>(openCore(config, clock, true));
}

}  // namespace mimamori::store

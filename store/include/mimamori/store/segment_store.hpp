// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The encrypted ring of MPEG-TS segments on the card (format: docs/segment-format.md).
// Plaintext exists only in memory: writers encrypt before write(2), readers decrypt into a sink.
#pragma once

#include "mimamori/common/result.hpp"
#include "mimamori/common/time.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mimamori::store {

using common::UtcMicros;

struct StoreConfig {
    std::string cameraId;
    std::filesystem::path storageDir;  // on the removable card
    std::filesystem::path keyDir;      // internal flash / secure element; never on the card
    std::uint64_t byteLimit = 0;       // 0 = no limit beyond the free-space floor
    std::uint64_t freeSpaceFloor = 0;  // bytes that must stay free on the card's filesystem
    int retentionDays = 12;
    // Close a chunk + fdatasync at least this often. 0.8 s: with the default encoder's two frames
    // of B-frame delay, a power cut takes at most about the last second of footage.
    std::int64_t syncIntervalMicros = 800'000;
};

struct SegmentInfo {
    std::uint64_t sequence = 0;  // strictly increasing, never reused, survives clock steps
    UtcMicros start = 0;         // UTC of the first frame
    UtcMicros end = 0;           // UTC just after the last frame (recovered: last whole chunk)
    std::uint64_t bytesOnDisk = 0;
    std::filesystem::path path;
    bool recovered = false;      // cut short by a crash/power cut and recovered to its last chunk
    std::int64_t keyDay = 0;     // the UTC day (days since 1970-01-01) whose key encrypts it
};

// One open segment. Owned and used by one thread (the recording thread); not thread-safe.
// Destroying it without finish() leaves a recoverable partial segment, as a power cut would.
class SegmentWriter {
public:
    virtual ~SegmentWriter() = default;
    // Appends plaintext TS; encrypts and writes a chunk whenever 64 KiB are buffered or the
    // sync interval has passed (then fdatasync). `mediaEnd` is the UTC just after these bytes.
    virtual void write(std::span<const std::uint8_t> ts, UtcMicros mediaEnd) = 0;
    // Seals the final chunk, fsyncs, renames to the final name. Throws common::FileError.
    [[nodiscard]] virtual SegmentInfo finish(UtcMicros end) = 0;
    // The media end of the last chunk written whole: what recovering this segment keeps if it
    // is abandoned now (its start when no chunk is written yet).
    [[nodiscard]] virtual UtcMicros writtenEnd() const = 0;
};

// Thread-safe: the recorder writes while retrieval lists and reads.
class SegmentStore {
public:
    virtual ~SegmentStore() = default;

    // Opens (creating directories and the first day key if needed), recovers partial segments
    // left by a crash, and drops files that cannot be authenticated from the listing.
    // Takes an exclusive lock on storageDir/ring.lock (one writer per ring). Throws
    // common::FileError / std::runtime_error with one line naming what is wrong.
    [[nodiscard]] static std::unique_ptr<SegmentStore> open(const StoreConfig& config, const common::Clock& clock);
    // Lists and reads without changing anything on disk, for `mimamori ring ls/verify` while the
    // daemon records: no recovery, no key creation, no lock. Partial segments are not listed;
    // beginSegment() and enforce() throw std::logic_error.
    [[nodiscard]] static std::unique_ptr<SegmentStore> openReadOnly(const StoreConfig& config, const common::Clock& clock);

    [[nodiscard]] virtual std::unique_ptr<SegmentWriter> beginSegment(UtcMicros start) = 0;

    // Segments overlapping [from, to), oldest first.
    [[nodiscard]] virtual std::vector<SegmentInfo> list(UtcMicros from, UtcMicros to) const = 0;
    [[nodiscard]] std::vector<SegmentInfo> all() const { return list(INT64_MIN, INT64_MAX); }

    // Decrypts one segment into `sink` chunk by chunk. Returns an error instead of throwing
    // when the segment fails authentication (sink may have seen the good prefix).
    [[nodiscard]] virtual common::Result<void> read(
        const SegmentInfo& segment,
        const std::function<void(std::span<const std::uint8_t>)>& sink) const = 0;

    // An evidence hold (docs/extract-plan.md): the sequence numbers of segments retention must
    // keep, asked at the start of every enforce(), on its thread. Held segments are deleted only
    // past the policy's 14-day ceiling, or for capacity when nothing unheld is left to delete;
    // their day keys stay while they do. An empty function withdraws it; set/withdraw wait for
    // a call in progress, so the provider may go once withdrawn.
    using HoldProvider = std::function<std::vector<std::uint64_t>()>;
    virtual void setHoldProvider(HoldProvider provider) = 0;
    // Told by the holder after it added a hold, before the grant is answered. Retention here
    // asks the provider itself, so there is nothing to do; a store whose retention runs in
    // another process passes the new holds on and returns once they are in force there.
    virtual void holdsChanged() {}

    // Deletes what is past retention or over capacity (oldest first) and advances the day key
    // ratchet. Call at least once a minute. Returns what it deleted, for the log and audit.
    struct Enforcement {
        std::vector<SegmentInfo> deleted;
        std::string reason;                 // "retention", "byte limit", "free-space floor"
        std::optional<double> shortfallDays;  // set when capacity holds fewer days than configured
        int keyAdvances = 0;
        // The day-key ratchet after this run: the oldest day key held, the day it should be,
        // and why it could not get there (set when the key file could not be replaced, e.g.
        // the key partition is full; every later run retries).
        std::int64_t keyDay = 0;
        std::int64_t keyTargetDay = 0;
        std::optional<std::string> keyError;
    };
    [[nodiscard]] virtual Enforcement enforce() = 0;

    struct Usage {
        std::uint64_t bytes = 0;
        std::size_t segments = 0;
        std::optional<UtcMicros> oldest;
        std::optional<UtcMicros> newest;
        double daysCapacityHolds = 0;  // from the recent bitrate and the byte limit / free space
        std::size_t partial = 0;       // segments being written (or left for recovery)
        std::uint64_t capacityBytes = 0;  // what the ring may use: byte limit / free space above the floor
    };
    [[nodiscard]] virtual Usage usage() const = 0;

    // What open() found wrong and what it did (recovered, removed, not listed), one line each.
    [[nodiscard]] virtual std::vector<std::string> openFindings() const = 0;
};

}  // namespace mimamori::store

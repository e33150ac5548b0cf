// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder's health record (docs/health.md): counters, gaps with reasons, storage use,
// written atomically as JSON in the state directory so the yearly report can count uptime.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/store/segment_store.hpp"

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mimamori::recorder {

using common::UtcMicros;

// A stretch of time without recording. `end` is empty while the gap is still open.
struct Gap {
    UtcMicros start = 0;
    std::optional<UtcMicros> end;
    // "source lost: ...", "recorder not running", "end of stream", "write failed: ...",
    // "storage too slow: ..."
    std::string reason;
};

// The day-key ratchet as the last enforcement found it (docs/health.md, "key_ratchet").
struct KeyRatchetHealth {
    bool failing = false;
    std::int64_t day = 0;        // the oldest day whose key the device holds
    std::int64_t targetDay = 0;  // the day it should hold (== day when not failing)
    std::optional<UtcMicros> failingSince;
    std::string error;           // the last failure, when failing
};

// Frame counters sampled from the pipeline when the record is written.
struct FrameCounts {
    std::uint64_t in = 0;            // raw frames that reached the mask stage
    std::uint64_t out = 0;           // encoded frames
    std::uint64_t maskFailures = 0;  // dropped: could not be masked (fail-closed)
    std::uint64_t queueDropped = 0;  // dropped: the disk could not keep up
};

// Thread-safe: the writing thread reports segments, the main thread gaps and storage.
class Health {
public:
    // `file` is usually <state_dir>/health.json. Gaps of an earlier run are loaded from it, so
    // the record spans restarts; gaps older than `keepMicros` are forgotten.
    Health(std::filesystem::path file, std::string cameraId, UtcMicros startedAt,
           std::int64_t keepMicros = 400 * common::kMicrosPerDay);

    // Opens a gap unless one is open already (the first reason is the one that counts).
    void openGap(UtcMicros start, const std::string& reason);
    // Closes the open gap, if any, at `end`.
    void closeGap(UtcMicros end);
    [[nodiscard]] bool gapOpen() const;
    // Records a gap known whole (start and end), e.g. footage dropped between two keyframes,
    // in time order among the others. An open gap stays the open one.
    void addGap(UtcMicros start, UtcMicros end, const std::string& reason);
    // Ends the gap opened at `start` with `reason` at `end`, whether it is still open or was
    // closed early by another event (a source restart); adds it when it is not there.
    void settleGap(UtcMicros start, UtcMicros end, const std::string& reason);

    void segmentWritten(const store::SegmentInfo& segment);
    void segmentFailed();
    void setStorage(const store::SegmentStore::Usage& usage);
    void setMasks(std::string sha256Hex, std::size_t count);
    void setState(std::string state);  // "recording", "waiting for source", "stopped"
    void setKeyRatchet(KeyRatchetHealth ratchet);
    [[nodiscard]] KeyRatchetHealth keyRatchet() const;

    [[nodiscard]] std::string toJson(const FrameCounts& frames, UtcMicros now) const;
    // Atomic replace (temp file, fsync, rename). Throws common::FileError.
    void write(const FrameCounts& frames, UtcMicros now) const;

    [[nodiscard]] std::vector<Gap> gaps() const;
    // One line for the service manager's status (systemctl status): the state, the open gap's
    // reason, segments written and failed this run, and a failing key ratchet.
    [[nodiscard]] std::string summary() const;

private:
    mutable std::mutex mutex_;
    std::filesystem::path file_;
    std::string cameraId_;
    UtcMicros startedAt_ = 0;
    std::string state_ = "starting";
    std::vector<Gap> gaps_;
    std::uint64_t segmentsWritten_ = 0;
    std::uint64_t segmentsFailed_ = 0;
    std::int64_t recordedMicros_ = 0;  // this run
    std::optional<UtcMicros> lastSegmentEnd_;
    store::SegmentStore::Usage storage_;
    std::string maskSha256_;
    std::size_t maskCount_ = 0;
    std::optional<KeyRatchetHealth> keyRatchet_;  // unset until the first enforcement
};

}  // namespace mimamori::recorder

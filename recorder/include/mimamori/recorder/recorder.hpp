// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder: runs the capture pipeline, cuts MPEG-TS into segments on keyframes, writes them
// to the encrypted store, survives source loss, reloads masks, and keeps the health record.
#pragma once

#include "mimamori/common/result.hpp"
#include "mimamori/common/time.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/recorder/still_tap.hpp"
#include "mimamori/store/segment_store.hpp"

#include <functional>
#include <memory>

namespace mimamori::recorder {

struct RecorderOptions {
    // Stop (exit 0) when a file or test source ends instead of retrying: tests and benchmarks.
    bool exitAtEndOfStream = false;
    std::size_t queueLimitBytes = 32u << 20;  // between the appsink and the writing thread
    int enforceIntervalSeconds = 30;          // retention/capacity (the issue asks for <= 60)
    int healthIntervalSeconds = 10;
};

// Runs on the thread-default GLib main context, which its owner (mimamorid's composition root,
// or a test) creates, runs and quits; the owner also handles the signals. Not copyable.
class Recorder {
public:
    // Borrows the store (opened by the owner; the recorder recovers nothing itself) and the audit
    // log (null when the daemon keeps none): both must outlive the Recorder. Mask changes,
    // recording gaps, retention deletions and key advances go to `audit`; an audit write failure
    // is logged and never stops recording. Throws on setup problems (a missing GStreamer element):
    // the caller reports the one-line message and exits non-zero. `masks` must be a validated set:
    // there is no way to start without masks.
    Recorder(RecorderConfig config, masking::MaskSet masks, store::SegmentStore& store, policy::AuditLog* audit,
             const common::Clock& clock, RecorderOptions options = {});
    ~Recorder();  // stop()s when started
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    // Enforces retention once, then starts the pipeline and the timers on the main context.
    // Call once, from the main context's thread, after everything that must see the first
    // retention run (the endpoint's evidence holds) is in place. `onEnded` runs there when the
    // source ended under exitAtEndOfStream: the owner then quits its loop and calls stop().
    void start(std::function<void()> onEnded = {});
    // Finishes the current segment, stops the pipeline and the writing thread, and writes the
    // final health record. Returns the exit code for main. Idempotent; main-context thread.
    [[nodiscard]] int stop();
    // Reloads the mask file (SIGHUP). An invalid file keeps the masks in force and is the error.
    [[nodiscard]] common::Result<void> reloadMasks();

    // SHA-256 (hex) of the mask file in force. Thread-safe.
    [[nodiscard]] std::string maskSha256() const;

    // How far footage has reached the ring: for the service manager's readiness (the first
    // segment open) and its watchdog (writes still arriving). Thread-safe.
    struct Progress {
        std::uint64_t segmentsBegun = 0;
        std::uint64_t writesStored = 0;  // chunks of footage written into the open segment
    };
    [[nodiscard]] Progress progress() const;
    // True while the source is gone and the recorder waits to try it again (a recorded gap, not
    // a stall). Main-context thread only.
    [[nodiscard]] bool waitingForSource() const;
    // The health record in one line (Health::summary). Thread-safe.
    [[nodiscard]] std::string healthSummary() const;

    // Frames for review stills (docs/review-still.md), from whichever pipeline is running.
    // Thread-safe; valid for the recorder's lifetime.
    [[nodiscard]] StillTap& stills();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace mimamori::recorder

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder: runs the capture pipeline, cuts MPEG-TS into segments on keyframes, writes them
// to the encrypted store, survives source loss, reloads masks, and keeps the health record.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/masking/mask.hpp"
#include "mimamori/policy/audit_log.hpp"
#include "mimamori/recorder/config.hpp"
#include "mimamori/store/segment_store.hpp"

#include <memory>

namespace mimamori::recorder {

struct RecorderOptions {
    // Stop (exit 0) when a file or test source ends instead of retrying: tests and benchmarks.
    bool exitAtEndOfStream = false;
    std::size_t queueLimitBytes = 32u << 20;  // between the appsink and the writing thread
    int enforceIntervalSeconds = 30;          // retention/capacity (the issue asks for <= 60)
    int healthIntervalSeconds = 10;
};

// Owns the GLib main loop of the process while run() is active: create it, and call run(),
// on the main thread. Not copyable.
class Recorder {
public:
    // Opens the store (recovering partial segments). Throws on setup problems: the caller
    // reports the one-line message and exits non-zero. `masks` must be a validated set: there
    // is no way to start without masks.
    Recorder(DaemonConfig config, masking::MaskSet masks, const common::Clock& clock,
             RecorderOptions options = {});
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    // Records until SIGTERM/SIGINT (finishing the current segment) or, with
    // exitAtEndOfStream, until the source ends. SIGHUP reloads the mask file. Returns the exit
    // code for main.
    [[nodiscard]] int run();

    // SHA-256 (hex) of the mask file in force. Thread-safe.
    [[nodiscard]] std::string maskSha256() const;
    // Records mask changes, recording gaps, retention deletions and key advances in `audit`
    // (borrowed; must outlive the Recorder). Call before run(). Audit write failures are
    // logged and never stop recording.
    void attachAudit(policy::AuditLog* audit);

    // The ring this recorder writes, for in-process readers (retrieval) started alongside.
    // Thread-safe (see store::SegmentStore); valid for the recorder's lifetime.
    [[nodiscard]] store::SegmentStore& store();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace mimamori::recorder

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The still tap: one frame copied out of the capture pipeline's mask stage on request, for the
// review still (docs/review-still.md). No frame is copied while nobody asks.
#pragma once

#include "mimamori/masking/mask.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mimamori::recorder {

// Where in the mask stage a frame is taken: just before the masks are applied, or just after.
enum class StillStage : int { BeforeMasks = 1, AfterMasks = 2 };

// One frame, its planes packed without padding: I420 as Y (width x height), U, V (each
// ceil(width/2) x ceil(height/2)); NV12 as Y then interleaved UV (2 * ceil(width/2) bytes a row).
struct StillFrame {
    int width = 0;
    int height = 0;
    masking::PixelFormat format = masking::PixelFormat::I420;
    std::vector<std::uint8_t> bytes;
    std::string maskSha256;  // the masks in force when the frame passed the mask stage
};

// Thread-safe. take() runs on any thread (one taker at a time, the others wait their turn
// within their timeout); wanted() and offer() run on the mask stage's streaming thread.
class StillTap {
public:
    // The next frame at `stage`, or nothing when none came within `timeout`.
    [[nodiscard]] std::optional<StillFrame> take(StillStage stage, std::chrono::milliseconds timeout);

    // One atomic load: all a frame costs while no still is asked for.
    [[nodiscard]] bool wanted(StillStage stage) const noexcept {
        return wanted_.load(std::memory_order_acquire) == static_cast<int>(stage);
    }
    // Copies `frame` for the waiting taker. Never waits: when the taker holds the lock at this
    // instant, or the copy cannot be allocated, this frame is skipped and a later one serves.
    void offer(StillStage stage, const masking::FrameView& frame, const std::string& maskSha256) noexcept;

private:
    std::timed_mutex takers_;  // one take() at a time
    std::mutex mutex_;
    std::condition_variable ready_;
    std::atomic<int> wanted_{0};          // 0, or the StillStage a taker waits for
    std::optional<StillFrame> frame_;     // under mutex_
};

}  // namespace mimamori::recorder

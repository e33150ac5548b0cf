// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The still tap: a taker raises a flag and waits; the streaming thread copies the next frame.
#include "mimamori/recorder/still_tap.hpp"

#include <cstring>

namespace mimamori::recorder {
namespace {

struct PlaneSize {
    int rowBytes = 0;
    int rows = 0;
};

PlaneSize planeSize(const masking::FrameView& f, int plane) {
    const int cw = (f.width + 1) / 2, ch = (f.height + 1) / 2;
    if (plane == 0) return {f.width, f.height};
    if (f.format == masking::PixelFormat::NV12) return {plane == 1 ? 2 * cw : 0, plane == 1 ? ch : 0};
    return {cw, ch};
}

}  // namespace

std::optional<StillFrame> StillTap::take(StillStage stage, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock turn(takers_, std::defer_lock);
    if (!turn.try_lock_until(deadline)) return std::nullopt;
    std::unique_lock lock(mutex_);
    frame_.reset();
    wanted_.store(static_cast<int>(stage), std::memory_order_release);
    ready_.wait_until(lock, deadline, [this] { return frame_.has_value(); });
    wanted_.store(0, std::memory_order_release);
    std::optional<StillFrame> out = std::move(frame_);
    frame_.reset();
    return out;
}

void StillTap::offer(StillStage stage, const masking::FrameView& frame, const std::string& maskSha256) noexcept {
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || !wanted(stage) || frame_) return;
    try {
        StillFrame still;
        still.width = frame.width;
        still.height = frame.height;
        still.format = frame.format;
        still.maskSha256 = maskSha256;
        std::size_t total = 0;
        for (int p = 0; p < 3; ++p) {
            const PlaneSize s = planeSize(frame, p);
            total += static_cast<std::size_t>(s.rowBytes) * static_cast<std::size_t>(s.rows);
        }
        still.bytes.resize(total);
        std::uint8_t* out = still.bytes.data();
        for (int p = 0; p < 3; ++p) {
            const PlaneSize s = planeSize(frame, p);
            for (int y = 0; y < s.rows; ++y) {
                std::memcpy(out, frame.planes[p] + static_cast<std::ptrdiff_t>(y) * frame.strides[p],
                            static_cast<std::size_t>(s.rowBytes));
                out += s.rowBytes;
            }
        }
        frame_ = std::move(still);
        wanted_.store(0, std::memory_order_release);
    } catch (...) {
        return;  // out of memory: skip this frame; recording goes on
    }
    lock.unlock();
    ready_.notify_one();
}

}  // namespace mimamori::recorder

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// One download of a sealed container, produced again from its plan as it is sent.
#pragma once

#include "mimamori/policy/keys.hpp"
#include "mimamori/store/segment_store.hpp"
#include "mimamori/retrieval/extract_plan.hpp"
#include "grants.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace mimamori::retrieval {

// Regenerates the container of `plan` from the ring on threads of its own (nice +10: the
// extract's reader and this stream's muxer + sealer): the whole container from its first
// byte, handing out only [begin, end). secretstream's state after a chunk depends on every
// chunk before it, so a resumed download pays for producing the bytes it skips
// (docs/extract-plan.md says why that was chosen over a per-chunk state index).
// At most `bufferBytes` wait for the HTTP thread. The store must outlive the stream.
class SealedStream {
public:
    // Called once, on the stream's thread, when producing fails (the ring no longer holds the
    // footage as hashed, a segment fails authentication, ...); `offset` is the container byte
    // reached. Not called when the stream is cancelled.
    using OnFailure = std::function<void(std::uint64_t offset, const std::string& what)>;

    // `slot` is given back as soon as production ends (not when the connection does).
    SealedStream(const store::SegmentStore& store, ExtractPlan plan, common::SecureBuffer fileKey,
                 std::uint64_t sealedBytes, std::uint64_t begin, std::uint64_t end, BuildSlot slot,
                 OnFailure onFailure);
    // Cancels production and waits for its threads.
    ~SealedStream();
    SealedStream(const SealedStream&) = delete;
    SealedStream& operator=(const SealedStream&) = delete;

    // Copies the bytes at `offset` (the next unread one) into `buffer`, waiting until some are
    // produced. Returns how many; 0 when production failed or `offset` is not the next byte.
    // One reader at a time (the connection's).
    std::size_t read(std::uint64_t offset, std::span<char> buffer);

private:
    void produce();
    void put(std::span<const std::uint8_t> sealed);

    const store::SegmentStore& store_;
    const ExtractPlan plan_;
    const common::SecureBuffer fileKey_;
    const std::uint64_t sealedBytes_;
    const std::uint64_t begin_;
    const std::uint64_t end_;
    std::optional<BuildSlot> slot_;
    OnFailure onFailure_;

    std::mutex mutex_;
    std::condition_variable readable_;
    std::condition_variable writable_;
    std::deque<std::vector<std::uint8_t>> pieces_;  // produced, not yet read, in order
    std::size_t frontUsed_ = 0;                     // bytes of pieces_.front() already read
    std::size_t buffered_ = 0;
    std::uint64_t produced_ = 0;  // container bytes produced (skipped ones included)
    std::uint64_t next_ = 0;      // the next byte read() hands out
    bool finished_ = false;
    bool failed_ = false;
    bool cancelled_ = false;
    std::thread thread_;  // last: started once everything above is set
};

}  // namespace mimamori::retrieval

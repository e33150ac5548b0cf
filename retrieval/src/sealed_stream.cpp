// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// A sealed container produced again from its plan: replayed MP4, resealed with the plan's
// file key and header, the bytes before the requested range dropped.
#include "sealed_stream.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <fmt/format.h>

#include <pthread.h>

#include <algorithm>
#include <cstring>

namespace mimamori::retrieval {
namespace {

// Sealed bytes waiting for the HTTP thread: a few chunks, enough to keep the socket busy
// while the next GOP is muxed.
constexpr std::size_t kBufferBytes = 4u << 20;

// Ends production early: the connection is gone, or the requested range is complete.
struct StopProducing {};

}  // namespace

SealedStream::SealedStream(const store::SegmentStore& store, ExtractPlan plan, common::SecureBuffer fileKey,
                           std::uint64_t sealedBytes, std::uint64_t begin, std::uint64_t end, BuildSlot slot,
                           OnFailure onFailure)
    : store_(store),
      plan_(std::move(plan)),
      fileKey_(std::move(fileKey)),
      sealedBytes_(sealedBytes),
      begin_(begin),
      end_(end),
      slot_(std::move(slot)),
      onFailure_(std::move(onFailure)),
      next_(begin),
      thread_([this] { produce(); }) {}

SealedStream::~SealedStream() {
    {
        std::lock_guard lock(mutex_);
        cancelled_ = true;
        writable_.notify_all();
    }
    thread_.join();
}

std::size_t SealedStream::read(std::uint64_t offset, std::span<char> buffer) {
    std::unique_lock lock(mutex_);
    if (offset != next_) return 0;
    readable_.wait(lock, [&] { return !pieces_.empty() || finished_; });
    if (failed_ || pieces_.empty()) return 0;
    std::size_t n = 0;
    while (n < buffer.size() && !pieces_.empty()) {
        const std::vector<std::uint8_t>& front = pieces_.front();
        const std::size_t take = std::min(buffer.size() - n, front.size() - frontUsed_);
        std::memcpy(buffer.data() + n, front.data() + frontUsed_, take);
        n += take;
        frontUsed_ += take;
        if (frontUsed_ == front.size()) {
            pieces_.pop_front();
            frontUsed_ = 0;
        }
    }
    buffered_ -= n;
    next_ += n;
    writable_.notify_all();
    return n;
}

// On the stream's thread: one piece of the container as the sealer made it.
void SealedStream::put(std::span<const std::uint8_t> sealed) {
    const std::uint64_t at = produced_;
    produced_ += sealed.size();
    if (produced_ <= begin_) return;  // before the range: made only for the state that follows
    const std::uint64_t from = std::max(at, begin_);
    const std::uint64_t to = std::min(produced_, end_);
    if (to > from) {
        std::unique_lock lock(mutex_);
        writable_.wait(lock, [&] { return cancelled_ || buffered_ < kBufferBytes; });
        if (cancelled_) throw StopProducing{};
        const auto first = sealed.begin() + static_cast<std::ptrdiff_t>(from - at);
        pieces_.emplace_back(first, first + static_cast<std::ptrdiff_t>(to - from));
        buffered_ += pieces_.back().size();
        readable_.notify_all();
    }
    if (produced_ >= end_) throw StopProducing{};
}

void SealedStream::produce() {
    pthread_setname_np(pthread_self(), "extract-stream");
    lowerThreadPriority();
    std::string failure;
    try {
        // The sealer (and its header) starts with the first MP4 byte, so a ring that no longer
        // holds the footage sends nothing at all.
        std::optional<Sealer> sealer;
        (void)replayMp4(store_, plan_.from, plan_.to, plan_.recipe, [&](std::span<const std::uint8_t> mp4) {
            {
                std::lock_guard lock(mutex_);
                if (cancelled_) throw StopProducing{};
            }
            if (!sealer) sealer.emplace(fileKey_.bytes(), plan_.seal, [this](std::span<const std::uint8_t> sealed) { put(sealed); });
            sealer->write(mp4);
        });
        if (!sealer) throw ExtractError("no footage in the requested range");
        sealer->finish();
        if (produced_ != sealedBytes_)
            failure = fmt::format("the container came out at {} bytes, the manifest says {}", produced_, sealedBytes_);
    } catch (const StopProducing&) {
    } catch (const std::exception& e) {
        failure = e.what();
    }
    slot_.reset();  // production is over: the next download may start
    bool report = false;
    {
        std::lock_guard lock(mutex_);
        finished_ = true;
        if (!failure.empty() && !cancelled_) {
            failed_ = true;
            pieces_.clear();  // nothing more goes out once something is wrong
            report = true;
        }
        readable_.notify_all();
    }
    if (report && onFailure_) onFailure_(produced_, failure);
}

}  // namespace mimamori::retrieval

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The durable per-company passage queue on disk (docs/ble.md, "Queue files").
#pragma once

#include "mimamori/ble/passage.hpp"
#include "mimamori/common/file.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mimamori::ble {

struct QueueLimits {
    std::uint64_t maxBytes = 4 * 1024 * 1024;                     // of queue.jsonl
    std::int64_t maxAgeMicros = 12 * common::kMicrosPerDay;       // undelivered passages kept at most this
};

struct QueueCounters {
    std::uint64_t nextSeq = 1;
    std::uint64_t droppedFull = 0;  // oldest passages pushed out because the queue was full
    std::uint64_t expired = 0;      // passages older than the age limit, never delivered
};

// One company's queue in `dir` (<state>/ble/<company>/): queue.jsonl holds one passage per
// line, state.json the counters. Every operation takes an exclusive flock on `dir`/lock, so the
// daemon and `mimamori ble export` may work on it at the same time. Thread-safe through the lock.
class PassageQueue {
public:
    PassageQueue(std::filesystem::path dir, std::string company, QueueLimits limits);

    // Assigns sequence numbers, appends, fsyncs. Makes room by dropping the oldest (counted).
    void append(std::vector<Passage> passages, common::UtcMicros now);
    // The oldest up to `max` passages still queued (expired ones are removed first, counted).
    std::vector<Passage> peek(std::size_t max, common::UtcMicros now);
    // Removes every passage with seq <= `throughSeq` (after the receiver acknowledged them).
    void remove(std::uint64_t throughSeq);
    // Hands every queued passage to `write` and removes them only if it returns normally, all
    // under the lock (so the daemon neither delivers nor adds to them meanwhile). Returns the count.
    std::size_t drain(const std::function<void(const std::vector<Passage>&)>& write, common::UtcMicros now);
    QueueCounters counters();
    [[nodiscard]] std::size_t size(common::UtcMicros now) { return peek(static_cast<std::size_t>(-1), now).size(); }
    [[nodiscard]] const std::string& company() const { return company_; }

private:
    struct Locked;
    std::filesystem::path dir_;
    std::string company_;
    QueueLimits limits_;
};

}  // namespace mimamori::ble

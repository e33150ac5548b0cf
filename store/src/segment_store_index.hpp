// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The ring's index log (storageDir/ring.index): lets open() list 100k segments without decrypting.
#pragma once

#include "mimamori/common/file.hpp"
#include "mimamori/common/time.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace mimamori::store {

// What the store knows of one finished segment without opening it.
struct IndexEntry {
    std::uint64_t sequence = 0;
    common::UtcMicros start = 0;
    common::UtcMicros end = 0;
    common::UtcMicros storeTime = 0;  // store time when sealed: what retention ages
    std::int64_t keyDay = 0;
    std::uint64_t bytes = 0;
    bool recovered = false;
};

// One 64-byte record; the log is a sequence of them (layout in docs/segment-format.md).
struct IndexRecord {
    char magic[4];  // "MSX1" a segment, "MSXH" the next sequence number (high-water mark)
    std::uint32_t flags;
    std::uint64_t sequence;
    std::int64_t start;
    std::int64_t end;
    std::int64_t storeTime;
    std::int64_t keyDay;
    std::uint64_t bytes;
    std::uint64_t check;  // FNV-1a 64 of the 56 bytes before it: catches torn or garbled appends
};
static_assert(sizeof(IndexRecord) == 64);
static_assert(offsetof(IndexRecord, sequence) == 8);
static_assert(offsetof(IndexRecord, keyDay) == 40);
static_assert(offsetof(IndexRecord, check) == 56);

// The index is a cache of what the segment files say: the directory listing stays the truth.
// Appends are not fsync'd; a lost or damaged record only means open() decrypts that one file.
// Not thread-safe: the store serialises access.
class RingIndex {
public:
    static constexpr const char* kFileName = "ring.index";

    struct Loaded {
        std::vector<IndexEntry> entries;  // sorted by sequence, one per sequence (the last record wins)
        std::uint64_t nextSequence = 0;  // 0 = none recorded
        std::size_t records = 0;
        bool damaged = false;            // a bad record or a torn tail: rewrite before appending
    };

    explicit RingIndex(std::filesystem::path path) : path_(std::move(path)) {}

    // Missing file = empty index. Throws common::FileError when it exists but cannot be read.
    Loaded load() const;
    // Appends one segment record. Throws common::FileError.
    void append(const IndexEntry& entry);
    // Replaces the log by exactly these entries (atomic, fsync'd).
    void rewrite(const std::vector<IndexEntry>& entries, std::uint64_t nextSequence);

private:
    std::filesystem::path path_;
    common::UniqueFd appendFd_;
};

}  // namespace mimamori::store

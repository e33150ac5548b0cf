// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The ring's index log: fixed 64-byte records, appended per finished segment, compacted rarely.
#include "segment_store_index.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace mimamori::store {
namespace {

static_assert(std::endian::native == std::endian::little, "on-disk layouts are little-endian");

constexpr char kSegmentMagic[4] = {'M', 'S', 'X', '1'};
constexpr char kHighWaterMagic[4] = {'M', 'S', 'X', 'H'};
constexpr std::uint32_t kRecoveredFlag = 1;

std::uint64_t fnv1a(const void* data, std::size_t size) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

IndexRecord makeRecord(const char (&magic)[4]) {
    IndexRecord r{};
    std::memcpy(r.magic, magic, sizeof magic);
    return r;
}

void seal(IndexRecord& r) { r.check = fnv1a(&r, offsetof(IndexRecord, check)); }

IndexRecord toRecord(const IndexEntry& e) {
    IndexRecord r = makeRecord(kSegmentMagic);
    r.flags = e.recovered ? kRecoveredFlag : 0;
    r.sequence = e.sequence;
    r.start = e.start;
    r.end = e.end;
    r.storeTime = e.storeTime;
    r.keyDay = e.keyDay;
    r.bytes = e.bytes;
    seal(r);
    return r;
}

}  // namespace

RingIndex::Loaded RingIndex::load() const {
    Loaded out;
    std::string bytes;
    try {
        bytes = common::readFile(path_);
    } catch (const common::FileError&) {
        if (!std::filesystem::exists(path_)) return out;
        throw;
    }
    if (bytes.size() % sizeof(IndexRecord) != 0) out.damaged = true;
    const std::size_t count = bytes.size() / sizeof(IndexRecord);
    out.records = count;
    for (std::size_t i = 0; i < count; ++i) {
        IndexRecord r;
        std::memcpy(&r, bytes.data() + i * sizeof r, sizeof r);
        if (r.check != fnv1a(&r, offsetof(IndexRecord, check))) {
            out.damaged = true;
            continue;
        }
        if (std::memcmp(r.magic, kHighWaterMagic, 4) == 0) {
            out.nextSequence = std::max(out.nextSequence, r.sequence);
        } else if (std::memcmp(r.magic, kSegmentMagic, 4) == 0) {
            IndexEntry e;
            e.sequence = r.sequence;
            e.start = r.start;
            e.end = r.end;
            e.storeTime = r.storeTime;
            e.keyDay = r.keyDay;
            e.bytes = r.bytes;
            e.recovered = (r.flags & kRecoveredFlag) != 0;
            out.entries.push_back(e);
            out.nextSequence = std::max(out.nextSequence, e.sequence + 1);
        } else {
            out.damaged = true;
        }
    }
    // Records are appended in finishing order, which is the sequence order but for rare overlaps.
    std::stable_sort(out.entries.begin(), out.entries.end(),
                     [](const IndexEntry& a, const IndexEntry& b) { return a.sequence < b.sequence; });
    std::vector<IndexEntry> unique;
    unique.reserve(out.entries.size());
    for (const IndexEntry& e : out.entries) {
        if (!unique.empty() && unique.back().sequence == e.sequence) unique.back() = e;
        else unique.push_back(e);
    }
    out.entries = std::move(unique);
    return out;
}

void RingIndex::append(const IndexEntry& entry) {
    if (!appendFd_.valid()) {
        appendFd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
        if (!appendFd_.valid())
            throw common::FileError(fmt::format("{}: {}", path_.string(), std::strerror(errno)));
    }
    const IndexRecord r = toRecord(entry);
    common::writeAll(appendFd_.get(), {reinterpret_cast<const std::uint8_t*>(&r), sizeof r}, path_.string());
}

void RingIndex::rewrite(const std::vector<IndexEntry>& entries, std::uint64_t nextSequence) {
    std::string content;
    content.reserve((entries.size() + 1) * sizeof(IndexRecord));
    IndexRecord high = makeRecord(kHighWaterMagic);
    high.sequence = nextSequence;
    seal(high);
    content.append(reinterpret_cast<const char*>(&high), sizeof high);
    for (const IndexEntry& entry : entries) {
        const IndexRecord r = toRecord(entry);
        content.append(reinterpret_cast<const char*>(&r), sizeof r);
    }
    appendFd_.reset();  // the old inode goes away with the rename
    common::writeFileAtomic(path_, content,
                            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                std::filesystem::perms::group_read);
}

}  // namespace mimamori::store

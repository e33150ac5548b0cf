// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Turns the ring's enforcement runs (every 30 s) into one audit entry per shredded day: the
// day, how many segments and bytes of it were deleted (docs/audit-log.md, "day_shredded").
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/store/segment_store.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace mimamori::store {

// One day whose key the ratchet destroyed, with what retention deleted of it.
struct ShreddedDay {
    std::int64_t day = 0;       // days since 1970-01-01 (UTC), as the key ratchet counts
    std::uint64_t segments = 0;
    std::uint64_t bytes = 0;    // on the card
    std::string reasons;        // "retention", "byte limit", "free-space floor", comma-separated; "" when none
};

// Counts deleted segments per key day until that day's key is destroyed (the ratchet destroys a
// day key only once every segment under it is gone, so the count is then final). The counts
// survive restarts in a small state file, saved at most every `saveEvery` of the clock's
// monotonic time and by save(): a power cut loses at most that much counting, never a day.
// Not thread-safe: the recorder's retention runs call it one at a time.
class ShredTally {
public:
    static constexpr std::int64_t kDefaultSaveEvery = 10 * 60 * common::kMicrosPerSecond;

    // Loads `stateFile` when it exists (a damaged one is logged and started afresh: counting is
    // evidence about deletions, not a reason to stop recording). `clock` is borrowed.
    ShredTally(std::filesystem::path stateFile, const common::Clock& clock,
               std::int64_t saveEvery = kDefaultSaveEvery);

    // Adds one enforcement run; returns the days it shredded (oldest first), each once. Call
    // save() once their entries are written, so a crash before that reports them again.
    [[nodiscard]] std::vector<ShreddedDay> add(const SegmentStore::Enforcement& run);
    // Writes the counts now (atomically). Throws common::FileError.
    void save();

    // "YYYY-MM-DD" of a key day.
    [[nodiscard]] static std::string dayText(std::int64_t day);

private:
    struct Count {
        std::uint64_t segments = 0;
        std::uint64_t bytes = 0;
        std::string reasons;
    };
    void load();

    std::filesystem::path stateFile_;
    const common::Clock& clock_;
    std::int64_t saveEvery_;
    std::int64_t savedAt_;
    bool dirty_ = false;
    std::map<std::int64_t, Count> days_;
};

}  // namespace mimamori::store

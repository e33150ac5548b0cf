// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Per-day counts of deleted segments, reported once the day's key is destroyed.
#include "mimamori/store/shred_tally.hpp"

#include "mimamori/common/file.hpp"
#include "mimamori/common/log.hpp"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

namespace mimamori::store {
namespace {

constexpr std::string_view kLog = "store";
constexpr std::string_view kMagic = "mimamori-shred-tally-v1";

void addReason(std::string& reasons, std::string_view run) {
    // A run's reason is itself a comma-separated list ("retention, byte limit").
    std::size_t start = 0;
    while (start < run.size()) {
        std::size_t end = run.find(", ", start);
        if (end == std::string_view::npos) end = run.size();
        const std::string_view one = run.substr(start, end - start);
        bool known = false;
        for (std::size_t p = 0; p < reasons.size();) {
            std::size_t q = reasons.find(", ", p);
            if (q == std::string::npos) q = reasons.size();
            if (std::string_view(reasons).substr(p, q - p) == one) known = true;
            p = q + 2;
        }
        if (!one.empty() && !known) reasons += (reasons.empty() ? "" : ", ") + std::string(one);
        start = end + 2;
    }
}

}  // namespace

ShredTally::ShredTally(std::filesystem::path stateFile, const common::Clock& clock, std::int64_t saveEvery)
    : stateFile_(std::move(stateFile)), clock_(clock), saveEvery_(saveEvery), savedAt_(clock.monotonicMicros()) {
    load();
}

std::string ShredTally::dayText(std::int64_t day) { return common::formatUtc(day * common::kMicrosPerDay).substr(0, 10); }

// The file: the magic line, then "DAY SEGMENTS BYTES REASONS\n" per day still counting.
void ShredTally::load() {
    std::error_code ec;
    if (!std::filesystem::exists(stateFile_, ec)) return;
    try {
        std::istringstream in(common::readFile(stateFile_));
        std::string line;
        if (!std::getline(in, line) || line != kMagic) throw std::runtime_error("not a shred tally");
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::int64_t day = 0;
            Count c;
            if (!(fields >> day >> c.segments >> c.bytes)) throw std::runtime_error("bad line");
            std::getline(fields >> std::ws, c.reasons);
            days_[day] = c;
        }
    } catch (const std::exception& e) {
        common::logWarning(kLog, "{}: {}; counting deleted segments afresh", stateFile_.string(), e.what());
        days_.clear();
    }
}

void ShredTally::save() {
    std::string text = std::string(kMagic) + "\n";
    for (const auto& [day, c] : days_) text += fmt::format("{} {} {} {}\n", day, c.segments, c.bytes, c.reasons);
    common::writeFileAtomic(stateFile_, text);
    savedAt_ = clock_.monotonicMicros();
    dirty_ = false;
}

std::vector<ShreddedDay> ShredTally::add(const SegmentStore::Enforcement& run) {
    for (const SegmentInfo& s : run.deleted) {
        Count& c = days_[s.keyDay];
        ++c.segments;
        c.bytes += s.bytesOnDisk;
        addReason(c.reasons, run.reason);
        dirty_ = true;
    }
    std::vector<ShreddedDay> shredded;
    if (run.keyAdvances > 0) {
        // Every key day below the ratchet's is gone: counted days first (a day whose key went
        // in an earlier run that could not be reported), then each day this run advanced over.
        const std::int64_t from = run.keyDay - run.keyAdvances;
        for (auto it = days_.begin(); it != days_.end() && it->first < run.keyDay;) {
            if (it->first < from) shredded.push_back({it->first, it->second.segments, it->second.bytes, it->second.reasons});
            ++it;
        }
        for (std::int64_t day = from; day < run.keyDay; ++day) {
            const auto it = days_.find(day);
            shredded.push_back(it == days_.end() ? ShreddedDay{day, 0, 0, {}}
                                                 : ShreddedDay{day, it->second.segments, it->second.bytes,
                                                               it->second.reasons});
        }
        days_.erase(days_.begin(), days_.lower_bound(run.keyDay));
        dirty_ = true;
    }
    // Days just shredded are saved by the caller once their entries are written (save()).
    if (dirty_ && shredded.empty() && clock_.monotonicMicros() - savedAt_ >= saveEvery_) {
        try {
            save();
        } catch (const std::exception& e) {
            common::logWarning(kLog, "{}: cannot save: {}", stateFile_.string(), e.what());
        }
    }
    return shredded;
}

}  // namespace mimamori::store

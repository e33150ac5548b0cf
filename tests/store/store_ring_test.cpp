// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Segment store: retention with wall-clock steps, byte limit, free-space floor, crypto-shredding.
#include "store_test_util.hpp"

#include "mimamori/store/key_ratchet.hpp"
#include "mimamori/store/segment_format.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

using namespace mimamori;
using namespace mimamori::store;
using namespace mimamori::store::testing;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kSecond = common::kMicrosPerSecond;
constexpr std::int64_t kHour = 3600 * kSecond;
constexpr std::int64_t kDay = common::kMicrosPerDay;

// One 10-second segment of `ts`, in two synced chunks.
SegmentInfo writeTenSeconds(SegmentStore& store, common::ManualClock& clock, const std::vector<std::uint8_t>& ts) {
    auto writer = store.beginSegment(clock.nowUtc());
    const std::size_t half = ts.size() / 2;
    clock.advance(5 * kSecond);
    writer->write(std::span(ts).first(half), clock.nowUtc());
    clock.advance(5 * kSecond);
    writer->write(std::span(ts).subspan(half), clock.nowUtc());
    return writer->finish(clock.nowUtc());
}

}  // namespace

TEST_CASE("13 simulated days with wall-clock steps both ways never delete unexpired footage") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    // Ten days, so that 13 simulated days also see the day keys of the first days shredded.
    config.retentionDays = 10;
    const std::int64_t retention = 10 * kDay;
    auto store = SegmentStore::open(config, clock);
    // The true time is what the monotonic clock measured since kT0; the wall clock lies at times.
    auto trueNow = [&] { return kT0 + clock.monotonicMicros(); };

    struct Written {
        SegmentInfo info;
        common::UtcMicros trueEnd;
        std::uint32_t seed;
    };
    std::map<std::uint64_t, Written> written;
    std::set<fs::path> pathsUsed;
    std::size_t deletions = 0, keyAdvances = 0;
    for (int hour = 0; hour < 13 * 24; ++hour) {
        switch (hour) {
        case 3 * 24: clock.stepWall(-6 * kHour); break;   // NTP pulls the clock back
        case 5 * 24: clock.stepWall(6 * kHour); break;    // and forward again
        case 7 * 24: clock.stepWall(30 * kDay); break;    // a wrong time source: a month ahead
        case 8 * 24: clock.stepWall(-30 * kDay); break;   // corrected a day later
        case 10 * 24:
            // A restart while the clock is a day behind the footage already on the card.
            clock.stepWall(-kDay);
            store.reset();
            store = SegmentStore::open(config, clock);
            break;
        case 11 * 24: clock.stepWall(kDay); break;
        default: break;
        }
        const auto seed = static_cast<std::uint32_t>(hour);
        const auto info = writeTenSeconds(*store, clock, makeTs(8, seed));
        CHECK_MESSAGE(pathsUsed.insert(info.path).second, "segment file reused: ", info.path.string());
        CHECK((written.empty() || info.sequence > written.rbegin()->first));
        written[info.sequence] = Written{info, trueNow(), seed};
        clock.advance(kHour - 10 * kSecond);

        const auto enforced = store->enforce();
        deletions += enforced.deleted.size();
        keyAdvances += static_cast<std::size_t>(enforced.keyAdvances);
        for (const auto& d : enforced.deleted) {
            REQUIRE(written.count(d.sequence) == 1);
            CHECK_MESSAGE(written[d.sequence].trueEnd <= trueNow() - retention,
                          "unexpired segment ", d.sequence, " deleted at hour ", hour);
        }
        std::set<std::uint64_t> listed;
        std::uint64_t previous = 0;
        for (const auto& s : store->all()) {
            CHECK(s.sequence > previous);  // oldest first, strictly ordered
            previous = s.sequence;
            listed.insert(s.sequence);
        }
        for (const auto& [sequence, w] : written) {
            const auto age = trueNow() - w.trueEnd;
            if (age < retention) CHECK_MESSAGE(listed.count(sequence) == 1, "unexpired ", sequence, " missing");
            // Kept at most two hours past retention (the restart while the clock was behind
            // loses the hour between the last segment and the restart from store time).
            if (age > retention + 2 * kHour) CHECK_MESSAGE(listed.count(sequence) == 0, "expired ", sequence, " kept");
        }
    }
    CHECK(deletions > 0);
    CHECK(keyAdvances > 0);

    // What is left is whole, decrypts, and its files sort like its sequence.
    const auto remaining = store->all();
    REQUIRE(remaining.size() > 9 * 24);
    std::vector<std::string> names;
    for (const auto& s : remaining) {
        names.push_back(s.path.filename().string());
        std::optional<std::string> error;
        CHECK(readAll(config, *store, s, &error) == makeTs(8, written.at(s.sequence).seed));
        CHECK_FALSE(error);
    }
    CHECK(std::is_sorted(names.begin(), names.end()));
    const auto ratchet = KeyRatchet::load(config.keyDir);
    REQUIRE(ratchet);
    CHECK(ratchet->day() > dayIndex(kT0));
    CHECK(ratchet->day() <= dayIndex(trueNow() - retention));
}

TEST_CASE("crypto-shredding: after the key advances past a day its segments cannot be decrypted") {
    TempDir dir;
    common::ManualClock clock(kT0 + kHour);
    auto config = makeConfig(dir);
    config.retentionDays = 2;
    auto store = SegmentStore::open(config, clock);
    const auto ts = makeTs(8, 11);
    const auto day0 = writeTenSeconds(*store, clock, ts);
    // A copy outside the ring stands for the blocks flash may keep after the file is deleted.
    const fs::path remnant = dir.path() / "remnant.mseg";
    fs::copy_file(day0.path, remnant);
    clock.advance(kDay);
    writeTenSeconds(*store, clock, makeTs(8, 12));

    auto tryDecrypt = [&](const common::SecureBuffer& key) {
        common::UniqueFd fd(::open(remnant.c_str(), O_RDONLY));
        std::vector<std::uint8_t> out;
        const auto result = format::decodeSegment(
            fd.get(), "remnant", [&](const format::FileHeader&) -> std::optional<common::SecureBuffer> {
                common::SecureBuffer copy(kKeyBytes);
                std::memcpy(copy.data(), key.data(), kKeyBytes);
                return copy;
            },
            [&](const format::ChunkPrefix&, std::span<const std::uint8_t> p) { out.insert(out.end(), p.begin(), p.end()); });
        return !result.error && out == ts;
    };
    {
        // Before the advance the key material on the device does decrypt it (the attempt works).
        const auto before = KeyRatchet::load(config.keyDir);
        REQUIRE(before);
        CHECK(before->day() == dayIndex(day0.start));
        CHECK(tryDecrypt(*before->segmentKey(dayIndex(day0.start), day0.sequence)));
    }

    // Two days after the second segment less an hour: the first has expired, the second not.
    clock.advance(2 * kDay - kHour);
    const auto enforced = store->enforce();
    REQUIRE(!enforced.deleted.empty());
    CHECK(enforced.deleted.front().sequence == day0.sequence);
    CHECK(enforced.keyAdvances >= 1);

    const auto after = KeyRatchet::load(config.keyDir);
    REQUIRE(after);
    CHECK(after->day() > dayIndex(day0.start));
    CHECK_FALSE(after->dayKey(dayIndex(day0.start)));
    // Every key derivable from what is stored: each later day key, used as a day key (through the
    // segment derivation) and directly, for two months ahead.
    for (std::int64_t d = after->day(); d < after->day() + 60; ++d) {
        const auto dayKey = after->dayKey(d);
        REQUIRE(dayKey);
        CHECK_FALSE(tryDecrypt(*dayKey));
        CHECK_FALSE(tryDecrypt(deriveSegmentKey(*dayKey, day0.sequence)));
    }
    SegmentInfo remnantInfo = day0;
    remnantInfo.path = remnant;
    CHECK_FALSE(store->read(remnantInfo, nullptr).ok());
    // The later segment is still inside retention and still decrypts.
    const auto kept = store->all();
    REQUIRE(kept.size() == 1);
    CHECK(store->read(kept[0], nullptr).ok());
}

TEST_CASE("over the byte limit the oldest segments go first and the shortfall is reported") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    std::vector<SegmentInfo> infos;
    {
        auto store = SegmentStore::open(config, clock);
        for (int i = 0; i < 10; ++i) infos.push_back(writeTenSeconds(*store, clock, makeTs(16, 20)));
    }
    const std::uint64_t size = infos[0].bytesOnDisk;
    for (const auto& i : infos) REQUIRE(i.bytesOnDisk == size);
    config.byteLimit = 4 * size + size / 2;
    auto store = SegmentStore::open(config, clock);
    const auto enforced = store->enforce();
    REQUIRE(enforced.deleted.size() == 6);
    for (std::size_t i = 0; i < 6; ++i) CHECK(enforced.deleted[i].sequence == infos[i].sequence);
    CHECK(enforced.reason == "byte limit");
    const auto kept = store->all();
    REQUIRE(kept.size() == 4);
    CHECK(kept.front().sequence == infos[6].sequence);
    CHECK(store->usage().bytes == 4 * size);
    // 4.5 segments of 10 s each: the limit holds 45 seconds of footage.
    REQUIRE(enforced.shortfallDays);
    CHECK(*enforced.shortfallDays == doctest::Approx(45.0 / 86400.0));
    CHECK(store->usage().daysCapacityHolds == doctest::Approx(45.0 / 86400.0));
}

TEST_CASE("below the free-space floor the oldest segments go first, never the one being written") {
    TempDir dir;
    common::ManualClock clock(kT0);
    auto config = makeConfig(dir);
    fs::create_directories(config.storageDir);
    struct statvfs st {};
    REQUIRE(::statvfs(config.storageDir.c_str(), &st) == 0);
    // A floor no deletion can reach: everything finished must go, oldest first.
    config.freeSpaceFloor = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize + (1ULL << 40);
    auto store = SegmentStore::open(config, clock);
    std::vector<SegmentInfo> infos;
    for (int i = 0; i < 5; ++i) infos.push_back(writeTenSeconds(*store, clock, makeTs(16, 30)));
    auto writer = store->beginSegment(clock.nowUtc());
    clock.advance(2 * kSecond);
    const auto ts = makeTs(16, 31);
    writer->write(ts, clock.nowUtc());

    const auto enforced = store->enforce();
    REQUIRE(enforced.deleted.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) CHECK(enforced.deleted[i].sequence == infos[i].sequence);
    CHECK(enforced.reason == "free-space floor");
    for (const auto& i : infos) CHECK_FALSE(fs::exists(i.path));
    const auto last = writer->finish(clock.nowUtc());
    const auto kept = store->all();
    REQUIRE(kept.size() == 1);
    CHECK(kept[0].sequence == last.sequence);
    CHECK(readAll(config, *store, kept[0]) == ts);
}

TEST_CASE("a ratchet that cannot replace its key file says so; expired footage still goes; the next run advances") {
    TempDir dir;
    common::ManualClock clock(kT0 + kHour);
    auto config = makeConfig(dir);
    config.retentionDays = 2;
    auto store = SegmentStore::open(config, clock);
    const auto day0 = writeTenSeconds(*store, clock, makeTs(8, 21));
    clock.advance(kDay);
    writeTenSeconds(*store, clock, makeTs(8, 22));
    clock.advance(2 * kDay - kHour);

    // The key file cannot be replaced: its temporary name is taken by a directory (as good as a
    // full key partition: the new key never reaches the flash).
    const fs::path obstacle = config.keyDir / (std::string(KeyRatchet::kFileName) + ".tmp");
    fs::create_directories(obstacle);
    const auto failed = store->enforce();
    REQUIRE(failed.keyError);
    CHECK(failed.keyError->find("day.key.tmp") != std::string::npos);
    CHECK(failed.keyAdvances == 0);
    CHECK(failed.keyDay == dayIndex(day0.start));
    CHECK(failed.keyTargetDay > failed.keyDay);
    // Retention does not wait for the key: the expired file is gone from the card all the same.
    REQUIRE(failed.deleted.size() == 1);
    CHECK(!fs::exists(day0.path));
    CHECK(KeyRatchet::load(config.keyDir)->day() == dayIndex(day0.start));

    // Every later run retries; once the key file can be written the ratchet catches up.
    fs::remove(obstacle);
    const auto retried = store->enforce();
    CHECK(!retried.keyError);
    CHECK(retried.keyAdvances >= 1);
    CHECK(retried.keyDay == failed.keyTargetDay);
    CHECK(KeyRatchet::load(config.keyDir)->day() == failed.keyTargetDay);
}

TEST_CASE("a segment whose day key is already shredded is never listed after a restart") {
    TempDir dir;
    common::ManualClock clock(kT0 + kHour);
    auto config = makeConfig(dir);
    config.retentionDays = 2;
    SegmentInfo day0, day1;
    {
        auto store = SegmentStore::open(config, clock);
        day0 = writeTenSeconds(*store, clock, makeTs(8, 31));
        clock.advance(kDay);
        day1 = writeTenSeconds(*store, clock, makeTs(8, 32));
    }
    // The power went after the key advanced past day 0 but before its file was deleted: the
    // index still names it.
    const fs::path copy = dir.path() / "day0-copy";
    fs::copy_file(day0.path, copy);
    clock.advance(2 * kDay - kHour);
    {
        auto store = SegmentStore::open(config, clock);
        REQUIRE(store->enforce().keyAdvances >= 1);
    }
    fs::copy_file(copy, day0.path);
    {
        auto readOnly = SegmentStore::openReadOnly(config, clock);
        const auto listed = readOnly->all();
        REQUIRE(listed.size() == 1);
        CHECK(listed[0].sequence == day1.sequence);
        CHECK(fs::exists(day0.path));  // read-only: nothing removed
    }
    auto store = SegmentStore::open(config, clock);
    const auto listed = store->all();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].sequence == day1.sequence);
    CHECK(store->read(listed[0], nullptr).ok());
    CHECK(!fs::exists(day0.path));
    const auto findings = store->openFindings();
    CHECK(std::any_of(findings.begin(), findings.end(),
                      [](const std::string& f) { return f.find("day key is shredded") != std::string::npos; }));
}

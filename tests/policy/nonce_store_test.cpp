// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The nonce store remembers across reopen, survives a torn last line, and prunes only the long expired.
#include "mimamori/policy/nonce_store.hpp"

#include "mimamori/common/file.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <vector>

using namespace mimamori::policy;
using mimamori::common::kMicrosPerDay;
using mimamori::common::UtcMicros;
using mimamori::common::readFile;
using mimamori::common::writeFileAtomic;

namespace {
std::vector<std::uint8_t> nonce(std::uint8_t fill) { return std::vector<std::uint8_t>(16, fill); }
}  // namespace

TEST_CASE("a remembered nonce is known after reopening, and only once") {
    test::TempDir dir;
    {
        NonceStore store(dir / "nonces");
        CHECK_FALSE(store.seen(nonce(1)));
        CHECK(store.remember(nonce(1), 1000));
        CHECK(store.seen(nonce(1)));
        CHECK_FALSE(store.remember(nonce(1), 1000));
        CHECK(store.remember(nonce(2), 2000));
    }
    NonceStore reopened(dir / "nonces");
    CHECK(reopened.size() == 2);
    CHECK(reopened.seen(nonce(1)));
    CHECK(reopened.seen(nonce(2)));
    CHECK_FALSE(reopened.seen(nonce(3)));
}

TEST_CASE("a torn last line from a power cut is dropped, the rest kept") {
    test::TempDir dir;
    {
        NonceStore store(dir / "nonces");
        store.remember(nonce(1), 1000);
    }
    {
        // What a power cut during the second append leaves: part of a line, no newline.
        const int fd = ::open((dir / "nonces").c_str(), O_WRONLY | O_APPEND);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "0202020202", 10) == 10);
        ::close(fd);
    }
    NonceStore store(dir / "nonces");
    CHECK(store.size() == 1);
    CHECK(store.seen(nonce(1)));
    CHECK(readFile(dir / "nonces").back() == '\n');
    CHECK(store.remember(nonce(2), 2000));
    NonceStore again(dir / "nonces");
    CHECK(again.size() == 2);
}

TEST_CASE("a corrupt nonce file is an error naming the line, not an empty store") {
    test::TempDir dir;
    writeFileAtomic(dir / "nonces", "01010101010101010101010101010101 1000\nnot a nonce\n");
    CHECK_THROWS_WITH_AS(NonceStore(dir / "nonces"), doctest::Contains("nonces:2"), NonceStoreError);
}

TEST_CASE("pruning drops only nonces expired for longer than the margin, durably") {
    test::TempDir dir;
    const UtcMicros now = 100 * kMicrosPerDay;
    {
        NonceStore store(dir / "nonces");
        store.remember(nonce(1), now - 2 * kMicrosPerDay);  // long expired: goes
        store.remember(nonce(2), now - kMicrosPerDay / 2);  // just expired: inside the margin, stays
        store.remember(nonce(3), now + kMicrosPerDay);      // still valid: stays
        CHECK(store.prune(now) == 1);
        CHECK_FALSE(store.seen(nonce(1)));
        CHECK(store.seen(nonce(2)));
    }
    NonceStore reopened(dir / "nonces");
    CHECK(reopened.size() == 2);
    CHECK_FALSE(reopened.seen(nonce(1)));
    CHECK(reopened.seen(nonce(3)));
}

TEST_CASE("a prune keeps the latest forgotten expiry as the horizon: a grant up to it cannot be ruled out") {
    test::TempDir dir;
    const UtcMicros now = 100 * kMicrosPerDay;
    {
        NonceStore store(dir / "nonces");
        CHECK_FALSE(store.horizon());
        store.remember(nonce(1), now - 3 * kMicrosPerDay);
        store.remember(nonce(2), now - 2 * kMicrosPerDay);  // the latest one forgotten
        store.remember(nonce(3), now + kMicrosPerDay);
        CHECK(store.prune(now) == 2);
        REQUIRE(store.horizon());
        CHECK(*store.horizon() == now - 2 * kMicrosPerDay);
        // Forgotten, but a request expiring then may have been granted: treated as seen.
        CHECK_FALSE(store.seen(nonce(2)));
        CHECK(store.mayHaveBeenGranted(nonce(2), now - 2 * kMicrosPerDay));
        CHECK(store.mayHaveBeenGranted(nonce(9), now - 2 * kMicrosPerDay));
        CHECK_FALSE(store.mayHaveBeenGranted(nonce(9), now - 2 * kMicrosPerDay + 1));
        CHECK_FALSE(store.remember(nonce(9), now - 2 * kMicrosPerDay));
        CHECK(store.remember(nonce(9), now));
    }
    NonceStore reopened(dir / "nonces");
    REQUIRE(reopened.horizon());
    CHECK(*reopened.horizon() == now - 2 * kMicrosPerDay);
    CHECK(reopened.mayHaveBeenGranted(nonce(1), now - 3 * kMicrosPerDay));
    CHECK(reopened.seen(nonce(3)));
    CHECK(reopened.seen(nonce(9)));
    // An earlier "now" never lowers the horizon.
    reopened.prune(now - 50 * kMicrosPerDay);
    CHECK(*reopened.horizon() == now - 2 * kMicrosPerDay);
}

TEST_CASE("a damaged horizon line is an error naming the file, not an empty horizon") {
    test::TempDir dir;
    writeFileAtomic(dir / "nonces", "horizon soon\n01010101010101010101010101010101 1000\n");
    CHECK_THROWS_WITH_AS(NonceStore(dir / "nonces"), doctest::Contains("nonces:1"), NonceStoreError);
}

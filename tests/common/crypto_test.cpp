// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The one crypto layer: SHA-256 against the FIPS 180-2 answers, hex both ways, sodium memory.
#include "mimamori/common/crypto.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

using namespace mimamori::common;

TEST_CASE("SHA-256 gives the FIPS 180-2 answers") {
    CHECK(sha256Hex(std::string_view("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256Hex(std::string_view("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256Hex(std::string_view("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("hex is lowercase out, either case in, and anything but whole pairs is refused") {
    const std::vector<std::uint8_t> bytes{0x00, 0xab, 0xff};
    CHECK(toHex(bytes) == "00abff");
    std::string out;
    REQUIRE(fromHex("00ABff", out));
    CHECK(out == std::string("\x00\xab\xff", 3));
    CHECK(fromHex("", out));
    CHECK(out.empty());
    CHECK_FALSE(fromHex("0g", out));
    CHECK_FALSE(fromHex("abc", out));
    CHECK_FALSE(fromHex("ab cd", out));
    CHECK_FALSE(fromHex("ab:cd", out));
}

TEST_CASE("a secure buffer starts zeroed and moves without copying its secret") {
    SecureBuffer key(32);
    REQUIRE(key.size() == 32);
    for (std::size_t i = 0; i < key.size(); ++i) CHECK(key.data()[i] == 0);
    key.data()[0] = 0x5a;
    const std::uint8_t* where = key.data();
    SecureBuffer moved(std::move(key));
    CHECK(moved.data() == where);
    CHECK(moved.data()[0] == 0x5a);
    CHECK(key.empty());  // the moved-from buffer holds nothing, so nothing is wiped twice
    CHECK(SecureBuffer().empty());
}

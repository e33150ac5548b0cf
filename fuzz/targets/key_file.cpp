// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: public and secret key files (docs/keys.md).
#include "mimamori/policy/keys.hpp"

#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

using namespace mimamori::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const PublicKey key = parsePublicKey(text, "fuzz.pub");
        // The format has one spelling per key: what parses is what the tool writes.
        if (formatPublicKey(key) != text) std::abort();
    } catch (const KeyError& e) {
        (void)e.what();
    }
    try {
        const SecretKey key = parseSecretKey(std::span<const std::uint8_t>(data, size), "fuzz.secret");
        (void)key.keyId();
    } catch (const KeyError& e) {
        (void)e.what();
    }
    return 0;
}

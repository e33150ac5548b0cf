// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the camera's trust file (docs/keys.md, "The trust file").
#include "mimamori/policy/keys.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace mimamori::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const TrustStore store = TrustStore::parse(text, "fuzz-trust.json");
        for (const TrustedKey& k : store.keys()) {
            if (store.find(k.keyId) == nullptr || k.keyId != keyIdOf(k.signKey)) std::abort();
            if (k.role == Role::Camera) std::abort();  // camera keys cannot be listed
        }
    } catch (const KeyError& e) {
        (void)e.what();
    }
    return 0;
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the extract manifest, its signature file and the signed-manifest wrapper
// (docs/extract-format.md), as the police client reads them from a camera.
#include "mimamori/retrieval/manifest.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace mimamori::retrieval;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const ParsedManifest parsed = parseManifest(text);
    if (parsed.manifest) {
        // The writer's output of a parsed manifest must parse back to the same fields.
        const ParsedManifest again = parseManifest(serializeManifest(*parsed.manifest));
        if (!again.manifest || serializeManifest(*again.manifest) != serializeManifest(*parsed.manifest)) std::abort();
    } else if (parsed.error.empty()) {
        std::abort();
    }
    if (const auto sig = parseSignature(text)) {
        if (formatSignature(*sig) != text) std::abort();
    }
    std::string manifestText, error;
    mimamori::policy::Signature signature{};
    if (!unwrapSignedManifest(text, manifestText, signature, error) && error.empty()) std::abort();
    return 0;
}

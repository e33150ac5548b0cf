// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the signed request envelope and its canonical body (docs/request-format.md).
#include "mimamori/policy/request.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace mimamori::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const ParsedSignedRequest parsed = parseSignedRequest(text);
    if (parsed.request) {
        (void)describeRequest(parsed.request->request);
        // What parses must survive a round trip through the writer unchanged.
        const ParsedSignedRequest again = parseSignedRequest(serializeSignedRequest(*parsed.request));
        if (!again.request || again.request->body != parsed.request->body) std::abort();
    } else if (parsed.error.empty()) {
        std::abort();  // a refusal always says why
    }
    // The body alone: the canonical form is unique, so what parses serialises to the same bytes.
    const ParsedBody body = parseRequestBody(text);
    if (body.request) {
        (void)describeRequest(*body.request);
        if (serializeRequest(*body.request) != text) std::abort();
    } else if (body.error.empty()) {
        std::abort();
    }
    return 0;
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the camera's HTTP request head, through the server's own parser
// (parseRequestHead: Beast's basic_parser with the endpoint's limits, docs/retrieval-http.md).
#include "mimamori/retrieval/http_server.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace mimamori::retrieval;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const HttpLimits limits;  // the daemon's defaults: 8 KiB head, 64 fields, 32 KiB body
    const ParsedHead head = parseRequestHead(bytes, limits);
    if (head.request.headers.size() > static_cast<std::size_t>(limits.maxHeaderFields)) std::abort();
    if (!head.complete) {
        // Incomplete and not yet over a limit: the server would wait, but never past 8 KiB.
        if (!head.problem && size > limits.maxHeaderBytes + 2) std::abort();
        return 0;
    }
    if (head.headBytes == 0 || head.headBytes > size || head.headBytes > limits.maxHeaderBytes) std::abort();
    if (head.problem) return 0;
    // What the server admits: a method, a target, and a body only on POST, within the limit,
    // sized by Content-Length and never by Transfer-Encoding.
    if (head.request.method.empty() || head.request.target.empty()) std::abort();
    if (head.request.header("transfer-encoding")) std::abort();
    if (head.request.method == "POST") {
        if (!head.contentLength || *head.contentLength > limits.maxBodyBytes) std::abort();
    } else if (head.contentLength && *head.contentLength > 0) {
        std::abort();
    }
    const std::string_view path = head.request.path();
    if (path.size() > head.request.target.size() || path.find('?') != std::string_view::npos) std::abort();
    return 0;
}

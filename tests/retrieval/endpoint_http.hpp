// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Talking to a World's endpoint over HTTP in tests: waiting for an extract, counting audit entries.
#pragma once

#include "fixture.hpp"

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

namespace mimamori::retrieval::test {

// Polls until the extract's manifest is served (the camera answers 202 while hashing).
inline void waitReady(const World& w, const std::string& extractId) {
    httplib::Client cli("127.0.0.1", w.endpoint->port());
    for (int i = 0; i < 1500; ++i) {
        const auto res = cli.Get("/v1/extracts/" + extractId + "/manifest");
        REQUIRE(res);
        if (res->status == 200) return;
        REQUIRE(res->status == 202);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("extract never became ready");
}

inline int countEntries(const World& w, const std::string& type) {
    int n = 0;
    for (const auto& e : w.auditEntries()) n += e.type == type;
    return n;
}

// Entries written after an answer went out (extract_delivered follows the last byte): wait for
// them rather than race them.
inline void waitForEntries(const World& w, const std::string& type, int count) {
    for (int i = 0; i < 250 && countEntries(w, type) < count; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

}  // namespace mimamori::retrieval::test

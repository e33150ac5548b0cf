// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The plan of a granted extract: all the camera keeps to produce its sealed container again
// from the ring (format: docs/extract-plan.md). No footage, no secret.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/retrieval/extract.hpp"
#include "mimamori/retrieval/seal.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::retrieval {

constexpr std::string_view kPlanFormat = "mimamori-extract-plan-v1";
// A plan file is refused beyond this (a 24 h range of 1 s segments is about 9 MB).
constexpr std::size_t kMaxPlanBytes = 16u << 20;

struct ExtractPlan {
    std::string extractId;      // 32 lowercase hex
    std::string requestId;
    std::string requestSha256;  // 64 lowercase hex
    std::string ground;         // the request's legal ground word and case reference, for the manifest
    std::string reference;
    UtcMicros grantedAt = 0;    // the hold and the TTL count from here
    UtcMicros from = 0;         // the requested range
    UtcMicros to = 0;
    policy::BoxPublicKey recipient{};
    SealHeader seal;
    // Until the hash pass has run: the segments the grant holds, no formats, no manifest.
    // After it: the recipe the manifest was made from, and the signed manifest.
    ExtractRecipe recipe;
    std::string manifest;       // the exact signed bytes; empty until hashed
    std::optional<policy::Signature> signature;
    bool hashed() const { return !manifest.empty(); }
};

// One line of JSON and '\n' (docs/extract-plan.md, member order fixed).
std::string serializePlan(const ExtractPlan& plan);

// Strict: every member present with its type, nothing unknown. Never throws.
struct ParsedPlan {
    std::optional<ExtractPlan> plan;
    std::string error;
};
ParsedPlan parsePlan(std::string_view text);

}  // namespace mimamori::retrieval

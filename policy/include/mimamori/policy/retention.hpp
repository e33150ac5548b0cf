// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The city's retention rules: footage is kept about two weeks (12 days in practice), never more.
#pragma once

namespace mimamori::policy {

// The city's practice.
constexpr int kDefaultRetentionDays = 12;
// The policy's ceiling: a camera configured to keep footage longer refuses to start.
// "About two weeks" in the city's public description of the cameras.
constexpr int kRetentionCeilingDays = 14;

}  // namespace mimamori::policy

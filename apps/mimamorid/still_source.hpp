// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The daemon's adapter from the recorder's still tap to the endpoint's StillSource: retrieval
// asks for a frame without knowing where frames come from.
#pragma once

#include "mimamori/recorder/still_tap.hpp"
#include "mimamori/retrieval/still.hpp"

namespace mimamori::daemon {

// Borrows the tap (the recorder's), which must outlive it. Thread-safe as the tap is.
class RecorderStillSource final : public retrieval::StillSource {
public:
    explicit RecorderStillSource(recorder::StillTap& tap) : tap_(tap) {}
    [[nodiscard]] common::Result<retrieval::Still> nextStill(policy::StillForm form,
                                                             std::chrono::milliseconds timeout) override;

private:
    recorder::StillTap& tap_;
};

}  // namespace mimamori::daemon

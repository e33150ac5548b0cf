// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The recorder's raw frame, taken before or after the masks, as the PNG of a review still.
#include "still_source.hpp"

#include "mimamori/masking/preview.hpp"

#include <fmt/format.h>

namespace mimamori::daemon {

common::Result<retrieval::Still> RecorderStillSource::nextStill(policy::StillForm form,
                                                                std::chrono::milliseconds timeout) {
    const auto stage =
        form == policy::StillForm::Unmasked ? recorder::StillStage::BeforeMasks : recorder::StillStage::AfterMasks;
    std::optional<recorder::StillFrame> frame = tap_.take(stage, timeout);
    if (!frame)
        return common::Error{fmt::format("no frame reached the mask stage within {:.1f} s",
                                         static_cast<double>(timeout.count()) / 1000.0)};
    // Converted and encoded here, on the asking thread: the streaming thread only copied.
    retrieval::Still still;
    still.width = frame->width;
    still.height = frame->height;
    still.maskSha256 = std::move(frame->maskSha256);
    still.png = masking::encodePng(masking::packedYuvToBgr(frame->bytes, frame->width, frame->height, frame->format));
    return still;
}

}  // namespace mimamori::daemon

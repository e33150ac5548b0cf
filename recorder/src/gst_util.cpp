// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// One-time GStreamer initialisation for the recorder.
#include "gst_util.hpp"

#include <mutex>

namespace mimamori::recorder {

void ensureGstInit() {
    static std::once_flag once;
    std::call_once(once, [] { gst_init(nullptr, nullptr); });
}

}  // namespace mimamori::recorder

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// stderr logger with journald-style priority prefixes (<6>, <4>, <3>).
#include "mimamori/common/log.hpp"

#include "mimamori/common/text.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

namespace mimamori::common {
namespace {
std::atomic<int> minimumLevel{static_cast<int>(LogLevel::Info)};

// sd-daemon(3) priority prefixes: journald maps them to levels, a terminal shows them plainly.
const char* prefix(LogLevel level) {
    switch (level) {
    case LogLevel::Debug: return "<7>";
    case LogLevel::Info: return "<6>";
    case LogLevel::Warning: return "<4>";
    case LogLevel::Error: return "<3>";
    }
    return "<6>";
}
}  // namespace

void setLogLevel(LogLevel minimum) { minimumLevel = static_cast<int>(minimum); }

void logLine(LogLevel level, std::string_view component, std::string_view message) {
    if (static_cast<int>(level) < minimumLevel.load()) return;
    // Messages carry text from requests, files and the air: escaped, so that no message can
    // end its line early and forge another with its own priority prefix.
    std::string line = fmt::format("{}{}: {}\n", prefix(level), component, escapeControls(message));
    // One write so lines from different threads never interleave.
    [[maybe_unused]] auto written = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace mimamori::common

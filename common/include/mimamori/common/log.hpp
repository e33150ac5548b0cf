// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Logging to stderr (journald picks it up under systemd); one line per event, never secrets.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace mimamori::common {

enum class LogLevel { Debug = 0, Info = 1, Warning = 2, Error = 3 };

// Thread-safe: each line is written with a single write(2). The message is passed through
// escapeControls (text.hpp), so callers may log untrusted text.
void logLine(LogLevel level, std::string_view component, std::string_view message);
void setLogLevel(LogLevel minimum);

template <typename... Args>
void logInfo(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
    logLine(LogLevel::Info, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void logWarning(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
    logLine(LogLevel::Warning, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void logError(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
    logLine(LogLevel::Error, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void logDebug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
    logLine(LogLevel::Debug, component, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace mimamori::common

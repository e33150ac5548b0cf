// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
#include "mimamori/daemon/service_notifier.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/common/text.hpp"

#include <systemd/sd-daemon.h>

#include <ctime>
#include <system_error>

namespace mimamori::daemon {
namespace {

constexpr const char* kLog = "mimamorid";

// STATUS= is one line: the health summary carries reasons that came from outside (a GStreamer
// error, a file name), so no newline may start another assignment.
std::string oneLine(const std::string& text) {
    std::string out;
    for (char c : text) out += (c == '\n' || c == '\r') ? ' ' : c;
    return common::escapeControls(out);
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
    std::uint64_t usec = 0;
    // 0: do not unset the variables; a child process (GStreamer's helpers) never inherits the
    // duty, since they are not the main PID systemd watches.
    if (sd_watchdog_enabled(0, &usec) > 0) watchdogMicros_ = usec;
}

void ServiceNotifier::send(const std::string& message) {
    const int rc = sd_notify(0, message.c_str());
    if (rc < 0) common::logWarning(kLog, "cannot notify the service manager: {}", std::error_code(-rc, std::generic_category()).message());
}

void ServiceNotifier::ready(const std::string& status) { send("READY=1\nSTATUS=" + oneLine(status)); }

void ServiceNotifier::reloading() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void ServiceNotifier::status(const std::string& status) { send("STATUS=" + oneLine(status)); }

void ServiceNotifier::watchdog() { send("WATCHDOG=1"); }

void ServiceNotifier::stopping() { send("STOPPING=1"); }

}  // namespace mimamori::daemon

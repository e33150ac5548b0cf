// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The systemd notification protocol (sd_notify(3)) for mimamorid's Type=notify unit. Without a
// service manager ($NOTIFY_SOCKET unset) every call does nothing, so the daemon runs the same
// by hand, in tests and under other supervisors.
#pragma once

#include <cstdint>
#include <string>

namespace mimamori::daemon {

class ServiceNotifier {
public:
    ServiceNotifier();

    // The watchdog interval systemd asked for (WatchdogSec=), 0 when there is none.
    [[nodiscard]] std::uint64_t watchdogMicros() const { return watchdogMicros_; }

    void ready(const std::string& status);      // READY=1 with STATUS=
    void reloading();                           // RELOADING=1 with MONOTONIC_USEC=
    void status(const std::string& status);     // STATUS=
    void watchdog();                            // WATCHDOG=1
    void stopping();                            // STOPPING=1

private:
    void send(const std::string& message);
    std::uint64_t watchdogMicros_ = 0;
};

}  // namespace mimamori::daemon

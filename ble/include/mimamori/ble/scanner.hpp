// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The BlueZ scanner: LE discovery over D-Bus (sdbus-c++), Device1 updates as plain Advertisements.
#pragma once

#include "mimamori/ble/advertisement.hpp"
#include "mimamori/common/time.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace mimamori::ble {

struct ScannerConfig {
    std::string busAddress;  // "" = the system bus; else a D-Bus address ("unix:path=...")
    std::string adapter;     // "" = the first org.bluez.Adapter1; else its name, e.g. "hci0"
    std::int64_t sweepMicros = 30 * common::kMicrosPerSecond;         // RemoveDevice period
    std::int64_t reattachMinMicros = 1 * common::kMicrosPerSecond;    // back-off after a failure
    std::int64_t reattachMaxMicros = 30 * common::kMicrosPerSecond;
};

struct ScannerStats {
    bool attached = false;           // discovery is running on an adapter
    std::string adapterPath;         // "/org/bluez/hci0" while attached
    std::uint64_t attaches = 0;      // successful attaches (1 + re-attaches)
    std::uint64_t updates = 0;       // Device1 updates received
    std::uint64_t matched = 0;       // of which carried a registered tag
    std::uint64_t devicesRemoved = 0;  // stale Device1 entries removed from BlueZ
    std::size_t trackedDevices = 0;  // tag devices whose properties are remembered
};

// Runs its own thread and D-Bus connection. Never throws after start(): BlueZ or the bus going
// away is logged and retried with back-off. Thread-safe: stats() and stop() from any thread.
class Scanner {
public:
    // Called on the scanner thread for each Device1 update; must not block. Returns true when
    // the advertisement carried a registered tag: only such devices' properties are remembered
    // (to complete later partial updates). The Advertisement lives for the call only.
    using Sink = std::function<bool(const Advertisement&)>;

    [[nodiscard]] static std::unique_ptr<Scanner> start(ScannerConfig config, const common::Clock& clock, Sink sink);
    ~Scanner();
    Scanner(const Scanner&) = delete;
    Scanner& operator=(const Scanner&) = delete;

    // Stops discovery (best effort) and joins the thread. Idempotent.
    void stop();
    [[nodiscard]] ScannerStats stats() const;

    class Impl;

private:
    explicit Scanner(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace mimamori::ble

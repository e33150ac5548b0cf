// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The BLE detector as mimamorid runs it: config, scanner, aggregation, queues and delivery.
#pragma once

#include "mimamori/ble/aggregator.hpp"
#include "mimamori/ble/delivery.hpp"
#include "mimamori/ble/queue.hpp"
#include "mimamori/ble/scanner.hpp"
#include "mimamori/ble/tags.hpp"
#include "mimamori/common/config_error.hpp"
#include "mimamori/common/time.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::ble {

struct CompanyConfig {
    CompanyRules rules;
    std::string endpoint;  // "" = no delivery: passages wait for `mimamori ble export`
};

// The daemon config's "ble" object (docs/ble.md).
struct ServiceConfig {
    bool enabled = false;
    ScannerConfig scanner;
    AggregatorConfig aggregator;
    QueueLimits queue;
    DeliveryConfig delivery;
    std::vector<CompanyConfig> companies;
};

// "" (no "ble" object) gives a disabled config. Throws common::ConfigError listing every problem
// in the "ble" object, each naming its key ("ble.companies[1].ibeacon[0].uuid: ...").
[[nodiscard]] ServiceConfig parseServiceConfig(std::string_view bleJson);

// <stateDir>/ble/<company>: where a company's queue lives.
[[nodiscard]] std::filesystem::path companyQueueDir(const std::filesystem::path& stateDir, const std::string& company);

struct ServiceStats {
    ScannerStats scanner;
    std::uint64_t sightings = 0;       // counted (registered tag, above the RSSI floor)
    std::size_t openVisits = 0;
    std::uint64_t passagesQueued = 0;
    std::uint64_t passagesDelivered = 0;
    std::uint64_t deliveryFailures = 0;
};

// Owns the scanner thread plus two worker threads (visit closing + queueing, delivery), so
// neither a slow endpoint nor a disk stall blocks the other and nothing here blocks recording.
// start() throws for setup problems (state dir not writable); later failures are logged and
// retried. Thread-safe: stats() and stop() from any thread; the destructor stops.
class Service {
public:
    [[nodiscard]] static std::unique_ptr<Service> start(const ServiceConfig& config, const std::string& cameraId,
                                          const std::filesystem::path& stateDir,
                                          const common::Clock& clock);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Stops scanning, queues every open visit as a passage, joins the threads. Idempotent.
    void stop();
    [[nodiscard]] ServiceStats stats() const;

    class Impl;

private:
    explicit Service(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace mimamori::ble

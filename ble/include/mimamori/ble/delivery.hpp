// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Sends a company's queued passages to its endpoint as JSON batches over HTTP(S) POST.
#pragma once

#include "mimamori/ble/queue.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace mimamori::ble {

struct DeliveryConfig {
    std::size_t batchSize = 200;
    std::int64_t timeoutMicros = 10 * common::kMicrosPerSecond;
    std::int64_t retryMinMicros = 5 * common::kMicrosPerSecond;    // first back-off after a failure
    std::int64_t retryMaxMicros = 600 * common::kMicrosPerSecond;  // back-off ceiling
};

// The body of one batch (docs/ble.md, "Delivery").
[[nodiscard]] std::string batchToJson(const std::string& cameraId, const std::string& company,
                        const std::vector<Passage>& passages);

// What one delivery attempt did; failures are values, never exceptions.
struct DeliveryResult {
    std::size_t delivered = 0;  // passages acknowledged and removed
    bool failed = false;        // the endpoint was unreachable or did not answer 2xx
    std::string error;          // one line when failed
};

// POSTs batches until the queue is empty, a batch fails, or `cancelled` (checked between
// batches) returns true. Blocks for the HTTP exchange.
[[nodiscard]] DeliveryResult deliverPending(PassageQueue& queue, const std::string& endpoint,
                              const std::string& cameraId, const DeliveryConfig& config,
                              common::UtcMicros now, const std::function<bool()>& cancelled = {});

// Splits "http[s]://host[:port]/path" into the client's "scheme://host:port" and the path.
// Returns false when the URL is not http or https with a host.
[[nodiscard]] bool splitEndpoint(const std::string& url, std::string& schemeHostPort, std::string& path);

}  // namespace mimamori::ble

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// HTTP(S) delivery of queued passages: one POST per batch, removal only after a 2xx answer.
#include "mimamori/ble/delivery.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace mimamori::ble {

std::string batchToJson(const std::string& cameraId, const std::string& company,
                        const std::vector<Passage>& passages) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& p : passages) list.push_back(nlohmann::json::parse(passageToJson(p)));
    return nlohmann::json{{"camera", cameraId}, {"company", company}, {"passages", std::move(list)}}.dump();
}

bool splitEndpoint(const std::string& url, std::string& schemeHostPort, std::string& path) {
    std::size_t afterScheme = 0;
    if (url.rfind("http://", 0) == 0) {
        afterScheme = 7;
    } else if (url.rfind("https://", 0) == 0) {
        afterScheme = 8;
    } else {
        return false;
    }
    const auto slash = url.find('/', afterScheme);
    const std::string hostPort = url.substr(afterScheme, slash == std::string::npos ? std::string::npos
                                                                                      : slash - afterScheme);
    if (hostPort.empty() || hostPort.find_first_of("@?# ") != std::string::npos) return false;
    schemeHostPort = url.substr(0, afterScheme) + hostPort;
    path = slash == std::string::npos ? "/" : url.substr(slash);
    return true;
}

DeliveryResult deliverPending(PassageQueue& queue, const std::string& endpoint,
                              const std::string& cameraId, const DeliveryConfig& config,
                              common::UtcMicros now, const std::function<bool()>& cancelled) {
    DeliveryResult result;
    std::string base, path;
    if (!splitEndpoint(endpoint, base, path)) {
        result.failed = true;
        result.error = fmt::format("endpoint '{}' is not an http(s) URL", endpoint);
        return result;
    }
    httplib::Client client(base);
    const auto seconds = config.timeoutMicros / common::kMicrosPerSecond;
    const auto micros = config.timeoutMicros % common::kMicrosPerSecond;
    client.set_connection_timeout(seconds, micros);
    client.set_read_timeout(seconds, micros);
    client.set_write_timeout(seconds, micros);
    client.set_follow_location(false);  // never hand a company's passages to another host
    while (!cancelled || !cancelled()) {
        const auto batch = queue.peek(config.batchSize, now);
        if (batch.empty()) return result;
        const auto response = client.Post(path, batchToJson(cameraId, queue.company(), batch), "application/json");
        if (!response) {
            result.failed = true;
            result.error = fmt::format("POST {}: no answer (httplib: {})", endpoint, httplib::to_string(response.error()));
            return result;
        }
        if (response->status < 200 || response->status > 299) {
            result.failed = true;
            result.error = fmt::format("POST {}: HTTP {}", endpoint, response->status);
            return result;
        }
        queue.remove(batch.back().seq);
        result.delivered += batch.size();
    }
    return result;
}

}  // namespace mimamori::ble

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The daemon config's "ble" object: parsed and validated in one place, every problem named.
#include "mimamori/ble/service.hpp"

#include "mimamori/common/config_error.hpp"
#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"
#include "mimamori/policy/retention.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <regex>

namespace mimamori::ble {

namespace {

// What a ConfigError of this section names as its source.
constexpr const char* kSection = "invalid \"ble\" configuration";

using nlohmann::json;

// Reads keys of one JSON object, recording each problem with its full key path.
class Reader {
public:
    Reader(const json& object, std::string path, std::vector<std::string>& problems)
        : object_(object), path_(std::move(path)), problems_(problems) {}

    std::string key(const std::string& name) const { return path_ + "." + name; }
    void problem(const std::string& name, const std::string& what) const {
        problems_.push_back(fmt::format("{}: {}", key(name), what));
    }
    const json* find(const std::string& name) const {
        const auto it = object_.find(name);
        return it == object_.end() ? nullptr : &*it;
    }

    bool boolean(const std::string& name, bool fallback) const {
        const json* v = find(name);
        if (!v) return fallback;
        if (!v->is_boolean()) {
            problem(name, "must be true or false");
            return fallback;
        }
        return v->get<bool>();
    }
    std::string string(const std::string& name, const std::string& fallback) const {
        const json* v = find(name);
        if (!v) return fallback;
        if (!v->is_string()) {
            problem(name, "must be a string");
            return fallback;
        }
        return v->get<std::string>();
    }
    double number(const std::string& name, double fallback, double min, double max) const {
        const json* v = find(name);
        if (!v) return fallback;
        if (!v->is_number()) {
            problem(name, "must be a number");
            return fallback;
        }
        const double d = v->get<double>();
        if (!(d >= min && d <= max)) {
            problem(name, fmt::format("must be between {} and {}", min, max));
            return fallback;
        }
        return d;
    }
    std::int64_t integer(const std::string& name, std::int64_t fallback, std::int64_t min, std::int64_t max) const {
        const json* v = find(name);
        if (!v) return fallback;
        if (!v->is_number_integer()) {
            problem(name, "must be an integer");
            return fallback;
        }
        const auto i = v->get<std::int64_t>();
        if (i < min || i > max) {
            problem(name, fmt::format("must be between {} and {}", min, max));
            return fallback;
        }
        return i;
    }
    std::int64_t seconds(const std::string& name, double fallback, double min, double max) const {
        return static_cast<std::int64_t>(std::llround(number(name, fallback, min, max) * 1e6));
    }
    // An array of objects; each element gets its own Reader.
    template <typename F>
    void objects(const std::string& name, F each) const {
        const json* v = find(name);
        if (!v) return;
        if (!v->is_array()) {
            problem(name, "must be an array");
            return;
        }
        for (std::size_t i = 0; i < v->size(); ++i) {
            const std::string at = fmt::format("{}[{}]", key(name), i);
            if (!(*v)[i].is_object()) {
                problems_.push_back(at + ": must be an object");
                continue;
            }
            each(Reader((*v)[i], at, problems_), i);
        }
    }
    void rejectUnknown(std::initializer_list<const char*> known) const {
        for (const auto& [k, value] : object_.items()) {
            if (std::find_if(known.begin(), known.end(), [&, &name = k](const char* n) { return name == n; }) == known.end())
                problems_.push_back(fmt::format("{}: unknown key", key(k)));
        }
    }

private:
    const json& object_;
    std::string path_;
    std::vector<std::string>& problems_;
};

template <std::size_t N>
bool hexBytes(std::string text, std::array<std::uint8_t, N>& out) {
    text.erase(std::remove(text.begin(), text.end(), '-'), text.end());
    std::string raw;
    if (text.size() != 2 * N || !common::fromHex(text, raw)) return false;
    std::copy(raw.begin(), raw.end(), out.begin());
    return true;
}

CompanyConfig parseCompany(const Reader& r) {
    r.rejectUnknown({"name", "endpoint", "ibeacon", "eddystone_uid", "manufacturer"});
    CompanyConfig c;
    c.rules.name = r.string("name", "");
    static const std::regex namePattern("[a-z0-9_-]{1,64}");
    if (!std::regex_match(c.rules.name, namePattern))
        r.problem("name", "must be 1-64 characters of a-z, 0-9, '_' or '-' (it names the queue directory)");
    c.endpoint = r.string("endpoint", "");
    std::string base, path;
    if (!c.endpoint.empty() && !splitEndpoint(c.endpoint, base, path))
        r.problem("endpoint", "must be an http:// or https:// URL with a host");
    r.objects("ibeacon", [&](const Reader& e, std::size_t) {
        e.rejectUnknown({"uuid", "major"});
        IBeaconRule rule;
        if (!hexBytes(e.string("uuid", ""), rule.uuid))
            e.problem("uuid", "must be a 128-bit UUID such as e2c56db5-dffb-48d2-b060-d0f5a71096e0");
        if (e.find("major")) rule.major = static_cast<std::uint16_t>(e.integer("major", 0, 0, 65535));
        c.rules.ibeacon.push_back(rule);
    });
    r.objects("eddystone_uid", [&](const Reader& e, std::size_t) {
        e.rejectUnknown({"namespace"});
        EddystoneRule rule;
        if (!hexBytes(e.string("namespace", ""), rule.namespaceId))
            e.problem("namespace", "must be 20 hex digits (the 10-byte namespace)");
        c.rules.eddystone.push_back(rule);
    });
    r.objects("manufacturer", [&](const Reader& e, std::size_t) {
        e.rejectUnknown({"company_id", "prefix", "id_offset", "id_length"});
        ManufacturerRule rule;
        if (!e.find("company_id")) e.problem("company_id", "is required");
        rule.companyId = static_cast<std::uint16_t>(e.integer("company_id", 0, 0, 65535));
        std::string raw;
        if (!common::fromHex(e.string("prefix", ""), raw)) e.problem("prefix", "must be hex digits");
        rule.prefix.assign(raw.begin(), raw.end());
        rule.idOffset = static_cast<std::size_t>(e.integer("id_offset", 0, 0, 255));
        if (!e.find("id_length")) e.problem("id_length", "is required");
        rule.idLength = static_cast<std::size_t>(e.integer("id_length", 1, 1, 64));
        c.rules.manufacturer.push_back(rule);
    });
    if (c.rules.ibeacon.empty() && c.rules.eddystone.empty() && c.rules.manufacturer.empty())
        r.problem("ibeacon", "a company needs at least one ibeacon, eddystone_uid or manufacturer rule");
    return c;
}

}  // namespace

ServiceConfig parseServiceConfig(std::string_view bleJson) {
    ServiceConfig config;
    if (bleJson.empty()) return config;
    std::vector<std::string> problems;
    json root;
    try {
        root = json::parse(bleJson);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond a double
        throw common::ConfigError(kSection, {fmt::format("ble: not valid JSON: {}", e.what())});
    }
    if (!root.is_object()) throw common::ConfigError(kSection, {"ble: must be an object"});
    const Reader r(root, "ble", problems);
    r.rejectUnknown({"enabled", "bus_address", "adapter", "silence_seconds", "rssi_floor_dbm",
                     "rssi_smoothing", "device_sweep_seconds", "reattach_min_seconds",
                     "reattach_max_seconds", "queue_max_bytes", "retention_days", "delivery", "companies"});
    config.enabled = r.boolean("enabled", true);
    config.scanner.busAddress = r.string("bus_address", "");
    config.scanner.adapter = r.string("adapter", "");
    config.aggregator.silenceMicros = r.seconds("silence_seconds", 60, 1, 3600);
    config.aggregator.rssiFloor = static_cast<int>(r.integer("rssi_floor_dbm", -90, -127, 20));
    config.aggregator.smoothing = r.number("rssi_smoothing", 0.3, 0.01, 1);
    config.scanner.sweepMicros = r.seconds("device_sweep_seconds", 30, 1, 3600);
    config.scanner.reattachMinMicros = r.seconds("reattach_min_seconds", 1, 0.01, 3600);
    config.scanner.reattachMaxMicros = r.seconds("reattach_max_seconds", 30, 0.01, 3600);
    if (config.scanner.reattachMaxMicros < config.scanner.reattachMinMicros)
        r.problem("reattach_max_seconds", "must not be less than reattach_min_seconds");
    config.queue.maxBytes = static_cast<std::uint64_t>(r.integer("queue_max_bytes", 4 << 20, 4096, std::int64_t{1} << 32));
    config.queue.maxAgeMicros = r.integer("retention_days", policy::kDefaultRetentionDays, 1,
                                          policy::kRetentionCeilingDays) * common::kMicrosPerDay;
    if (const json* d = r.find("delivery")) {
        if (!d->is_object()) {
            r.problem("delivery", "must be an object");
        } else {
            const Reader dr(*d, "ble.delivery", problems);
            dr.rejectUnknown({"batch_size", "timeout_seconds", "retry_min_seconds", "retry_max_seconds"});
            config.delivery.batchSize = static_cast<std::size_t>(dr.integer("batch_size", 200, 1, 10000));
            config.delivery.timeoutMicros = dr.seconds("timeout_seconds", 10, 0.1, 300);
            config.delivery.retryMinMicros = dr.seconds("retry_min_seconds", 5, 0.01, 86400);
            config.delivery.retryMaxMicros = dr.seconds("retry_max_seconds", 600, 0.01, 86400);
            if (config.delivery.retryMaxMicros < config.delivery.retryMinMicros)
                dr.problem("retry_max_seconds", "must not be less than retry_min_seconds");
        }
    }
    if (!r.find("companies") && config.enabled) r.problem("companies", "is required when enabled");
    r.objects("companies", [&](const Reader& c, std::size_t) { config.companies.push_back(parseCompany(c)); });
    for (std::size_t i = 0; i < config.companies.size(); ++i)
        for (std::size_t j = i + 1; j < config.companies.size(); ++j)
            if (!config.companies[i].rules.name.empty() &&
                config.companies[i].rules.name == config.companies[j].rules.name)
                problems.push_back(fmt::format("ble.companies[{}].name: '{}' is already companies[{}]", j,
                                               config.companies[j].rules.name, i));
    std::vector<CompanyRules> rules;
    for (const auto& c : config.companies) rules.push_back(c.rules);
    for (auto& overlap : findRuleOverlaps(rules)) problems.push_back("ble.companies: " + overlap);
    if (!problems.empty()) throw common::ConfigError(kSection, std::move(problems));
    return config;
}

std::filesystem::path companyQueueDir(const std::filesystem::path& stateDir, const std::string& company) {
    return stateDir / "ble" / company;
}

}  // namespace mimamori::ble

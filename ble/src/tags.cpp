// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Tag decoders: match an advertisement against the registered companies' rules, nothing else.
#include "mimamori/ble/tags.hpp"

#include "mimamori/common/crypto.hpp"
#include "mimamori/common/file.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mimamori::ble {
namespace {

constexpr std::size_t kIBeaconLength = 23;  // 0x02 0x15, UUID 16, major 2, minor 2, tx power 1
constexpr std::uint8_t kIBeaconType = 0x02;
constexpr std::uint8_t kIBeaconLengthByte = 0x15;
constexpr std::uint8_t kEddystoneUidFrame = 0x00;

std::uint16_t bigEndian16(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

std::string uuidText(const std::uint8_t* u) {
    const auto hex = common::toHex(std::span<const std::uint8_t>(u, 16));
    return fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4),
                       hex.substr(16, 4), hex.substr(20, 12));
}

bool startsWith(const Bytes& data, std::span<const std::uint8_t> prefix) {
    return data.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), data.begin());
}

// One of the two is a prefix of the other: some payload would start with both.
bool compatible(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
    const auto n = std::min(a.size(), b.size());
    return std::equal(a.begin(), a.begin() + static_cast<long>(n), b.begin());
}

Bytes iBeaconPrefix(const IBeaconRule& r) {
    Bytes p(2 + r.uuid.size() + 2);
    p[0] = kIBeaconType;
    p[1] = kIBeaconLengthByte;
    std::copy(r.uuid.begin(), r.uuid.end(), p.begin() + 2);
    p.resize(2 + r.uuid.size());
    if (r.major) {
        p.push_back(static_cast<std::uint8_t>(*r.major >> 8));
        p.push_back(static_cast<std::uint8_t>(*r.major & 0xff));
    }
    return p;
}

// Every rule as "manufacturer data under company id X starting with these bytes".
struct PrefixRule {
    std::uint16_t companyId;
    Bytes prefix;
    std::string label;
};

std::vector<PrefixRule> prefixRules(const CompanyRules& c) {
    std::vector<PrefixRule> out;
    for (std::size_t i = 0; i < c.ibeacon.size(); ++i)
        out.push_back({kAppleCompanyId, iBeaconPrefix(c.ibeacon[i]),
                       fmt::format("{} ibeacon[{}]", c.name, i)});
    for (std::size_t i = 0; i < c.manufacturer.size(); ++i)
        out.push_back({c.manufacturer[i].companyId, c.manufacturer[i].prefix,
                       fmt::format("{} manufacturer[{}]", c.name, i)});
    return out;
}

}  // namespace

TagDecoder::TagDecoder(std::vector<CompanyRules> companies) : companies_(std::move(companies)) {}

std::optional<TagSighting> TagDecoder::decode(const Advertisement& ad) const {
    // Look up only the keys some rule wants; unregistered payloads are never copied.
    const auto apple = ad.manufacturerData.find(kAppleCompanyId);
    const bool isIBeacon = apple != ad.manufacturerData.end() && apple->second.size() == kIBeaconLength &&
                           apple->second[0] == kIBeaconType && apple->second[1] == kIBeaconLengthByte;
    const auto eddy = ad.serviceData.find(kEddystoneServiceUuid);
    const bool isEddystoneUid = eddy != ad.serviceData.end() &&
                                (eddy->second.size() == 18 || eddy->second.size() == 20) &&
                                eddy->second[0] == kEddystoneUidFrame;

    for (std::size_t ci = 0; ci < companies_.size(); ++ci) {
        const CompanyRules& c = companies_[ci];
        auto sighting = [&](std::string tagId) {
            return TagSighting{ci, std::move(tagId), ad.rssi, ad.time, ad.monotonic};
        };
        if (isIBeacon) {
            const Bytes& d = apple->second;
            for (const auto& r : c.ibeacon) {
                if (!std::equal(r.uuid.begin(), r.uuid.end(), d.begin() + 2)) continue;
                const auto major = bigEndian16(d, 18);
                if (r.major && *r.major != major) continue;
                return sighting(fmt::format("ibeacon:{}:{}:{}", uuidText(d.data() + 2), major,
                                            bigEndian16(d, 20)));
            }
        }
        if (isEddystoneUid) {
            const Bytes& d = eddy->second;
            for (const auto& r : c.eddystone) {
                if (!std::equal(r.namespaceId.begin(), r.namespaceId.end(), d.begin() + 2)) continue;
                return sighting(fmt::format(
                    "eddystone:{}:{}", common::toHex(std::span<const std::uint8_t>(d.data() + 2, 10)),
                    common::toHex(std::span<const std::uint8_t>(d.data() + 12, 6))));
            }
        }
        for (const auto& r : c.manufacturer) {
            const auto it = ad.manufacturerData.find(r.companyId);
            if (it == ad.manufacturerData.end()) continue;
            const Bytes& d = it->second;
            if (!startsWith(d, r.prefix) || d.size() < r.idOffset + r.idLength) continue;
            return sighting(fmt::format(
                "mfr:{:04x}:{}", r.companyId,
                common::toHex(std::span<const std::uint8_t>(d.data() + r.idOffset, r.idLength))));
        }
    }
    return std::nullopt;
}

std::vector<std::string> findRuleOverlaps(const std::vector<CompanyRules>& companies) {
    std::vector<std::string> problems;
    for (std::size_t a = 0; a < companies.size(); ++a) {
        for (std::size_t b = a + 1; b < companies.size(); ++b) {
            for (const auto& ra : prefixRules(companies[a]))
                for (const auto& rb : prefixRules(companies[b]))
                    if (ra.companyId == rb.companyId && compatible(ra.prefix, rb.prefix))
                        problems.push_back(fmt::format("{} and {} can match the same advertisement",
                                                       ra.label, rb.label));
            for (std::size_t i = 0; i < companies[a].eddystone.size(); ++i)
                for (std::size_t j = 0; j < companies[b].eddystone.size(); ++j)
                    if (companies[a].eddystone[i].namespaceId == companies[b].eddystone[j].namespaceId)
                        problems.push_back(fmt::format(
                            "{} eddystone_uid[{}] and {} eddystone_uid[{}] register the same namespace",
                            companies[a].name, i, companies[b].name, j));
        }
    }
    return problems;
}

}  // namespace mimamori::ble

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Tag decoders configured per company: iBeacon, Eddystone-UID and generic manufacturer data.
#pragma once

#include "mimamori/ble/advertisement.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mimamori::ble {

// iBeacon: manufacturer data under Apple's company id 0x004C, 0x02 0x15, UUID, major, minor, tx.
struct IBeaconRule {
    std::array<std::uint8_t, 16> uuid{};
    std::optional<std::uint16_t> major;  // unset: every major under the UUID is the company's
};

// Eddystone-UID: service data under 0xFEAA, frame 0x00, tx power, 10-byte namespace, 6-byte instance.
struct EddystoneRule {
    std::array<std::uint8_t, 10> namespaceId{};
};

// A vendor's own format: manufacturer data under companyId that starts with `prefix`;
// the tag id is `idLength` bytes at `idOffset` (offsets count from the first payload byte).
struct ManufacturerRule {
    std::uint16_t companyId = 0;
    Bytes prefix;
    std::size_t idOffset = 0;
    std::size_t idLength = 0;
};

struct CompanyRules {
    std::string name;  // [a-z0-9_-]{1,64}: also the queue's directory name
    std::vector<IBeaconRule> ibeacon;
    std::vector<EddystoneRule> eddystone;
    std::vector<ManufacturerRule> manufacturer;
};

// A registered tag seen in one advertisement. No address, no other payload survives.
struct TagSighting {
    std::size_t company = 0;  // index into the rule set's companies
    std::string tagId;        // "ibeacon:<uuid>:<major>:<minor>", "eddystone:<ns>:<instance>", "mfr:<cid>:<hex>"
    std::optional<int> rssi;  // unset: identifies the device but does not count as a sighting
    common::UtcMicros time = 0;
    std::int64_t monotonic = 0;
};

// Immutable after construction; decode() is pure and safe to call from any thread.
class TagDecoder {
public:
    explicit TagDecoder(std::vector<CompanyRules> companies);

    // The registered tag this advertisement carries, or nullopt (then nothing about it is kept).
    // Malformed payloads (short, wrong lengths) simply do not match.
    [[nodiscard]] std::optional<TagSighting> decode(const Advertisement& ad) const;

    [[nodiscard]] const std::vector<CompanyRules>& companies() const { return companies_; }

private:
    std::vector<CompanyRules> companies_;
};

// Validation of a rule set: every overlap between two companies' rules (an advertisement that
// could be claimed by both), each named. Empty when the rules are disjoint.
[[nodiscard]] std::vector<std::string> findRuleOverlaps(const std::vector<CompanyRules>& companies);

inline constexpr std::uint16_t kAppleCompanyId = 0x004C;
inline constexpr const char* kEddystoneServiceUuid = "0000feaa-0000-1000-8000-00805f9b34fb";

}  // namespace mimamori::ble

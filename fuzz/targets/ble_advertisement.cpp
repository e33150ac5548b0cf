// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the BLE tag decoders (iBeacon, Eddystone-UID, vendor manufacturer data) on
// advertisements built from the input: records of [kind][length][bytes], kind bit 0 choosing
// manufacturer data (2-byte company id first) or service data (bit 1: Eddystone's UUID).
#include "mimamori/ble/tags.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace mimamori::ble;

namespace {

TagDecoder makeDecoder() {
    CompanyRules a;
    a.name = "company-a";
    IBeaconRule ib;
    for (std::size_t i = 0; i < ib.uuid.size(); ++i) ib.uuid[i] = static_cast<std::uint8_t>(0xa0 + i);
    a.ibeacon.push_back(ib);
    EddystoneRule ed;
    for (std::size_t i = 0; i < ed.namespaceId.size(); ++i) ed.namespaceId[i] = static_cast<std::uint8_t>(0x10 + i);
    a.eddystone.push_back(ed);
    CompanyRules b;
    b.name = "company-b";
    IBeaconRule ibMajor;
    ibMajor.uuid.fill(0xb1);
    ibMajor.major = 0x0102;
    b.ibeacon.push_back(ibMajor);
    b.manufacturer.push_back(ManufacturerRule{0x0059, {0x01, 0x02}, 2, 6});
    b.manufacturer.push_back(ManufacturerRule{0x0ffe, {}, 0, 1});
    b.manufacturer.push_back(ManufacturerRule{0x0ffd, {0xaa}, 250, 4});  // id past most payloads
    return TagDecoder({a, b});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const TagDecoder decoder = makeDecoder();
    Advertisement ad;
    ad.address = "00:11:22:33:44:55";
    ad.rssi = -60;
    std::size_t at = 0;
    while (at + 2 <= size) {
        const std::uint8_t kind = data[at];
        const std::size_t length = std::min<std::size_t>(data[at + 1], size - at - 2);
        const std::uint8_t* bytes = data + at + 2;
        at += 2 + length;
        if (kind & 1) {
            if (length < 2) continue;
            const auto company = static_cast<std::uint16_t>(bytes[0] | bytes[1] << 8);
            ad.manufacturerData[company] = Bytes(bytes + 2, bytes + length);
        } else {
            const std::string uuid = (kind & 2) ? kEddystoneServiceUuid : "0000fe9a-0000-1000-8000-00805f9b34fb";
            ad.serviceData[uuid] = Bytes(bytes, bytes + length);
        }
    }
    if (const auto sighting = decoder.decode(ad)) {
        if (sighting->company >= decoder.companies().size() || sighting->tagId.empty()) std::abort();
        if (sighting->tagId.find(ad.address) != std::string::npos) std::abort();  // no address survives
    }
    return 0;
}

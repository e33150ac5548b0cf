// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the H.264 sequence parameter set reader, and the Annex-B to length-prefixed
// conversion that finds the SPS and PPS in an access unit.
#include "mimamori/retrieval/h264.hpp"

#include <cstdint>
#include <cstdlib>
#include <vector>

using namespace mimamori::retrieval;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const SpsInfo sps = parseSps({data, size});
        if (sps.width <= 0 || sps.height <= 0) std::abort();  // what parses can describe a sample entry
    } catch (const ExtractError&) {
    }
    std::vector<std::uint8_t> out;
    try {
        const AvccAccessUnit au = annexBToAvcc({data, size}, out);
        for (const auto& sps : au.parameterSets.sps) {
            try {
                (void)parseSps(sps);
            } catch (const ExtractError&) {
            }
        }
    } catch (const ExtractError&) {
    }
    return 0;
}

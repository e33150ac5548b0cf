// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Replays the ts_mp4 corpus through the same round trip as the fuzz target and has ffprobe
// open every MP4 it produces: the check a fuzz execution is too short to afford.
#include "ts_mp4_remux.hpp"

#include "../tests/support/run_command.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

using mimamori::testing::runCommand;

TEST_CASE("every ts_mp4 corpus input that demuxes remuxes to an MP4 ffprobe reads at the SPS's size") {
    const std::filesystem::path corpus = std::filesystem::path(MIMAMORI_FUZZ_CORPUS) / "ts_mp4";
    std::vector<std::filesystem::path> inputs;
    for (const auto& e : std::filesystem::directory_iterator(corpus)) inputs.push_back(e.path());
    std::sort(inputs.begin(), inputs.end());
    const std::filesystem::path out =
        std::filesystem::temp_directory_path() / fmt::format("mimamori-fuzz-ffprobe-{}.mp4", ::getpid());
    std::size_t remuxed = 0;
    for (const auto& input : inputs) {
        std::ifstream in(input, std::ios::binary);
        const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        const mimamori::fuzz::RemuxResult r = mimamori::fuzz::remuxTs(bytes);
        if (r.mp4.empty()) continue;
        ++remuxed;
        {
            std::ofstream f(out, std::ios::binary | std::ios::trunc);
            f.write(reinterpret_cast<const char*>(r.mp4.data()), static_cast<std::streamsize>(r.mp4.size()));
        }
        // -v error prints every problem ffprobe finds in the container; none is allowed.
        const auto probe = runCommand(fmt::format(
            "ffprobe -v error -count_packets -show_entries stream=codec_name,width,height,nb_read_packets "
            "-of csv=p=0 '{}' 2>&1",
            out.string()));
        INFO(input.filename().string(), ": ", probe.output);
        CHECK(probe.status == 0);
        CHECK(probe.output == fmt::format("h264,{},{},{}\n", r.sps.width, r.sps.height, r.samples));
    }
    std::filesystem::remove(out);
    // Seeds recorded by the recorder's own chain must remux, or this test would check nothing.
    CHECK(remuxed >= 2);
}

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The MPEG-TS demuxer: every access unit of the recorder's streams with its times, and a clear
// ExtractError (never a crash) for anything damaged.
#include "media.hpp"

#include "mimamori/retrieval/h264.hpp"
#include "mimamori/retrieval/ts_demux.hpp"

#include <doctest/doctest.h>

#include <random>

using namespace mimamori;
using namespace mimamori::retrieval;
using namespace mimamori::retrieval::test;

namespace {

struct Demuxed {
    std::vector<std::int64_t> pts, dts;
    std::vector<bool> keyframes;
    std::vector<std::vector<std::uint8_t>> data;
};

Demuxed demux(const std::vector<std::uint8_t>& ts, std::size_t piece = 0, bool truncatedTail = false) {
    Demuxed d;
    TsDemuxer demuxer([&](const TsAccessUnit& au) {
        d.pts.push_back(au.pts);
        d.dts.push_back(au.dts);
        std::vector<std::uint8_t> avcc;
        d.keyframes.push_back(annexBToAvcc(au.data, avcc).keyframe);
        d.data.emplace_back(au.data.begin(), au.data.end());
    });
    const std::span<const std::uint8_t> all(ts);
    if (piece == 0) piece = all.size();
    for (std::size_t i = 0; i < all.size(); i += piece) demuxer.push(all.subspan(i, std::min(piece, all.size() - i)));
    demuxer.finish(truncatedTail);
    return d;
}

// The packets of a TS with `keep(index)` false left out.
template <typename Keep>
std::vector<std::uint8_t> filterPackets(const std::vector<std::uint8_t>& ts, Keep keep) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < ts.size() / 188; ++i)
        if (keep(i)) out.insert(out.end(), ts.begin() + static_cast<long>(i * 188), ts.begin() + static_cast<long>(i * 188 + 188));
    return out;
}

int pmtPidOf(const std::vector<std::uint8_t>& ts) {
    for (std::size_t i = 0; i < ts.size() / 188; ++i)
        if (pidOf(ts, i) == 0) {
            const std::uint8_t* p = &ts[i * 188 + 4];
            if (ts[i * 188 + 3] & 0x20) p += 1 + ts[i * 188 + 4];
            const std::uint8_t* section = p + 1 + p[0];
            return ((section[10] & 0x1F) << 8) | section[11];
        }
    return -1;
}

// The first section in packet `i` (after pointer_field), for surgery.
std::uint8_t* sectionIn(std::vector<std::uint8_t>& ts, std::size_t i) {
    std::uint8_t* p = &ts[i * 188 + 4];
    if (ts[i * 188 + 3] & 0x20) p += 1 + ts[i * 188 + 4];
    return p + 1 + p[0];
}

void fixCrc(std::uint8_t* section) {
    const std::size_t length = 3 + (((section[1] & 0x0F) << 8) | section[2]);
    const std::uint32_t crc = crcMpeg(section, length - 4);
    for (int k = 0; k < 4; ++k) section[length - 4 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(crc >> (24 - 8 * k));
}

// The PES header of the first unit-start packet on `pid` at or after packet `from`.
std::uint8_t* pesHeaderIn(std::vector<std::uint8_t>& ts, int pid, std::size_t from = 0) {
    for (std::size_t i = from; i < ts.size() / 188; ++i)
        if (pidOf(ts, i) == pid && unitStart(ts, i)) {
            std::uint8_t* p = &ts[i * 188 + 4];
            if (ts[i * 188 + 3] & 0x20) p += 1 + ts[i * 188 + 4];
            return p;
        }
    return nullptr;
}

constexpr int kVideoPid = 65;  // mpegtsmux's first stream

}  // namespace

TEST_CASE("the demuxer yields every access unit with ffprobe's PTS and DTS, whatever the piece sizes") {
    const std::vector<std::uint8_t> ts = encodeRecorderTs({.frames = 40, .bframes = 2});
    TempDir dir;
    const std::vector<Packet> probed = probePackets(writeBytes(dir.path() / "in.ts", ts));
    REQUIRE(probed.size() == 40);
    const Demuxed whole = demux(ts);
    REQUIRE(whole.pts.size() == probed.size());
    bool reordered = false;
    for (std::size_t i = 0; i < probed.size(); ++i) {
        CHECK(whole.pts[i] == probed[i].pts);
        CHECK(whole.dts[i] == probed[i].dts);
        CHECK(whole.keyframes[i] == probed[i].keyframe);
        reordered |= whole.pts[i] != whole.dts[i];
    }
    CHECK(reordered);  // the stream does have B-frames
    for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{188}, std::size_t{1000}, std::size_t{65536}}) {
        CAPTURE(piece);
        const Demuxed pieces = demux(ts, piece);
        CHECK(pieces.pts == whole.pts);
        CHECK(pieces.dts == whole.dts);
        CHECK(pieces.data == whole.data);
    }
}

TEST_CASE("33-bit timestamp differences hold across the wrap") {
    constexpr std::int64_t kWrap = std::int64_t{1} << 33;
    CHECK(tsTimeDiff(100, 50) == 50);
    CHECK(tsTimeDiff(50, 100) == -50);
    CHECK(tsTimeDiff(10, kWrap - 10) == 20);
    CHECK(tsTimeDiff(kWrap - 10, 10) == -20);
}

TEST_CASE("a damaged stream is an ExtractError that says what is wrong") {
    const std::vector<std::uint8_t> ts = encodeRecorderTs({.frames = 20});
    const std::size_t packets = ts.size() / 188;
    const int pmtPid = pmtPidOf(ts);
    REQUIRE(pmtPid > 0);
    const std::size_t units = demux(ts).pts.size();
    REQUIRE(units == 20);

    SUBCASE("garbage") {
        std::mt19937 random(7);
        std::vector<std::uint8_t> garbage(188 * 20);
        for (auto& b : garbage) b = static_cast<std::uint8_t>(random());
        garbage[0] = 0x12;
        CHECK_THROWS_WITH_AS(demux(garbage), doctest::Contains("lost sync"), ExtractError);
    }
    SUBCASE("cut inside a packet, unless it may be (a segment recovered after a power cut)") {
        const std::vector<std::uint8_t> cut(ts.begin(), ts.end() - 100);
        CHECK_THROWS_WITH_AS(demux(cut), doctest::Contains("ends inside a TS packet"), ExtractError);
        const Demuxed recovered = demux(cut, 0, true);
        CHECK(recovered.pts.size() == units - 1);  // the last access unit may be incomplete: dropped
    }
    SUBCASE("a lost packet breaks the continuity counter") {
        std::size_t victim = 0;
        for (std::size_t i = packets / 2; i < packets; ++i)
            if (pidOf(ts, i) == kVideoPid && !unitStart(ts, i)) {
                victim = i;
                break;
            }
        REQUIRE(victim > 0);
        CHECK_THROWS_WITH_AS(demux(filterPackets(ts, [&](std::size_t i) { return i != victim; })),
                             doctest::Contains("continuity counter jumps"), ExtractError);
    }
    SUBCASE("a repeated packet is a duplicate, not a loss") {
        std::vector<std::uint8_t> doubled;
        for (std::size_t i = 0; i < packets; ++i) {
            const auto p = ts.begin() + static_cast<long>(i * 188);
            doubled.insert(doubled.end(), p, p + 188);
            if (i == packets / 2 && pidOf(ts, i) == kVideoPid) doubled.insert(doubled.end(), p, p + 188);
        }
        CHECK(demux(doubled).data == demux(ts).data);
    }
    SUBCASE("no PAT") {
        CHECK_THROWS_WITH_AS(demux(filterPackets(ts, [&](std::size_t i) { return pidOf(ts, i) != 0; })),
                             doctest::Contains("no PAT"), ExtractError);
    }
    SUBCASE("no PMT") {
        const std::string message = fmt::format("no PMT on PID {}", pmtPid);
        CHECK_THROWS_WITH_AS(demux(filterPackets(ts, [&](std::size_t i) { return pidOf(ts, i) != pmtPid; })),
                             doctest::Contains(message.c_str()), ExtractError);
    }
    SUBCASE("a PMT without H.264") {
        std::vector<std::uint8_t> other = ts;
        for (std::size_t i = 0; i < packets; ++i)
            if (pidOf(other, i) == pmtPid && unitStart(other, i)) {
                std::uint8_t* section = sectionIn(other, i);
                const std::size_t programInfo = ((section[10] & 0x0F) << 8) | section[11];
                REQUIRE(section[12 + programInfo] == 0x1B);
                section[12 + programInfo] = 0x02;  // MPEG-2 video
                fixCrc(section);
            }
        CHECK_THROWS_WITH_AS(demux(other), doctest::Contains("no H.264 stream"), ExtractError);
    }
    SUBCASE("a section with a bad CRC") {
        std::vector<std::uint8_t> bad = ts;
        sectionIn(bad, 0)[9] ^= 0x01;
        CHECK_THROWS_WITH_AS(demux(bad), doctest::Contains("CRC mismatch"), ExtractError);
    }
    SUBCASE("an access unit without PTS") {
        std::vector<std::uint8_t> bad = ts;
        std::uint8_t* pes = pesHeaderIn(bad, kVideoPid);
        REQUIRE(pes);
        pes[7] &= 0x3F;
        CHECK_THROWS_WITH_AS(demux(bad), doctest::Contains("without PTS"), ExtractError);
    }
    SUBCASE("the transport error flag") {
        std::vector<std::uint8_t> bad = ts;
        bad[5 * 188 + 1] |= 0x80;
        CHECK_THROWS_WITH_AS(demux(bad), doctest::Contains("transport_error_indicator"), ExtractError);
    }
}

TEST_CASE("thousands of random mutations of a real segment give access units or an ExtractError, never a crash") {
    const std::vector<std::uint8_t> ts = encodeRecorderTs({.frames = 12, .width = 160, .height = 120});
    std::mt19937 random(20261118);
    int failed = 0, passed = 0;
    for (int round = 0; round < 4000; ++round) {
        std::vector<std::uint8_t> m = ts;
        const std::size_t packets = m.size() / 188;
        switch (round % 5) {
        case 0:  // a few bytes anywhere
        case 1:
            for (int k = 0; k < 1 + round % 7; ++k) m[random() % m.size()] = static_cast<std::uint8_t>(random());
            break;
        case 2:  // cut anywhere
            m.resize(random() % m.size());
            break;
        case 3: {  // a packet lost
            const std::size_t victim = random() % packets;
            m = filterPackets(m, [&](std::size_t i) { return i != victim; });
            break;
        }
        default: {  // bytes in the headers only: PES and section fields
            for (int k = 0; k < 3; ++k) {
                const std::size_t packet = random() % packets;
                m[packet * 188 + 4 + random() % 24] = static_cast<std::uint8_t>(random());
            }
            break;
        }
        }
        try {
            TsDemuxer demuxer([&](const TsAccessUnit& au) {
                std::vector<std::uint8_t> avcc;
                const AvccAccessUnit converted = annexBToAvcc(au.data, avcc);
                for (const auto& sps : converted.parameterSets.sps) parseSps(sps);
            });
            demuxer.push(m);
            demuxer.finish(round % 2 == 0);
            ++passed;
        } catch (const ExtractError&) {
            ++failed;
        }
    }
    CHECK(failed > 100);  // the mutations do reach the checks
    CHECK(passed > 100);  // and harmless ones (inside slice data) pass
}

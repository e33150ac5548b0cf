// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Media helpers for the remux tests: TS encoded the way the recorder does, decoding to raw
// frames with GStreamer and ffmpeg, ffprobe's packet list, TS packet surgery.
#pragma once

#include "fixture.hpp"

#include "../support/run_command.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace mimamori::retrieval::test {

struct TsOptions {
    int frames = 30;
    int fps = 10;
    int fpsDen = 1;  // frame rate fps/fpsDen: 24000/1001 for 23.976
    int keyInterval = 10;
    int width = 320;
    int height = 240;
    int bframes = 0;
    int pattern = 18;  // ball: every frame differs
    std::string x264 = "";  // more x264enc properties
};

// MPEG-TS through the recorder's own chain (recorder/src/pipeline.cpp): x264enc ! h264parse
// config-interval=-1 ! byte-stream, au ! mpegtsmux with PAT/PMT before every keyframe.
inline std::vector<std::uint8_t> encodeRecorderTs(const TsOptions& o) {
    return runToBytes(fmt::format(
        "videotestsrc num-buffers={} pattern={} ! video/x-raw,format=I420,width={},height={},framerate={}/{} ! "
        "x264enc key-int-max={} bframes={} speed-preset=ultrafast {} ! h264parse config-interval=-1 ! "
        "video/x-h264,stream-format=byte-stream,alignment=au ! mpegtsmux pat-interval=90000 pmt-interval=90000 ! "
        "appsink name=sink sync=false",
        o.frames, o.pattern, o.width, o.height, o.fps, o.fpsDen, o.keyInterval, o.bframes, o.x264));
}

inline fs::path writeBytes(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
    common::writeFileAtomic(file, std::string(bytes.begin(), bytes.end()));
    return file;
}

// Every decoded frame (I420 bytes as the decoder laid them out) and its stream time.
struct RawFrame {
    std::string bytes;
    std::int64_t streamTimeUs = -1;
};

// `demux`: "tsdemux" or "qtdemux". GStreamer's avdec_h264, as the police's players would.
inline std::vector<RawFrame> decodeWithGstreamer(const fs::path& file, const std::string& demux) {
    std::vector<RawFrame> frames;
    const std::string failure = pullSamples(
        fmt::format("filesrc location=\"{}\" ! {} ! h264parse ! avdec_h264 ! video/x-raw,format=I420 ! "
                    "appsink name=sink sync=false",
                    file.string(), demux),
        [&](GstSample* sample) {
            GstBuffer* buffer = gst_sample_get_buffer(sample);
            RawFrame f;
            const GstSegment* segment = gst_sample_get_segment(sample);
            if (GST_BUFFER_PTS_IS_VALID(buffer) && segment) {
                const guint64 t = gst_segment_to_stream_time(segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
                if (t != GST_CLOCK_TIME_NONE) f.streamTimeUs = static_cast<std::int64_t>(t / GST_USECOND);
            }
            GstMapInfo map;
            if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
                f.bytes.assign(reinterpret_cast<const char*>(map.data), map.size);
                gst_buffer_unmap(buffer, &map);
            }
            frames.push_back(std::move(f));
        });
    if (!failure.empty()) throw std::runtime_error("GStreamer could not decode " + file.string() + ": " + failure);
    return frames;
}

// All frames as ffmpeg decodes them, raw yuv420p back to back, none dropped or repeated, each
// at its own size (no scaling when the resolution changes).
inline std::string decodeWithFfmpeg(const fs::path& file) {
    const auto r = testing::runCommand(fmt::format(
        "ffmpeg -nostdin -v error -i '{}' -fps_mode passthrough -autoscale 0 -f rawvideo -pix_fmt yuv420p - 2>/dev/null",
        file.string()));
    REQUIRE(r.status == 0);
    return r.output;
}

struct Packet {
    std::int64_t pts = 0;
    std::int64_t dts = 0;
    bool keyframe = false;
};

// ffprobe's view of the video packets, in file (decode) order, in the stream's time base
// (90 kHz for both the TS and the extract).
inline std::vector<Packet> probePackets(const fs::path& file) {
    const auto r = testing::runCommand(fmt::format(
        "ffprobe -v error -select_streams v:0 -show_entries packet=pts,dts,flags -of csv=p=0 '{}'", file.string()));
    REQUIRE(r.status == 0);
    std::vector<Packet> packets;
    std::istringstream lines(r.output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty()) continue;
        Packet p;
        char flags[8] = {};
        REQUIRE(std::sscanf(line.c_str(), "%ld,%ld,%7s", &p.pts, &p.dts, flags) == 3);
        p.keyframe = flags[0] == 'K';
        packets.push_back(p);
    }
    return packets;
}

// The message of the ExtractError `f` throws ("" when it throws none).
template <typename F>
std::string extractErrorOf(F&& f) {
    try {
        f();
    } catch (const ExtractError& e) {
        return e.what();
    }
    return "";
}
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The 33-bit timestamp at `p` (PES header layout) and writing one there.
inline std::int64_t readPesTime(const std::uint8_t* p) {
    return (std::int64_t{(p[0] >> 1) & 7} << 30) | (std::int64_t{p[1]} << 22) | (std::int64_t{p[2] >> 1} << 15) |
           (std::int64_t{p[3]} << 7) | (p[4] >> 1);
}
inline void writePesTime(std::uint8_t* p, std::int64_t t) {
    p[0] = static_cast<std::uint8_t>((p[0] & 0xF0) | ((t >> 29) & 0x0E) | 1);
    p[1] = static_cast<std::uint8_t>(t >> 22);
    p[2] = static_cast<std::uint8_t>(((t >> 14) & 0xFE) | 1);
    p[3] = static_cast<std::uint8_t>(t >> 7);
    p[4] = static_cast<std::uint8_t>(((t << 1) & 0xFE) | 1);
}

// The PTS and DTS of every video PES (PID 65, the recorder's) in stream order, rewritable: each
// entry points into `ts`. A PES without DTS has dts == nullptr.
struct PesTimes {
    std::uint8_t* pts = nullptr;
    std::uint8_t* dts = nullptr;
};
inline std::vector<PesTimes> videoPesTimes(std::vector<std::uint8_t>& ts) {
    std::vector<PesTimes> out;
    for (std::size_t i = 0; i < ts.size() / 188; ++i) {
        std::uint8_t* packet = &ts[i * 188];
        if ((((packet[1] & 0x1F) << 8) | packet[2]) != 65 || !(packet[1] & 0x40)) continue;
        std::uint8_t* p = packet + 4;
        if (packet[3] & 0x20) p += 1 + packet[4];
        const int flags = p[7] >> 6;
        out.push_back({p + 9, flags == 3 ? p + 14 : nullptr});
    }
    return out;
}

// TS packet surgery for the error tests.
inline int pidOf(const std::vector<std::uint8_t>& ts, std::size_t packet) {
    return ((ts[packet * 188 + 1] & 0x1F) << 8) | ts[packet * 188 + 2];
}
inline bool unitStart(const std::vector<std::uint8_t>& ts, std::size_t packet) { return ts[packet * 188 + 1] & 0x40; }

// Independent of the demuxer's: CRC-32/MPEG-2, bit by bit.
inline std::uint32_t crcMpeg(const std::uint8_t* p, std::size_t n) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        crc ^= static_cast<std::uint32_t>(p[i]) << 24;
        for (int b = 0; b < 8; ++b) crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    return crc;
}

}  // namespace mimamori::retrieval::test

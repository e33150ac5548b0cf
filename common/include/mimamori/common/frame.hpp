// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Framed messages over a stream socket, the link between mimamorid and its endpoint process
// (docs/endpoint-process.md): the frame itself, its payload's encoding, and a client that waits
// for the answer to each call while a reader thread hands other frames (pings) to a callback.
#pragma once

#include "mimamori/common/file.hpp"
#include "mimamori/common/result.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace mimamori::common {

// On the wire: u32 payload length, u8 kind, u32 id (all little-endian), then the payload.
struct Frame {
    std::uint8_t kind = 0;
    std::uint32_t id = 0;
    std::string payload;
};
inline constexpr std::size_t kFrameHeaderBytes = 9;

// Reads one frame. A payload longer than `maxPayload` is refused before anything is allocated
// for it. End of stream, a short frame, or a receive timeout (SO_RCVTIMEO) are errors; the
// stream is unusable after any error.
[[nodiscard]] Result<Frame> readFrame(int fd, std::size_t maxPayload);
// Writes one frame whole (retrying short writes; no SIGPIPE). A send timeout (SO_SNDTIMEO) is
// an error.
[[nodiscard]] Result<void> writeFrame(int fd, const Frame& frame);

// Builds a payload: integers little-endian, text and bytes as u32 length then the bytes.
class WireWriter {
public:
    WireWriter& u8(std::uint8_t v);
    WireWriter& u32(std::uint32_t v);
    WireWriter& u64(std::uint64_t v);
    WireWriter& bytes(std::string_view v);
    [[nodiscard]] std::string take() { return std::move(out_); }

private:
    std::string out_;
};

// Reads a payload written by WireWriter. Reading past the end yields zeros/empty and marks the
// reader failed, so a caller reads every field and checks ok() (and atEnd()) once.
class WireReader {
public:
    explicit WireReader(std::string_view in) : in_(in) {}
    [[nodiscard]] std::uint8_t u8();
    [[nodiscard]] std::uint32_t u32();
    [[nodiscard]] std::uint64_t u64();
    // A length-prefixed run of bytes, refused (failed) beyond `maxBytes`.
    [[nodiscard]] std::string bytes(std::size_t maxBytes);
    [[nodiscard]] bool ok() const { return !failed_; }
    [[nodiscard]] bool atEnd() const { return !failed_ && in_.empty(); }

private:
    [[nodiscard]] std::uint64_t little(std::size_t n);
    std::string_view in_;
    bool failed_ = false;
};

// One side of a link that makes calls (a frame with a fresh id, answered by a frame with the
// same id) and also receives frames it did not ask for (id 0: pings), which a reader thread
// hands to `onOther` together with the client, to answer on. When the link breaks (end of stream, bad frame), every waiting call fails
// and `onClosed` runs once on the reader thread with the reason. Thread-safe: any thread may
// call(); the callbacks run on the reader thread and must not call().
class FrameClient {
public:
    using OtherHandler = std::function<void(const Frame&, FrameClient&)>;
    using ClosedHandler = std::function<void(const std::string&)>;
    FrameClient(UniqueFd fd, std::size_t maxPayload, OtherHandler onOther, ClosedHandler onClosed);
    ~FrameClient();  // shuts the socket down and joins the reader
    FrameClient(const FrameClient&) = delete;
    FrameClient& operator=(const FrameClient&) = delete;

    // Sends a request and waits for its answer, at most `timeout`.
    [[nodiscard]] Result<Frame> call(std::uint8_t kind, std::string payload, std::chrono::milliseconds timeout);
    // Sends a frame that is not a call (a pong, a report).
    [[nodiscard]] Result<void> send(const Frame& frame);

private:
    void readLoop();

    UniqueFd fd_;
    std::size_t maxPayload_;
    OtherHandler onOther_;
    ClosedHandler onClosed_;
    std::mutex writeMutex_;  // one frame on the wire at a time
    std::mutex mutex_;       // guards what follows
    std::condition_variable answered_;
    std::uint32_t nextId_ = 1;
    std::map<std::uint32_t, std::optional<Frame>> pending_;
    std::string closed_;     // non-empty once the link broke
    std::thread reader_;
};

}  // namespace mimamori::common

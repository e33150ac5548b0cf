// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Framed messages over a stream socket (docs/endpoint-process.md, "Frames").
#include "mimamori/common/frame.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace mimamori::common {
namespace {

// Reads exactly `n` bytes; false at end of stream or on an error (errno says which; 0 at end).
bool readExactly(int fd, char* out, std::size_t n) {
    while (n > 0) {
        const ssize_t got = ::recv(fd, out, n, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got == 0) errno = 0;
            return false;
        }
        out += got;
        n -= static_cast<std::size_t>(got);
    }
    return true;
}

std::string readError(const char* what) {
    if (errno == 0) return fmt::format("{}: the other side closed the link", what);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return fmt::format("{}: timed out", what);
    return fmt::format("{}: {}", what, std::strerror(errno));
}

void putLittle(std::string& out, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t getLittle(const char* in, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    return v;
}

}  // namespace

Result<Frame> readFrame(int fd, std::size_t maxPayload) {
    char header[kFrameHeaderBytes];
    if (!readExactly(fd, header, sizeof header)) return Error{readError("frame header")};
    const std::uint64_t length = getLittle(header, 4);
    if (length > maxPayload) return Error{fmt::format("frame of {} bytes, over the limit of {}", length, maxPayload)};
    Frame frame;
    frame.kind = static_cast<std::uint8_t>(header[4]);
    frame.id = static_cast<std::uint32_t>(getLittle(header + 5, 4));
    frame.payload.resize(static_cast<std::size_t>(length));
    if (!readExactly(fd, frame.payload.data(), frame.payload.size())) return Error{readError("frame payload")};
    return frame;
}

Result<void> writeFrame(int fd, const Frame& frame) {
    if (frame.payload.size() > UINT32_MAX) return Error{"frame payload over 4 GiB"};
    std::string bytes;
    bytes.reserve(kFrameHeaderBytes + frame.payload.size());
    putLittle(bytes, frame.payload.size(), 4);
    bytes.push_back(static_cast<char>(frame.kind));
    putLittle(bytes, frame.id, 4);
    bytes += frame.payload;
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t sent = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return Error{"frame write: timed out"};
            return Error{fmt::format("frame write: {}", std::strerror(errno))};
        }
        done += static_cast<std::size_t>(sent);
    }
    return success();
}

WireWriter& WireWriter::u8(std::uint8_t v) {
    putLittle(out_, v, 1);
    return *this;
}
WireWriter& WireWriter::u32(std::uint32_t v) {
    putLittle(out_, v, 4);
    return *this;
}
WireWriter& WireWriter::u64(std::uint64_t v) {
    putLittle(out_, v, 8);
    return *this;
}
WireWriter& WireWriter::bytes(std::string_view v) {
    putLittle(out_, v.size(), 4);
    out_.append(v);
    return *this;
}

std::uint64_t WireReader::little(std::size_t n) {
    if (failed_ || in_.size() < n) {
        failed_ = true;
        return 0;
    }
    const std::uint64_t v = getLittle(in_.data(), n);
    in_.remove_prefix(n);
    return v;
}
std::uint8_t WireReader::u8() { return static_cast<std::uint8_t>(little(1)); }
std::uint32_t WireReader::u32() { return static_cast<std::uint32_t>(little(4)); }
std::uint64_t WireReader::u64() { return little(8); }
std::string WireReader::bytes(std::size_t maxBytes) {
    const std::uint64_t n = little(4);
    if (failed_ || n > maxBytes || n > in_.size()) {
        failed_ = true;
        return {};
    }
    std::string v(in_.substr(0, static_cast<std::size_t>(n)));
    in_.remove_prefix(static_cast<std::size_t>(n));
    return v;
}

FrameClient::FrameClient(UniqueFd fd, std::size_t maxPayload, OtherHandler onOther, ClosedHandler onClosed)
    : fd_(std::move(fd)), maxPayload_(maxPayload), onOther_(std::move(onOther)), onClosed_(std::move(onClosed)) {
    reader_ = std::thread([this] { readLoop(); });
}

FrameClient::~FrameClient() {
    ::shutdown(fd_.get(), SHUT_RDWR);  // ends the reader's recv
    if (reader_.joinable()) reader_.join();
}

void FrameClient::readLoop() {
    std::string reason;
    for (;;) {
        Result<Frame> frame = readFrame(fd_.get(), maxPayload_);
        if (!frame) {
            reason = frame.error();
            break;
        }
        if (frame->id == 0) {
            onOther_(*frame, *this);
            continue;
        }
        std::lock_guard lock(mutex_);
        auto it = pending_.find(frame->id);
        if (it == pending_.end()) continue;  // the caller gave up waiting
        it->second = std::move(*frame);
        answered_.notify_all();
    }
    {
        std::lock_guard lock(mutex_);
        closed_ = reason;
        answered_.notify_all();
    }
    if (onClosed_) onClosed_(reason);
}

Result<void> FrameClient::send(const Frame& frame) {
    std::lock_guard lock(writeMutex_);
    return writeFrame(fd_.get(), frame);
}

Result<Frame> FrameClient::call(std::uint8_t kind, std::string payload, std::chrono::milliseconds timeout) {
    std::uint32_t id = 0;
    {
        std::lock_guard lock(mutex_);
        if (!closed_.empty()) return Error{closed_};
        id = nextId_++;
        if (nextId_ == 0) nextId_ = 1;  // 0 is for frames that answer no call
        pending_[id];
    }
    Result<void> sent = send(Frame{kind, id, std::move(payload)});
    std::unique_lock lock(mutex_);
    if (!sent) {
        pending_.erase(id);
        return Error{sent.error()};
    }
    const bool done = answered_.wait_for(lock, timeout, [&] { return pending_[id].has_value() || !closed_.empty(); });
    std::optional<Frame> answer = std::move(pending_[id]);
    pending_.erase(id);
    if (answer) return std::move(*answer);
    if (!done) return Error{fmt::format("no answer within {} ms", timeout.count())};
    return Error{closed_};
}

}  // namespace mimamori::common

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Segment files: names, header, and secretstream encryption/decryption chunk by chunk.
#include "mimamori/store/segment_format.hpp"

#include "mimamori/common/file.hpp"

#include <sodium.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

namespace mimamori::store::format {
namespace {

static_assert(std::endian::native == std::endian::little, "on-disk layouts are little-endian");
static_assert(kStreamHeaderBytes == crypto_secretstream_xchacha20poly1305_HEADERBYTES);
static_assert(kAuthBytes == crypto_secretstream_xchacha20poly1305_ABYTES);

constexpr std::size_t kMinCipher = kAuthBytes + sizeof(ChunkPrefix);
constexpr std::size_t kMaxCipher = kAuthBytes + kMaxChunkPlaintext;

// Reads up to `size` bytes, retrying on EINTR; returns how many were read (short only at EOF).
ssize_t readUpTo(int fd, std::uint8_t* out, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(fd, out + done, size - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return static_cast<ssize_t>(done);
}

std::string compactUtc(common::UtcMicros t) {
    std::int64_t micros = t % common::kMicrosPerSecond;
    if (micros < 0) micros += common::kMicrosPerSecond;
    std::string out;
    for (const char c : common::formatUtc(t - micros))
        if (c != '-' && c != ':' && c != 'Z') out += c;
    return out + fmt::format(".{:06}Z", micros);
}

using PushState = crypto_secretstream_xchacha20poly1305_state;

PushState* allocateState() {
    void* p = sodium_malloc(sizeof(PushState));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<PushState*>(p);
}

}  // namespace

std::string segmentFileName(std::uint64_t sequence, common::UtcMicros start, std::string_view suffix) {
    return fmt::format("{:016x}-{}{}", sequence, compactUtc(start), suffix);
}

std::optional<std::uint64_t> parseSegmentFileName(std::string_view name, std::string_view suffix) {
    if (name.size() <= 17 + suffix.size() || name[16] != '-' || !name.ends_with(suffix)) return std::nullopt;
    std::uint64_t sequence = 0;
    for (std::size_t i = 0; i < 16; ++i) {
        const char c = name[i];
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else return std::nullopt;
        sequence = sequence << 4 | static_cast<std::uint64_t>(v);
    }
    return sequence;
}

FileHeader makeHeader(std::string_view cameraId, std::uint64_t sequence, common::UtcMicros start,
                      std::int64_t keyDay, std::uint32_t flags) {
    FileHeader h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.headerBytes = sizeof(FileHeader);
    h.flags = flags;
    h.sequence = sequence;
    h.start = start;
    h.keyDay = keyDay;
    std::memcpy(h.cameraId, cameraId.data(), std::min(cameraId.size(), kCameraIdBytes));
    return h;
}

std::string cameraIdOf(const FileHeader& header) {
    const char* end = static_cast<const char*>(std::memchr(header.cameraId, 0, kCameraIdBytes));
    return std::string(header.cameraId, end != nullptr ? static_cast<std::size_t>(end - header.cameraId)
                                                       : kCameraIdBytes);
}

struct SegmentEncryptor::State {
    PushState state;
};

SegmentEncryptor::SegmentEncryptor(int fd, std::string what, FileHeader header, const common::SecureBuffer& key)
    : fd_(fd), what_(std::move(what)), header_(header),
      state_(reinterpret_cast<State*>(allocateState()), [](State* s) { sodium_free(s); }) {
    crypto_secretstream_xchacha20poly1305_init_push(&state_->state, header_.streamHeader, key.data());
    plain_.reserve(kMaxChunkPlaintext);
    cipher_.reserve(kLengthBytes + kMaxCipher);
    common::writeAll(fd_, {reinterpret_cast<const std::uint8_t*>(&header_), sizeof header_}, what_);
    bytesWritten_ = sizeof header_;
}

SegmentEncryptor::~SegmentEncryptor() {
    if (!plain_.empty()) sodium_memzero(plain_.data(), plain_.size());
}

void SegmentEncryptor::writeChunk(const ChunkPrefix& prefix, std::span<const std::uint8_t> payload) {
    if (payload.size() > kMaxPayloadPerChunk) throw std::logic_error("segment chunk payload too large");
    plain_.resize(sizeof prefix + payload.size());
    std::memcpy(plain_.data(), &prefix, sizeof prefix);
    if (!payload.empty()) std::memcpy(plain_.data() + sizeof prefix, payload.data(), payload.size());
    push(plain_, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
}

void SegmentEncryptor::writeFinal(const FinalRecord& record) {
    plain_.resize(sizeof record);
    std::memcpy(plain_.data(), &record, sizeof record);
    push(plain_, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
}

void SegmentEncryptor::push(std::span<const std::uint8_t> plaintext, std::uint8_t tag) {
    const std::uint32_t length = static_cast<std::uint32_t>(plaintext.size() + kAuthBytes);
    cipher_.resize(kLengthBytes + length);
    std::memcpy(cipher_.data(), &length, kLengthBytes);
    // The header is the additional data of the first chunk: changing any header byte breaks it.
    const bool first = std::exchange(first_, false);
    crypto_secretstream_xchacha20poly1305_push(
        &state_->state, cipher_.data() + kLengthBytes, nullptr, plaintext.data(), plaintext.size(),
        first ? reinterpret_cast<const std::uint8_t*>(&header_) : nullptr, first ? sizeof header_ : 0, tag);
    common::writeAll(fd_, cipher_, what_);
    bytesWritten_ += cipher_.size();
}

DecodeResult decodeSegment(int fd, std::string_view what, const KeyLookup& keys, const ChunkSink& sink) {
    DecodeResult result;
    FileHeader header{};
    const ssize_t got = readUpTo(fd, reinterpret_cast<std::uint8_t*>(&header), sizeof header);
    if (got < 0) {
        result.error = fmt::format("{}: read failed: {}", what, std::strerror(errno));
        return result;
    }
    if (static_cast<std::size_t>(got) < sizeof header) {
        result.truncated = true;
        result.error = fmt::format("{}: {} bytes, shorter than the {}-byte header", what, got, sizeof header);
        return result;
    }
    if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 || header.version != kVersion ||
        header.headerBytes != sizeof header) {
        result.error = fmt::format("{}: not a version {} segment (bad magic, version or header size)", what,
                                   kVersion);
        return result;
    }
    result.header = header;
    result.goodFileBytes = sizeof header;
    auto key = keys(header);
    if (!key) {
        result.error = fmt::format("{}: no key for day {} (shredded or unknown)", what, header.keyDay);
        return result;
    }
    PushState* state = allocateState();
    std::unique_ptr<PushState, void (*)(PushState*)> guard(state, [](PushState* s) { sodium_free(s); });
    if (crypto_secretstream_xchacha20poly1305_init_pull(state, header.streamHeader, key->data()) != 0) {
        result.error = fmt::format("{}: invalid stream header", what);
        return result;
    }
    // Sized per chunk as it comes: small segments are not charged for 64 KiB buffers.
    std::vector<std::uint8_t> cipher, plain;
    std::uint64_t offset = sizeof header;
    for (std::uint64_t index = 0;; ++index) {
        std::uint32_t length = 0;
        const ssize_t n = readUpTo(fd, reinterpret_cast<std::uint8_t*>(&length), kLengthBytes);
        if (n < 0) {
            result.error = fmt::format("{}: read failed: {}", what, std::strerror(errno));
            break;
        }
        if (n == 0) {
            result.truncated = true;
            result.error = fmt::format("{}: ends after {} chunks without its final chunk", what, index);
            break;
        }
        if (static_cast<std::size_t>(n) < kLengthBytes) {
            result.truncated = true;
            result.error = fmt::format("{}: ends inside the length of chunk {} at offset {}", what, index, offset);
            break;
        }
        if (length < kMinCipher || length > kMaxCipher) {
            result.error = fmt::format("{}: chunk {} at offset {} has an impossible length {}", what, index,
                                       offset, length);
            break;
        }
        if (cipher.size() < length) cipher.resize(length);
        if (plain.size() < length - kAuthBytes) plain.resize(length - kAuthBytes);
        const ssize_t c = readUpTo(fd, cipher.data(), length);
        if (c < 0) {
            result.error = fmt::format("{}: read failed: {}", what, std::strerror(errno));
            break;
        }
        if (static_cast<std::size_t>(c) < length) {
            result.truncated = true;
            result.error = fmt::format("{}: ends inside chunk {} at offset {}", what, index, offset);
            break;
        }
        unsigned long long plainLength = 0;
        std::uint8_t tag = 0;
        const bool first = index == 0;
        if (crypto_secretstream_xchacha20poly1305_pull(
                state, plain.data(), &plainLength, &tag, cipher.data(), length,
                first ? reinterpret_cast<const std::uint8_t*>(&header) : nullptr, first ? sizeof header : 0) != 0) {
            result.error = fmt::format("{}: chunk {} at offset {} fails authentication", what, index, offset);
            break;
        }
        offset += kLengthBytes + length;
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_MESSAGE && plainLength >= sizeof(ChunkPrefix)) {
            ChunkPrefix prefix{};
            std::memcpy(&prefix, plain.data(), sizeof prefix);
            const std::span<const std::uint8_t> payload(plain.data() + sizeof prefix,
                                                        static_cast<std::size_t>(plainLength) - sizeof prefix);
            if (sink) sink(prefix, payload);
            ++result.dataChunks;
            result.payloadBytes += payload.size();
            result.goodFileBytes = offset;
            result.lastPrefix = prefix;
            continue;
        }
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL && plainLength == sizeof(FinalRecord)) {
            FinalRecord record{};
            std::memcpy(&record, plain.data(), sizeof record);
            std::uint8_t extra = 0;
            if (readUpTo(fd, &extra, 1) != 0) {
                result.error = fmt::format("{}: bytes after the final chunk at offset {}", what, offset);
            } else if (record.dataChunks != result.dataChunks || record.payloadBytes != result.payloadBytes) {
                result.error = fmt::format("{}: final chunk counts {} chunks / {} bytes, file has {} / {}", what,
                                           record.dataChunks, record.payloadBytes, result.dataChunks,
                                           result.payloadBytes);
            } else {
                result.final = record;
                result.goodFileBytes = offset;
            }
            break;
        }
        result.error = fmt::format("{}: chunk {} at offset {} has an unexpected tag or size", what, index, offset);
        break;
    }
    if (!plain.empty()) sodium_memzero(plain.data(), plain.size());
    return result;
}

}  // namespace mimamori::store::format

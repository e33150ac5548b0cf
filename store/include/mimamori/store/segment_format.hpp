// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The on-disk layout of an encrypted segment (.mseg), byte by byte in docs/segment-format.md.
#pragma once

#include "mimamori/common/time.hpp"
#include "mimamori/store/key_ratchet.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::store::format {

inline constexpr char kMagic[8] = {'M', 'I', 'M', 'A', 'M', 'S', 'E', 'G'};
inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::uint32_t kFlagRecovered = 1;  // cut short by a crash, finalised on recovery
inline constexpr std::size_t kCameraIdBytes = 64;
inline constexpr std::size_t kStreamHeaderBytes = 24;  // crypto_secretstream_xchacha20poly1305_HEADERBYTES
inline constexpr std::size_t kAuthBytes = 17;           // crypto_secretstream_xchacha20poly1305_ABYTES
inline constexpr std::size_t kMaxChunkPlaintext = 64 * 1024;
inline constexpr std::size_t kLengthBytes = 4;  // little-endian ciphertext length before each chunk

// The file header, in clear, passed as additional data of the first chunk (so authenticated).
struct FileHeader {
    char magic[8];
    std::uint16_t version;
    std::uint16_t headerBytes;  // sizeof(FileHeader)
    std::uint32_t flags;
    std::uint64_t sequence;
    std::int64_t start;    // UTC micros of the first frame
    std::int64_t keyDay;   // the day whose key this segment's subkey comes from
    char cameraId[kCameraIdBytes];  // UTF-8, NUL-padded
    std::uint8_t streamHeader[kStreamHeaderBytes];
};
static_assert(sizeof(FileHeader) == 128);
static_assert(offsetof(FileHeader, version) == 8);
static_assert(offsetof(FileHeader, headerBytes) == 10);
static_assert(offsetof(FileHeader, flags) == 12);
static_assert(offsetof(FileHeader, sequence) == 16);
static_assert(offsetof(FileHeader, start) == 24);
static_assert(offsetof(FileHeader, keyDay) == 32);
static_assert(offsetof(FileHeader, cameraId) == 40);
static_assert(offsetof(FileHeader, streamHeader) == 104);

// The first 16 plaintext bytes of every data chunk (tag MESSAGE).
struct ChunkPrefix {
    std::int64_t mediaEnd;   // UTC just after the TS bytes of this chunk
    std::int64_t storeTime;  // the store's monotonic-checked time when the chunk was sealed
};
static_assert(sizeof(ChunkPrefix) == 16);
static_assert(offsetof(ChunkPrefix, storeTime) == 8);

inline constexpr std::size_t kMaxPayloadPerChunk = kMaxChunkPlaintext - sizeof(ChunkPrefix);
// Bytes a data chunk adds on disk around its TS payload: length, prefix and authentication tag.
inline constexpr std::size_t kChunkOverheadBytes = kLengthBytes + sizeof(ChunkPrefix) + kAuthBytes;

// The whole plaintext of the last chunk (tag FINAL).
struct FinalRecord {
    std::int64_t end;            // UTC just after the last frame
    std::int64_t storeTime;      // store time when the segment was sealed
    std::uint64_t payloadBytes;  // TS bytes in all data chunks
    std::uint64_t dataChunks;
};
static_assert(sizeof(FinalRecord) == 32);
static_assert(offsetof(FinalRecord, payloadBytes) == 16);

inline constexpr std::string_view kFinalSuffix = ".mseg";
inline constexpr std::string_view kPartialSuffix = ".part";
inline constexpr std::string_view kRecoverySuffix = ".rec";

// "<sequence, 16 lower-case hex digits>-<UTC start, YYYYMMDDTHHMMSS.ffffffZ><suffix>".
[[nodiscard]] std::string segmentFileName(std::uint64_t sequence, common::UtcMicros start, std::string_view suffix);
// The sequence of a name made by segmentFileName with this suffix; nullopt for anything else.
[[nodiscard]] std::optional<std::uint64_t> parseSegmentFileName(std::string_view name, std::string_view suffix);

[[nodiscard]] FileHeader makeHeader(std::string_view cameraId, std::uint64_t sequence, common::UtcMicros start,
                      std::int64_t keyDay, std::uint32_t flags);
[[nodiscard]] std::string cameraIdOf(const FileHeader& header);

// Encrypts a segment into an open file: header on construction, then chunks. Each chunk is one
// write(2) of length + ciphertext. Not thread-safe. The stream state lives in sodium_malloc'd
// memory and is wiped on destruction. Throws common::FileError on I/O errors.
class SegmentEncryptor {
public:
    SegmentEncryptor(int fd, std::string what, FileHeader header, const common::SecureBuffer& key);
    ~SegmentEncryptor();
    SegmentEncryptor(const SegmentEncryptor&) = delete;
    SegmentEncryptor& operator=(const SegmentEncryptor&) = delete;

    // payload.size() <= kMaxPayloadPerChunk.
    void writeChunk(const ChunkPrefix& prefix, std::span<const std::uint8_t> payload);
    void writeFinal(const FinalRecord& record);
    [[nodiscard]] std::uint64_t bytesWritten() const { return bytesWritten_; }

private:
    void push(std::span<const std::uint8_t> plaintext, std::uint8_t tag);

    int fd_;
    std::string what_;
    FileHeader header_;
    struct State;
    std::unique_ptr<State, void (*)(State*)> state_;
    bool first_ = true;
    std::vector<std::uint8_t> plain_;
    std::vector<std::uint8_t> cipher_;
    std::uint64_t bytesWritten_ = 0;
};

// What decoding a segment file found. `error` is empty only for a complete, authentic segment.
struct DecodeResult {
    std::optional<FileHeader> header;     // set once the header passed its format checks
    std::uint64_t dataChunks = 0;         // authenticated data chunks
    std::uint64_t payloadBytes = 0;       // TS bytes in them
    std::uint64_t goodFileBytes = 0;      // file offset just after the last authenticated chunk
    std::optional<ChunkPrefix> lastPrefix;  // of the last authenticated data chunk
    std::optional<FinalRecord> final;
    std::optional<std::string> error;
    bool truncated = false;  // the file ended inside a chunk or before the final chunk
};

// Returns the key for a header, or nullopt when it cannot be derived any more (shredded).
using KeyLookup = std::function<std::optional<common::SecureBuffer>(const FileHeader&)>;
// Called for each authenticated data chunk, in order; the span lives until it returns.
using ChunkSink = std::function<void(const ChunkPrefix&, std::span<const std::uint8_t>)>;

// Reads the file from offset 0 and authenticates chunk by chunk. Never throws for bad content:
// every problem ends up in `error`. `what` names the file in messages.
[[nodiscard]] DecodeResult decodeSegment(int fd, std::string_view what, const KeyLookup& keys, const ChunkSink& sink);

}  // namespace mimamori::store::format

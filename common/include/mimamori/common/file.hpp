// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Move-only file descriptors and the durable-write primitives every on-disk format uses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mimamori::common {

// Thrown for I/O failures; the message names the path and the errno text.
class FileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Owns one file descriptor; closes it on destruction. Not thread-safe.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool valid() const { return fd_ >= 0; }
    [[nodiscard]] int release();
    void reset(int fd = -1);

private:
    int fd_ = -1;
};

// Reads a whole file; throws FileError naming the path.
[[nodiscard]] std::string readFile(const std::filesystem::path& path);

// Writes all bytes, retrying on EINTR and short writes; throws FileError naming `what`.
void writeAll(int fd, std::span<const std::uint8_t> bytes, std::string_view what);

// Creates `path` as a new file of exactly `mode` (umask ignored) with O_EXCL | O_NOFOLLOW, so
// nothing planted at that name (a file, a symlink, a hard link) is ever written through: an
// existing entry is unlinked first (a symlink itself is removed, never its target), and a name
// planted again between the unlink and the create fails it. Throws FileError naming the path.
[[nodiscard]] UniqueFd createExclusive(const std::filesystem::path& path, std::filesystem::perms mode);

// Replaces `path` atomically: write "<path>.tmp" (through createExclusive), fsync it, rename
// over, fsync the directory. After a power cut the file holds either the old or the new
// content, never a mix; a symlink at `path` is replaced, not followed.
void writeFileAtomic(const std::filesystem::path& path, std::string_view content,
                     std::filesystem::perms mode = std::filesystem::perms::owner_read |
                                                   std::filesystem::perms::owner_write);

// fsync(2) on a directory, so a rename or unlink inside it survives a power cut.
void fsyncDirectory(const std::filesystem::path& dir);

}  // namespace mimamori::common

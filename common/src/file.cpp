// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Durable file primitives: every persistent state change goes through tmp + fsync + rename.
#include "mimamori/common/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace mimamori::common {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
}

UniqueFd::~UniqueFd() { reset(); }

int UniqueFd::release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
}

void UniqueFd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

std::string readFile(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
    std::string out;
    char buffer[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw FileError(fmt::format("{}: {}", path.string(), std::strerror(errno)));
        }
        if (n == 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

void writeAll(int fd, std::span<const std::uint8_t> bytes, std::string_view what) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw FileError(fmt::format("{}: write failed: {}", what, std::strerror(errno)));
        }
        done += static_cast<std::size_t>(n);
    }
}

void fsyncDirectory(const std::filesystem::path& dir) {
    UniqueFd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0)
        throw FileError(fmt::format("{}: fsync of directory failed: {}", dir.string(), std::strerror(errno)));
}

UniqueFd createExclusive(const std::filesystem::path& path, std::filesystem::perms mode) {
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd fd(::open(path.c_str(), flags, static_cast<mode_t>(mode)));
    if (!fd.valid() && errno == EEXIST) {
        // Left by a crash, or planted: unlink removes the name (a symlink itself, never its
        // target), then one more exclusive create; a name planted again in between fails it.
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            throw FileError(fmt::format("{}: exists and cannot be removed: {}", path.string(), std::strerror(errno)));
        fd.reset(::open(path.c_str(), flags, static_cast<mode_t>(mode)));
    }
    if (!fd.valid()) throw FileError(fmt::format("{}: cannot create: {}", path.string(), std::strerror(errno)));
    // open() honours the umask; the mode of a secret file must be exactly what was asked.
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
        throw FileError(fmt::format("{}: fchmod failed: {}", path.string(), std::strerror(errno)));
    return fd;
}

void writeFileAtomic(const std::filesystem::path& path, std::string_view content,
                     std::filesystem::perms mode) {
    const std::filesystem::path tmp = path.string() + ".tmp";
    {
        const UniqueFd fd = createExclusive(tmp, mode);
        writeAll(fd.get(), {reinterpret_cast<const std::uint8_t*>(content.data()), content.size()},
                 tmp.string());
        if (::fsync(fd.get()) != 0)
            throw FileError(fmt::format("{}: fsync failed: {}", tmp.string(), std::strerror(errno)));
    }
    // rename() replaces a symlink at `path` itself; it never writes through it.
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw FileError(fmt::format("{}: rename failed: {}", path.string(), std::strerror(errno)));
    fsyncDirectory(path.parent_path());
}

}  // namespace mimamori::common

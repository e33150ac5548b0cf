// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// Shared by the fuzz targets, the seed maker and the replay tests: fixed test keys, an
// in-memory file for parsers that read paths or descriptors, and an MP4 box walker.
#pragma once

#include "mimamori/policy/keys.hpp"

#include <fmt/format.h>
#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mimamori::fuzz {

// A key made from a fixed seed, so that seeds signed by make_seeds verify inside the targets.
// For fuzzing and tests only: the secret is public by construction.
inline policy::SecretKey fixedKey(policy::Role role, std::string_view name, std::uint8_t seedByte) {
    common::ensureSodium();
    std::uint8_t seed[crypto_sign_SEEDBYTES];
    std::memset(seed, seedByte, sizeof seed);
    std::uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    std::uint8_t sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, sk, seed);
    policy::SignPublicKey signPublic{};
    std::memcpy(signPublic.data(), pk, signPublic.size());
    std::string text = fmt::format("mimamori-key-v1\nkind: secret\nrole: {}\nname: {}\nkey-id: {}\n"
                                   "ed25519-public: {}\n",
                                   policy::roleName(role), name, policy::keyIdOf(signPublic),
                                   policy::toBase64(std::span<const std::uint8_t>(pk, sizeof pk)));
    std::string boxSecret;
    if (role == policy::Role::Police) {
        std::uint8_t bpk[crypto_box_PUBLICKEYBYTES];
        std::uint8_t bsk[crypto_box_SECRETKEYBYTES];
        std::uint8_t boxSeed[crypto_box_SEEDBYTES];
        std::memset(boxSeed, seedByte ^ 0xff, sizeof boxSeed);
        crypto_box_seed_keypair(bpk, bsk, boxSeed);
        text += fmt::format("x25519-public: {}\n", policy::toBase64(std::span<const std::uint8_t>(bpk, sizeof bpk)));
        boxSecret = fmt::format("x25519-secret: {}\n", policy::toBase64(std::span<const std::uint8_t>(bsk, sizeof bsk)));
    }
    text += fmt::format("ed25519-secret: {}\n", policy::toBase64(std::span<const std::uint8_t>(seed, sizeof seed)));
    text += boxSecret;
    return policy::parseSecretKey(std::span<const std::uint8_t>(
                                      reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                                  "fixed test key");
}

// One anonymous in-memory file (memfd), rewritten per input: the parsers that take a path or a
// descriptor read the fuzz input without touching the disk. path() reopens it from offset 0.
class MemFile {
public:
    MemFile() : fd_(::memfd_create("mimamori-fuzz", MFD_CLOEXEC)) {
        if (fd_ < 0) throw std::runtime_error("memfd_create failed");
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemFile() { ::close(fd_); }
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;

    void set(std::span<const std::uint8_t> bytes) {
        if (::ftruncate(fd_, 0) != 0) std::abort();
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
            if (n <= 0) std::abort();
            done += static_cast<std::size_t>(n);
        }
        if (::lseek(fd_, 0, SEEK_SET) != 0) std::abort();
    }
    int fd() const { return fd_; }
    const std::string& path() const { return path_; }

private:
    int fd_;
    std::string path_;
};

inline std::uint32_t be32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | static_cast<std::uint32_t>(p[3]);
}

// Checks that the boxes in `bytes` tile it exactly, recursing into the container boxes the
// writer makes, and counts the samples its trun boxes declare. Returns an error text or "".
inline std::string checkBoxes(std::span<const std::uint8_t> bytes, std::uint64_t& trunSamples, int depth = 0) {
    static constexpr std::string_view kContainers[] = {"moov", "trak", "mdia", "minf", "stbl", "mvex",
                                                       "moof", "traf", "mfra", "edts", "dinf"};
    std::size_t at = 0;
    while (at < bytes.size()) {
        if (bytes.size() - at < 8) return fmt::format("{} bytes after the last box at depth {}", bytes.size() - at, depth);
        const std::uint32_t size = be32(bytes.data() + at);
        std::string type(reinterpret_cast<const char*>(bytes.data() + at + 4), 4);
        for (char& c : type)
            if (c < 0x20 || c > 0x7e) c = '?';  // printable in the message, whatever the bytes
        if (size < 8 || size > bytes.size() - at)
            return fmt::format("box '{}' at {} (depth {}) has size {} of {} left", type, at, depth, size, bytes.size() - at);
        const auto body = bytes.subspan(at + 8, size - 8);
        for (std::string_view c : kContainers) {
            if (type == c) {
                if (auto e = checkBoxes(body, trunSamples, depth + 1); !e.empty()) return e;
            }
        }
        if (type == "trun") {
            if (body.size() < 8) return "trun shorter than its sample count";
            trunSamples += be32(body.data() + 4);
        }
        at += size;
    }
    return {};
}

}  // namespace mimamori::fuzz

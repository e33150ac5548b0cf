// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint process's sandbox (docs/endpoint-process.md, "Sandbox"): resource limits, file
// writes only beneath its own directories (Landlock), and a seccomp filter.
#pragma once

#include "mimamori/daemon/config.hpp"

#include <cstdint>
#include <filesystem>
#include <vector>

namespace mimamori::daemon {

struct SandboxSpec {
    // The only directories the process may create, write, rename or remove files beneath.
    std::vector<std::filesystem::path> writable;
    std::uint64_t maxFiles = 0;     // RLIMIT_NOFILE; 0 leaves it
    std::uint64_t memoryBytes = 0;  // RLIMIT_DATA; 0 leaves it (and so do sanitizer builds)
};

// The endpoint's sandbox from the config: it writes its own state (retrieval.ownStateDir: the
// nonce stores) and the plans in extract_dir, nothing else.
[[nodiscard]] SandboxSpec endpointSandbox(const DaemonConfig& config);

// Applies it to the calling process, irreversibly. Call before any thread exists (Landlock
// binds the calling thread and those it creates later). Throws std::runtime_error when a limit
// or the seccomp filter cannot be set; a kernel without Landlock is logged, not fatal.
void applySandbox(const SandboxSpec& spec);

}  // namespace mimamori::daemon

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The network-facing endpoint in a process of its own (docs/endpoint-process.md): mimamorid
// starts it as a sandboxed child of the same binary, owns the audit log for it behind a socket,
// answers its pings, stills and mask-hash questions, keeps its evidence holds for retention,
// and restarts it with backoff when it exits, hangs or misbehaves. Recording never waits on it.
#pragma once

#include "mimamori/policy/audit_log.hpp"
#include "mimamori/retrieval/still.hpp"
#include "mimamori/store/segment_store.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mimamori::daemon {

// Frame kinds of the link besides the audit log's (policy::audit_frame).
namespace link_frame {
constexpr std::uint8_t kPing = 0x10;       // mimamorid -> endpoint, id 0, empty
constexpr std::uint8_t kPong = 0x11;       // endpoint -> mimamorid, id 0, empty
constexpr std::uint8_t kHolds = 0x12;      // endpoint -> mimamorid, id 0 or a call: u32 n, n x (u64 first, u64 last)
constexpr std::uint8_t kReady = 0x13;      // endpoint -> mimamorid, id 0: u32 port
constexpr std::uint8_t kMaskHash = 0x14;   // call, empty -> kMaskHashIs: bytes hex
constexpr std::uint8_t kStill = 0x15;      // call, u8 form, u32 timeout ms -> kStillIs or kFailed
constexpr std::uint8_t kFailed = 0x90;     // bytes reason
constexpr std::uint8_t kHoldsApplied = 0x92;  // empty: the answer to a holds call
constexpr std::uint8_t kMaskHashIs = 0x94;
constexpr std::uint8_t kStillIs = 0x95;    // u32 width, u32 height, bytes mask hash, bytes png
}  // namespace link_frame

// The largest frame each side reads: the endpoint's are bounded by an audit entry; mimamorid's
// answers by a lines answer or a still.
inline constexpr std::size_t kMaxFromEndpointBytes = std::size_t{1} << 20;
inline constexpr std::size_t kMaxToEndpointBytes = std::size_t{64} << 20;
// The endpoint inherits the link on this descriptor.
inline constexpr int kLinkFd = 3;

struct EndpointProcessConfig {
    std::filesystem::path executable;  // this binary: /proc/self/exe
    std::filesystem::path configFile;  // passed on to the child
    std::string address;               // retrieval.address, for the log
    bool verbose = false;
    std::chrono::milliseconds pingInterval{2000};
    std::chrono::milliseconds hangTimeout{10000};  // no pong this long: SIGKILL and restart
    std::chrono::milliseconds readyTimeout{30000};  // start() waits this long for the first holds
};

// What the endpoint asks of the recorder's side. Called on mimamorid's link threads.
struct RecorderSide {
    std::function<std::string()> maskSha256;
    retrieval::StillSource* stills = nullptr;  // borrowed; null: no stills
};

// Runs and watches the child. The audit log, store and recorder side are borrowed and must
// outlive it. It installs the store's hold provider (the holds the child last reported, kept
// across its restarts). Not copyable; start() and stop() from the main thread.
class EndpointSupervisor {
public:
    EndpointSupervisor(EndpointProcessConfig config, policy::AuditLog& audit, store::SegmentStore& store,
                       RecorderSide recorder);
    ~EndpointSupervisor();  // stop()
    EndpointSupervisor(const EndpointSupervisor&) = delete;
    EndpointSupervisor& operator=(const EndpointSupervisor&) = delete;

    // Starts the child and waits (at most readyTimeout) until it reported its holds and serves,
    // so that retention never runs without the holds of plans granted before a restart.
    void start();
    // Stops the child (SIGTERM, then SIGKILL after 5 s) and the watcher. Idempotent.
    void stop();
    // The child's pid now (0 while none runs), and how many times it was restarted.
    [[nodiscard]] pid_t childPid() const;
    [[nodiscard]] int restarts() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The child's whole life (`mimamorid --endpoint-child --config FILE`): loads the config, opens
// what the endpoint reads, applies the sandbox, serves until the link closes or SIGTERM.
// Returns the exit code.
[[nodiscard]] int runEndpointChild(const std::filesystem::path& configFile);

}  // namespace mimamori::daemon

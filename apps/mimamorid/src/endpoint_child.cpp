// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The endpoint process (`mimamorid --endpoint-child`): the retrieval endpoint, sandboxed, reading
// the ring and writing the audit log through mimamorid (docs/endpoint-process.md).
#include "mimamori/daemon/config.hpp"
#include "mimamori/daemon/endpoint_process.hpp"
#include "mimamori/daemon/sandbox.hpp"

#include "mimamori/common/frame.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/policy/audit_channel.hpp"
#include "mimamori/policy/keys.hpp"
#include "mimamori/policy/nonce_store.hpp"
#include "mimamori/retrieval/endpoint.hpp"

#include <fmt/format.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace mimamori::daemon {
namespace {

using common::Frame;
constexpr std::string_view kLog = "endpoint";
// How long a writer waits for mimamorid's acknowledgement of an audit entry (its fsync).
constexpr std::chrono::seconds kAckTimeout{10};
// The ring as the recorder leaves it is read again at most this often.
constexpr common::UtcMicros kReopenInterval = common::kMicrosPerSecond;

// The ring, read-only, opened again (at most once a second) when listed, so that the endpoint
// sees the segments the recorder wrote since, and drops the day keys it shredded. The hold
// provider is kept here: the endpoint reports its holds to mimamorid, whose retention uses them.
class FollowingStore final : public store::SegmentStore {
public:
    FollowingStore(store::StoreConfig config, const common::Clock& clock)
        : config_(std::move(config)), clock_(clock), current_(openReadOnly(config_, clock_)),
          openedAt_(clock_.monotonicMicros()) {}

    std::unique_ptr<store::SegmentWriter> beginSegment(common::UtcMicros) override {
        throw std::logic_error("the endpoint process does not write the ring");
    }
    std::vector<store::SegmentInfo> list(common::UtcMicros from, common::UtcMicros to) const override { return fresh()->list(from, to); }
    common::Result<void> read(const store::SegmentInfo& segment,
                              const std::function<void(std::span<const std::uint8_t>)>& sink) const override {
        return snapshot()->read(segment, sink);
    }
    void setHoldProvider(HoldProvider provider) override {
        std::lock_guard lock(holdMutex_);
        holds_ = std::move(provider);
    }
    Enforcement enforce() override { throw std::logic_error("the endpoint process does not enforce retention"); }
    Usage usage() const override { return fresh()->usage(); }
    std::vector<std::string> openFindings() const override { return snapshot()->openFindings(); }

    void holdsChanged() override {
        std::function<void()> listener;
        {
            std::lock_guard lock(holdMutex_);
            listener = holdsListener_;
        }
        if (listener) listener();
    }

    std::vector<std::uint64_t> held() {
        std::lock_guard lock(holdMutex_);
        return holds_ ? holds_() : std::vector<std::uint64_t>{};
    }
    // Called on the granting thread after a hold was added.
    void setHoldsListener(std::function<void()> listener) {
        std::lock_guard lock(holdMutex_);
        holdsListener_ = std::move(listener);
    }

private:
    std::shared_ptr<store::SegmentStore> snapshot() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    std::shared_ptr<store::SegmentStore> fresh() const {
        std::lock_guard lock(mutex_);
        if (clock_.monotonicMicros() - openedAt_ >= kReopenInterval) {
            try {
                current_ = openReadOnly(config_, clock_);
                openedAt_ = clock_.monotonicMicros();
            } catch (const std::exception& e) {
                common::logError(kLog, "cannot read the ring again ({}); listing what was read before", e.what());
            }
        }
        return current_;
    }

    const store::StoreConfig config_;
    const common::Clock& clock_;
    mutable std::mutex mutex_;
    mutable std::shared_ptr<store::SegmentStore> current_;  // readers keep theirs while it is replaced
    mutable std::int64_t openedAt_;
    std::mutex holdMutex_;
    HoldProvider holds_;
    std::function<void()> holdsListener_;
};

// Stills come from the recorder, in mimamorid: asked for over the link.
class LinkedStills final : public retrieval::StillSource {
public:
    explicit LinkedStills(common::FrameClient& link) : link_(link) {}
    common::Result<retrieval::Still> nextStill(policy::StillForm form, std::chrono::milliseconds timeout) override {
        const std::string ask = common::WireWriter()
                                    .u8(form == policy::StillForm::Unmasked ? 1 : 0)
                                    .u32(static_cast<std::uint32_t>(timeout.count()))
                                    .take();
        common::Result<Frame> answer = link_.call(link_frame::kStill, ask, timeout + std::chrono::seconds(5));
        if (!answer) return common::Error{"mimamorid: " + answer.error()};
        common::WireReader in(answer->payload);
        if (answer->kind == link_frame::kFailed) return common::Error{in.bytes(4096)};
        retrieval::Still still;
        still.width = static_cast<int>(in.u32());
        still.height = static_cast<int>(in.u32());
        still.maskSha256 = in.bytes(128);
        const std::string png = in.bytes(kMaxToEndpointBytes);
        if (answer->kind != link_frame::kStillIs || !in.atEnd()) return common::Error{"mimamorid: a malformed still"};
        still.png.assign(png.begin(), png.end());
        return still;
    }

private:
    common::FrameClient& link_;
};

// Ranges of consecutive sequence numbers, as a holds report carries them.
std::string holdsReport(std::vector<std::uint64_t> held) {
    std::sort(held.begin(), held.end());
    held.erase(std::unique(held.begin(), held.end()), held.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const std::uint64_t s : held) {
        if (!ranges.empty() && ranges.back().second + 1 == s) ranges.back().second = s;
        else ranges.emplace_back(s, s);
    }
    common::WireWriter out;
    out.u32(static_cast<std::uint32_t>(ranges.size()));
    for (const auto& [first, last] : ranges) out.u64(first).u64(last);
    return out.take();
}

// The holds reports to mimamorid, sent in the order they are taken: a report computed before a
// grant and sent after the grant's own would withdraw the new hold until the next one.
class HoldsReporter {
public:
    HoldsReporter(FollowingStore& store, common::FrameClient& link) : store_(store), link_(link) {}

    // When the holds changed since the last report, sends them; with `confirm` (a grant waits),
    // sends them in any case and waits until mimamorid has them in force.
    void report(bool confirm) {
        std::lock_guard lock(mutex_);
        std::string report = holdsReport(store_.held());
        if (confirm) {
            common::Result<Frame> answer = link_.call(link_frame::kHolds, report, kAckTimeout);
            if (!answer || answer->kind != link_frame::kHoldsApplied) {
                common::logWarning(kLog, "mimamorid did not confirm the evidence holds ({}); reporting them again",
                                   answer ? "a wrong answer" : answer.error());
                return;  // last_ stays: the next tick sends them again
            }
        } else if (report == last_ || !link_.send({link_frame::kHolds, 0, report})) {
            return;
        }
        last_ = std::move(report);
    }

private:
    FollowingStore& store_;
    common::FrameClient& link_;
    std::mutex mutex_;
    std::string last_;
};

}  // namespace

int runEndpointChild(const std::filesystem::path& configFile) {
    // SIGTERM and SIGINT are taken by sigtimedwait below, never by a handler; threads inherit the mask.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGTERM);
    sigaddset(&stopSignals, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
    try {
        const DaemonConfig config = loadDaemonConfig(configFile);
        if (!config.retrieval) throw std::runtime_error("the config has no retrieval section");
        const retrieval::EndpointConfig& ep = *config.retrieval;
        const recorder::RecorderConfig& rec = config.recorder;
        common::SystemClock clock;
        // Everything read before the sandbox is read with mimamorid's rights; nothing from the
        // network has been seen yet.
        const policy::SecretKey cameraKey = policy::loadSecretKey(ep.cameraKeyFile);
        FollowingStore store(rec.store, clock);
        policy::NonceStore nonces(ep.ownStateDir / "nonces");
        applySandbox(endpointSandbox(config));

        std::atomic<bool> linkClosed{false};
        common::FrameClient link(
            common::UniqueFd(kLinkFd), kMaxToEndpointBytes,
            [](const Frame& frame, common::FrameClient& self) {
                // Only a pong, on the reader thread: it must never wait for anything the reader
                // itself would deliver (an acknowledgement).
                if (frame.kind == link_frame::kPing) (void)self.send({link_frame::kPong, 0, {}});
            },
            [&linkClosed](const std::string& why) {
                common::logInfo(kLog, "link to mimamorid closed ({}): stopping", why);
                linkClosed = true;
            });
        policy::AuditClient audit(link, kAckTimeout);
        HoldsReporter holds(store, link);
        store.setHoldsListener([&holds] { holds.report(true); });
        LinkedStills stills(link);
        auto maskSha256 = [&link]() -> std::string {
            common::Result<Frame> answer = link.call(link_frame::kMaskHash, {}, std::chrono::seconds(5));
            if (!answer || answer->kind != link_frame::kMaskHashIs)
                throw std::runtime_error("mimamorid did not say which masks are in force");
            common::WireReader in(answer->payload);
            std::string hash = in.bytes(128);
            if (!in.atEnd()) throw std::runtime_error("mimamorid: a malformed mask hash");
            return hash;
        };
        auto endpoint = retrieval::Endpoint::start(ep, rec.store.cameraId, store, audit, nonces, cameraKey, clock,
                                                   maskSha256, &stills);
        // The holds of the plans reopened at start go first: mimamorid starts retention after this.
        holds.report(true);
        if (!link.send({link_frame::kReady, 0, common::WireWriter().u32(static_cast<std::uint32_t>(endpoint->port())).take()}))
            throw std::runtime_error("cannot report to mimamorid");
        common::logInfo(kLog, "serving on {}:{} (process {})", ep.address, endpoint->port(), ::getpid());
        // Until SIGTERM or the link closes: the holds again whenever they change (released,
        // expired); a new grant's are confirmed before it is answered.
        const timespec tick{0, 200'000'000};
        while (!linkClosed && ::sigtimedwait(&stopSignals, nullptr, &tick) < 0) holds.report(false);
        endpoint->stop();
        store.setHoldsListener({});
        return 0;
    } catch (const std::exception& e) {
        common::logError(kLog, "cannot serve: {}", e.what());
        return 1;
    }
}

}  // namespace mimamori::daemon

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// mimamorid's side of the endpoint process: start it, answer it, watch it, restart it.
#include "mimamori/daemon/endpoint_process.hpp"

#include "mimamori/common/frame.hpp"
#include "mimamori/common/log.hpp"
#include "mimamori/policy/audit_channel.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

namespace mimamori::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using common::Frame;
constexpr std::string_view kLog = "mimamorid";
constexpr std::string_view kEndpointRestarted = "endpoint_restarted";
// A frame the endpoint starts must arrive whole within this; so must our answers leave.
constexpr std::chrono::seconds kIoTimeout{5};
constexpr std::chrono::seconds kFirstBackoff{1}, kMaxBackoff{30}, kStableRun{60}, kStopTimeout{5};
constexpr std::uint32_t kMaxStillTimeoutMs = 10'000;
constexpr std::size_t kMaxStillsAtOnce = 2;
constexpr std::uint32_t kMaxHoldRanges = 1u << 16;
constexpr std::uint64_t kMaxHeldSegments = 1u << 20;  // a year of 30-s segments

void setTimeouts(int fd) {
    const timeval tv{static_cast<time_t>(kIoTimeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// One child's end of the link, shared with the still workers that answer on it.
struct Link {
    common::UniqueFd fd;
    std::mutex writeMutex;
    common::Result<void> write(const Frame& frame) {
        std::lock_guard lock(writeMutex);
        return common::writeFrame(fd.get(), frame);
    }
};

std::string describeExit(int status) {
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        return fmt::format("killed by signal {} ({})", sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    }
    return fmt::format("exited with status {}", WEXITSTATUS(status));
}

// The sequence numbers of a holds report: at most kMaxHoldRanges ranges, kMaxHeldSegments in all.
std::optional<std::vector<std::uint64_t>> parseHolds(std::string_view payload) {
    common::WireReader in(payload);
    const std::uint32_t n = in.u32();
    if (n > kMaxHoldRanges) return std::nullopt;
    std::vector<std::uint64_t> sequences;
    for (std::uint32_t i = 0; i < n && in.ok(); ++i) {
        const std::uint64_t first = in.u64(), last = in.u64();
        if (last < first || last - first >= kMaxHeldSegments || sequences.size() + (last - first) >= kMaxHeldSegments)
            return std::nullopt;
        for (std::uint64_t s = first; s <= last; ++s) sequences.push_back(s);
    }
    if (!in.atEnd()) return std::nullopt;
    return sequences;
}

}  // namespace

struct EndpointSupervisor::Impl {
    EndpointProcessConfig config;
    policy::AuditLog& audit;
    store::SegmentStore& store;
    RecorderSide recorder;

    common::UniqueFd wake{::eventfd(0, EFD_CLOEXEC)};
    std::thread watcher;
    std::atomic<bool> stopping{false};

    mutable std::mutex mutex;  // guards what follows
    std::condition_variable changed;
    pid_t pid = 0;
    int restarts = 0;
    bool ready = false;             // the current child reported its holds and serves
    std::vector<std::uint64_t> held;  // its last report, kept while it restarts

    std::mutex stillsMutex;
    std::list<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> stills;

    Impl(EndpointProcessConfig c, policy::AuditLog& a, store::SegmentStore& s, RecorderSide r)
        : config(std::move(c)), audit(a), store(s), recorder(std::move(r)) {}

    // fork + exec of this binary in its child mode, the link on kLinkFd. Returns the pid.
    pid_t spawn(std::shared_ptr<Link>& link) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
            throw std::runtime_error(fmt::format("socketpair: {}", std::strerror(errno)));
        common::UniqueFd ours(fds[0]), theirs(fds[1]);
        // Everything the child needs is built before fork: after it, only async-signal-safe calls.
        const std::string executable = config.executable.string();
        std::vector<std::string> args = {"mimamorid", "--endpoint-child", "--config",
                                         config.configFile.string()};
        if (config.verbose) args.emplace_back("--verbose");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const pid_t parent = ::getpid();
        const pid_t child = ::fork();
        if (child < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
        if (child == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives mimamorid
            if (::getppid() != parent) ::_exit(1);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            if (::dup2(theirs.get(), kLinkFd) < 0) ::_exit(126);
            if (theirs.get() == kLinkFd) ::fcntl(kLinkFd, F_SETFD, 0);
            ::close_range(kLinkFd + 1, ~0U, 0);
            ::execv(executable.c_str(), argv.data());
            ::_exit(127);
        }
        setTimeouts(ours.get());
        link = std::make_shared<Link>();
        link->fd = std::move(ours);
        return child;
    }

    std::vector<std::uint64_t> heldSequences() {
        std::lock_guard lock(mutex);
        return held;
    }

    // The answer to one frame, or an error that ends this child (a frame no endpoint sends).
    common::Result<void> answer(const std::shared_ptr<Link>& link, const Frame& frame, Clock::time_point& lastPong) {
        using namespace link_frame;
        if (std::optional<Frame> reply = policy::answerAuditFrame(audit, frame)) return link->write(*reply);
        common::WireReader in(frame.payload);
        switch (frame.kind) {
        case kPong:
            if (frame.id != 0 || !in.atEnd()) break;
            lastPong = Clock::now();
            return common::success();
        case kHolds: {
            std::optional<std::vector<std::uint64_t>> sequences = parseHolds(frame.payload);
            if (!sequences) break;
            {
                std::lock_guard lock(mutex);
                if (*sequences != held)
                    common::logInfo(kLog, "retention keeps {} segments under evidence holds", sequences->size());
                held = std::move(*sequences);
            }
            // A call (a new grant waits for it): answered once retention sees the holds.
            if (frame.id != 0) return link->write({kHoldsApplied, frame.id, {}});
            return common::success();
        }
        case kReady: {
            const std::uint32_t port = in.u32();
            if (frame.id != 0 || !in.atEnd()) break;
            {
                std::lock_guard lock(mutex);
                ready = true;
                common::logInfo(kLog, "retrieval endpoint on {}:{} (process {})", config.address, port, pid);
            }
            changed.notify_all();
            return common::success();
        }
        case kMaskHash:
            if (frame.id == 0 || !in.atEnd()) break;
            return link->write({kMaskHashIs, frame.id, common::WireWriter().bytes(recorder.maskSha256()).take()});
        case kStill: {
            const std::uint8_t form = in.u8();
            const std::uint32_t timeoutMs = in.u32();
            if (frame.id == 0 || !in.atEnd() || form > 1) break;
            return startStill(link, frame.id, form == 1 ? policy::StillForm::Unmasked : policy::StillForm::Masked,
                              std::min(timeoutMs, kMaxStillTimeoutMs));
        }
        default:
            break;
        }
        return common::Error{fmt::format("a malformed or unknown frame (kind {}, {} bytes)", frame.kind, frame.payload.size())};
    }

    // A still waits for the next frame through the masks: on a worker, so pings go on meanwhile.
    common::Result<void> startStill(const std::shared_ptr<Link>& link, std::uint32_t id, policy::StillForm form,
                                    std::uint32_t timeoutMs) {
        std::lock_guard lock(stillsMutex);
        stills.remove_if([](auto& s) {
            if (!*s.second) return false;
            s.first.join();
            return true;
        });
        if (!recorder.stills || stills.size() >= kMaxStillsAtOnce) {
            const char* why = recorder.stills ? "busy: other stills are being taken" : "no still source";
            return link->write({link_frame::kFailed, id, common::WireWriter().bytes(why).take()});
        }
        auto done = std::make_shared<std::atomic<bool>>(false);
        stills.emplace_back(std::thread([this, link, id, form, timeoutMs, done] {
                                common::Result<retrieval::Still> still =
                                    recorder.stills->nextStill(form, std::chrono::milliseconds(timeoutMs));
                                Frame reply{link_frame::kFailed, id, {}};
                                if (still) {
                                    reply.kind = link_frame::kStillIs;
                                    reply.payload = common::WireWriter()
                                                        .u32(static_cast<std::uint32_t>(still->width))
                                                        .u32(static_cast<std::uint32_t>(still->height))
                                                        .bytes(still->maskSha256)
                                                        .bytes(std::string_view(reinterpret_cast<const char*>(still->png.data()), still->png.size()))
                                                        .take();
                                } else {
                                    reply.payload = common::WireWriter().bytes(still.error()).take();
                                }
                                (void)link->write(reply);  // a child gone meanwhile asks again
                                *done = true;
                            }),
                            done);
        return common::success();
    }

    // Serves one child until it exits; returns why mimamorid killed it (empty: it exited). When
    // mimamorid stops, the child gets SIGTERM and is still answered while it stops (its last
    // audit entries), SIGKILL after kStopTimeout.
    std::string serve(pid_t child, const std::shared_ptr<Link>& link, common::UniqueFd& pidfd) {
        Clock::time_point lastPong = Clock::now(), nextPing = Clock::now() + config.pingInterval;
        std::optional<Clock::time_point> stopBy;
        std::string problem;
        while (problem.empty()) {
            const auto now = Clock::now();
            if (stopping && !stopBy) {
                ::kill(child, SIGTERM);
                stopBy = now + kStopTimeout;
            }
            if (stopBy && now >= *stopBy) {
                common::logWarning(kLog, "endpoint process {} did not stop within {} s: killing it", child,
                                   kStopTimeout.count());
                break;
            }
            if (!stopBy && now >= nextPing) {
                if (now - lastPong > config.hangTimeout) {
                    problem = fmt::format("answered no ping for {} ms",
                                          std::chrono::duration_cast<std::chrono::milliseconds>(now - lastPong).count());
                    break;
                }
                if (common::Result<void> sent = link->write({link_frame::kPing, 0, {}}); !sent) {
                    problem = "ping: " + sent.error();
                    break;
                }
                nextPing = now + config.pingInterval;
            }
            pollfd fds[3] = {{link->fd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}, {wake.get(), POLLIN, 0}};
            const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>((stopBy ? *stopBy : nextPing) - now);
            const int n = ::poll(fds, stopBy ? 2 : 3, static_cast<int>(std::max<std::int64_t>(0, wait.count()) + 1));
            if (n < 0 && errno != EINTR) {
                problem = fmt::format("poll: {}", std::strerror(errno));
                break;
            }
            if (n <= 0) continue;
            if (fds[1].revents) return "";  // exited: the caller reaps it and says how
            if (fds[0].revents) {
                common::Result<Frame> frame = common::readFrame(link->fd.get(), kMaxFromEndpointBytes);
                if (!frame) {
                    // A child that exits closes the link first: then its exit status says how.
                    pollfd exited{pidfd.get(), POLLIN, 0};
                    if (::poll(&exited, 1, 1000) == 1) return "";
                    problem = "link: " + frame.error();
                    break;
                }
                if (common::Result<void> done = answer(link, *frame, lastPong); !done) problem = done.error();
            }
        }
        if (!problem.empty()) common::logError(kLog, "endpoint process {} {}: killing it", child, problem);
        ::kill(child, SIGKILL);
        return problem;
    }

    int reap(pid_t child) {
        int status = 0;
        while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        return status;
    }

    void run() {
        pthread_setname_np(pthread_self(), "endpoint-watch");
        auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
        while (!stopping) {
            std::shared_ptr<Link> link;
            pid_t child = 0;
            common::UniqueFd pidfd;
            try {
                child = spawn(link);
                pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
                if (!pidfd.valid()) throw std::runtime_error(fmt::format("pidfd_open: {}", std::strerror(errno)));
            } catch (const std::exception& e) {
                common::logError(kLog, "cannot start the endpoint process: {}", e.what());
                if (child > 0) {
                    ::kill(child, SIGKILL);
                    ::waitpid(child, nullptr, 0);
                }
                child = 0;
            }
            const auto started = Clock::now();
            std::string problem;
            int status = 0;
            if (child > 0) {
                {
                    std::lock_guard lock(mutex);
                    pid = child;
                    ready = false;
                }
                common::logInfo(kLog, "endpoint process {} started", child);
                try {
                    problem = serve(child, link, pidfd);
                } catch (const std::exception& e) {  // never out of this thread: it would end mimamorid
                    problem = std::string("serving it: ") + e.what();
                    common::logError(kLog, "endpoint process {} {}: killing it", child, problem);
                    ::kill(child, SIGKILL);
                }
                status = reap(child);
                std::lock_guard lock(mutex);
                pid = 0;
            }
            changed.notify_all();
            if (stopping) break;
            if (Clock::now() - started > kStableRun) backoff = kFirstBackoff;
            const std::string how = child > 0 ? describeExit(status) : "not started";
            common::logError(kLog, "endpoint process {} {}{}; restarting it in {} ms (recording goes on)", child, how,
                             problem.empty() ? "" : " (" + problem + ")", backoff.count());
            try {
                audit.append(kEndpointRestarted,
                             {{"pid", static_cast<std::int64_t>(child)},
                              {"exit", how},
                              {"cause", problem},
                              {"signal", static_cast<std::int64_t>(child > 0 && WIFSIGNALED(status) ? WTERMSIG(status) : 0)}});
            } catch (const std::exception& e) {
                common::logError(kLog, "audit log: cannot record the endpoint's restart: {}", e.what());
            }
            {
                std::lock_guard lock(mutex);
                ++restarts;
            }
            pollfd fd{wake.get(), POLLIN, 0};
            (void)::poll(&fd, 1, static_cast<int>(backoff.count()));
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
        }
        std::lock_guard lock(stillsMutex);
        for (auto& s : stills) s.first.join();
        stills.clear();
    }
};

EndpointSupervisor::EndpointSupervisor(EndpointProcessConfig config, policy::AuditLog& audit, store::SegmentStore& store,
                                       RecorderSide recorder)
    : impl_(std::make_unique<Impl>(std::move(config), audit, store, std::move(recorder))) {
    if (!impl_->wake.valid()) throw std::runtime_error(fmt::format("eventfd: {}", std::strerror(errno)));
}

EndpointSupervisor::~EndpointSupervisor() { stop(); }

void EndpointSupervisor::start() {
    Impl& s = *impl_;
    // Retention keeps what the endpoint last reported, also while it restarts.
    s.store.setHoldProvider([&s] { return s.heldSequences(); });
    s.watcher = std::thread([&s] { s.run(); });
    std::unique_lock lock(s.mutex);
    if (!s.changed.wait_for(lock, s.config.readyTimeout, [&] { return s.ready; }))
        common::logError(kLog, "the endpoint process is not serving after {} ms; recording starts without its "
                               "evidence holds until it reports them",
                         s.config.readyTimeout.count());
}

void EndpointSupervisor::stop() {
    Impl& s = *impl_;
    if (s.stopping.exchange(true)) return;
    const std::uint64_t one = 1;
    (void)!::write(s.wake.get(), &one, sizeof one);
    if (s.watcher.joinable()) s.watcher.join();
    s.store.setHoldProvider({});
}

pid_t EndpointSupervisor::childPid() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->pid;
}

int EndpointSupervisor::restarts() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->restarts;
}

}  // namespace mimamori::daemon

// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
#include "mimamori/daemon/main_loop.hpp"

#include "mimamori/common/log.hpp"
#include "mimamori/daemon/service_notifier.hpp"

#include <glib-unix.h>
#include <glib.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <vector>

namespace mimamori::daemon {
namespace {

constexpr const char* kLog = "mimamorid";

struct LoopDeleter {
    void operator()(GMainLoop* loop) const { g_main_loop_unref(loop); }
};

struct State {
    recorder::Recorder& recorder;
    ServiceNotifier* notifier;
    GMainLoop* loop;
    bool ready = false;
    std::uint64_t lastWrites = 0;
    std::string lastStatus;
};

// Never let an exception cross into C.
template <typename F>
gboolean guarded(const char* what, F&& f) noexcept {
    try {
        f();
    } catch (const std::exception& e) {
        common::logError(kLog, "{}: {}", what, e.what());
    } catch (...) {
        common::logError(kLog, "{}: unknown exception", what);
    }
    return G_SOURCE_CONTINUE;
}

gboolean onTerminate(gpointer p) noexcept {
    auto* s = static_cast<State*>(p);
    return guarded("stop", [&] {
        if (s->notifier) s->notifier->stopping();
        g_main_loop_quit(s->loop);
    });
}

gboolean onHangup(gpointer p) noexcept {
    auto* s = static_cast<State*>(p);
    return guarded("reload", [&] {
        if (s->notifier) s->notifier->reloading();
        const common::Result<void> reloaded = s->recorder.reloadMasks();
        if (!s->notifier) return;
        // Back to READY either way: the daemon records on with the masks in force. A refused
        // reload is in the log (each finding) and in the status line until the next change.
        s->notifier->ready(reloaded ? s->recorder.healthSummary() : reloaded.error());
        s->lastStatus.clear();
    });
}

// Readiness, watchdog and status, once a tick. The watchdog is fed only while footage still
// reaches the ring, so a pipeline that stalls without an error (a hung camera driver, a stuck
// encoder) gets the service restarted. While the recorder knows the source is gone and retries
// on its own (health "waiting for source"), it is fed too: a restart cannot bring a camera back,
// and the start limit would end the service for good.
gboolean onTick(gpointer p) noexcept {
    auto* s = static_cast<State*>(p);
    return guarded("service notification", [&] {
        const recorder::Recorder::Progress progress = s->recorder.progress();
        const std::string summary = s->recorder.healthSummary();
        if (!s->ready && progress.segmentsBegun > 0) {
            s->ready = true;
            s->notifier->ready(summary);
            s->lastStatus = summary;
        } else if (summary != s->lastStatus) {
            s->notifier->status(summary);
            s->lastStatus = summary;
        }
        const bool writing = progress.writesStored != s->lastWrites;
        s->lastWrites = progress.writesStored;
        if (s->notifier->watchdogMicros() && (writing || s->recorder.waitingForSource())) s->notifier->watchdog();
    });
}

}  // namespace

int runRecorder(recorder::Recorder& recorder, ServiceNotifier* notifier) {
    std::unique_ptr<GMainLoop, LoopDeleter> loop(g_main_loop_new(nullptr, FALSE));
    State state{recorder, notifier, loop.get(), false, 0, {}};
    std::vector<guint> sources = {
        g_unix_signal_add(SIGTERM, &onTerminate, &state),
        g_unix_signal_add(SIGINT, &onTerminate, &state),
        g_unix_signal_add(SIGHUP, &onHangup, &state),
    };
    if (notifier) {
        // A tick well inside the watchdog interval (systemd's advice is half of it), and at
        // least once a second so readiness follows the first segment promptly.
        std::uint64_t tickMs = 1000;
        if (notifier->watchdogMicros()) tickMs = std::clamp<std::uint64_t>(notifier->watchdogMicros() / 4000, 10, 1000);
        sources.push_back(g_timeout_add(static_cast<guint>(tickMs), &onTick, &state));
    }
    recorder.start([&state] { g_main_loop_quit(state.loop); });
    g_main_loop_run(loop.get());
    for (guint id : sources) g_source_remove(id);
    return recorder.stop();
}

}  // namespace mimamori::daemon

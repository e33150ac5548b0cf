// SPDX-FileCopyrightText: 2026 The Mimamori authors
// SPDX-License-Identifier: Apache-2.0
// The process's GLib main loop and its signals, owned by the composition root (and by tests that
// run a recorder in-process the same way).
#pragma once

#include "mimamori/recorder/recorder.hpp"

namespace mimamori::daemon {

class ServiceNotifier;

// Starts `recorder` and runs the main loop on the calling thread until SIGTERM or SIGINT, or
// until the source ends under exitAtEndOfStream; then stops the recorder (finishing the current
// segment) and returns its exit code. SIGHUP reloads the mask file: an invalid file keeps the
// masks in force. With a notifier, the service manager hears of readiness (the first segment
// open), the watchdog (footage still reaching the ring), reloads and the health summary.
// Everything that must see the first retention run (the endpoint's evidence holds) must be in
// place before the call.
[[nodiscard]] int runRecorder(recorder::Recorder& recorder, ServiceNotifier* notifier = nullptr);

}  // namespace mimamori::daemon

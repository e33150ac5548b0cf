#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""mimamorid's messages to the service manager (sd_notify), read from a test NOTIFY_SOCKET:
READY=1 only once the first segment is open, WATCHDOG=1 while frames reach the ring and not
after the camera's frames stop without an error (a stalled pipeline, which systemd must
restart), RELOADING=1 then READY=1 with the refusal in STATUS= on SIGHUP with a bad mask file,
and STOPPING=1 on SIGTERM.

  notify_test.py MIMAMORID
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

WIDTH, HEIGHT, FPS = 160, 120, 15
FRAME = bytes(WIDTH * HEIGHT * 3 // 2)  # one I420 frame, black

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message, file=sys.stderr)


def main():
    mimamorid = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="mimamori-notify-") as tmp:
        fifo = os.path.join(tmp, "camera.fifo")
        os.mkfifo(fifo)
        masks = os.path.join(tmp, "masks.json")
        good_masks = json.dumps({"version": 1, "camera": "cam-notify", "masks": [
            {"name": "window", "polygon": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]}]})
        with open(masks, "w") as f:
            f.write(good_masks)
        # The "camera": raw frames through a FIFO whose read end the daemon inherits, so the test
        # decides when they stop, and the pipeline then waits for more without an error: a stall,
        # as a hung driver would. (fdsrc polls, so the daemon can still stop while it waits.)
        read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(read_end, True)
        source = f"fdsrc fd={read_end} ! rawvideoparse width={WIDTH} height={HEIGHT} format=i420 framerate={FPS}/1"
        config = {
            "camera_id": "cam-notify",
            "source": {"kind": "pipeline", "location": source, "width": WIDTH, "height": HEIGHT, "framerate": FPS},
            "segment_seconds": 1,
            "storage": {"path": os.path.join(tmp, "ring")},
            "mask_file": masks,
            "key_dir": os.path.join(tmp, "keys"),
            "state_dir": os.path.join(tmp, "state"),
        }
        config_path = os.path.join(tmp, "mimamorid.json")
        with open(config_path, "w") as f:
            json.dump(config, f)

        sock_path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(0.2)
        messages = []  # (monotonic time, {field: value})
        done = threading.Event()

        def listen():
            while not done.is_set():
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    continue
                fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
                messages.append((time.monotonic(), fields))

        listener = threading.Thread(target=listen)
        listener.start()
        env = {**os.environ, "NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"}
        log = open(os.path.join(tmp, "daemon.log"), "w+")
        daemon = subprocess.Popen([mimamorid, "--config", config_path], env=env, stdout=log, stderr=log,
                                  pass_fds=(read_end,))
        os.close(read_end)
        writer = None
        try:
            writer = open(fifo, "wb", buffering=0)
            frames_from = time.monotonic()
            for i in range(FPS * 4):
                writer.write(FRAME)
                time.sleep(1 / FPS)
                if i == FPS * 2:
                    # A mask file with a bow tie: refused, the masks in force stay.
                    with open(masks, "w") as f:
                        f.write(json.dumps({"version": 1, "camera": "cam-notify", "masks": [
                            {"name": "bow tie", "polygon": [[0.1, 0.1], [0.4, 0.4], [0.4, 0.1], [0.1, 0.4]]}]}))
                    reload_at = time.monotonic()
                    daemon.send_signal(signal.SIGHUP)
            frames_stopped = time.monotonic()
            time.sleep(6)  # the stall: the FIFO stays open, nothing comes
            daemon.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            code = daemon.wait(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            if writer:
                writer.close()
            done.set()
            listener.join()
        log.seek(0)
        daemon_log = log.read()

        check(code == 0, f"mimamorid exited {code}")
        ready = [t for t, m in messages if m.get("READY") == "1"]
        check(len(ready) >= 1, f"no READY=1 (messages: {messages})")
        if ready:
            check(ready[0] > frames_from, "READY=1 came before any frame was written")
            check("STATUS" in next(m for t, m in messages if m.get("READY") == "1"), "READY=1 without STATUS=")
        segments = [n for n in os.listdir(os.path.join(tmp, "ring"))] if os.path.isdir(os.path.join(tmp, "ring")) else []
        check(len(segments) > 0, "no segment in the ring")

        dogs = [t for t, m in messages if m.get("WATCHDOG") == "1"]
        while_recording = [t for t in dogs if frames_from + 1 < t < frames_stopped]
        check(len(while_recording) >= 3, f"only {len(while_recording)} WATCHDOG=1 while frames flowed")
        # The queue and the last partial batch drain within a second or two of the last frame.
        during_stall = [round(t - frames_stopped, 2) for t in dogs if frames_stopped + 2.5 < t < stopped_at]
        check(not during_stall, f"WATCHDOG=1 during the stall, {during_stall} s after the frames stopped")

        reloading = [t for t, m in messages if m.get("RELOADING") == "1"]
        check(len(reloading) == 1 and reloading[0] >= reload_at, f"RELOADING=1 not sent once after SIGHUP: {reloading}")
        if reloading:
            after = [m for t, m in messages if t >= reloading[0] and m.get("READY") == "1"]
            check(bool(after), "no READY=1 after RELOADING=1")
            if after:
                check("mask reload refused" in after[0].get("STATUS", ""),
                      f"the refused reload is not in STATUS=: {after[0]}")
        check("mask reload refused" in daemon_log, "the refused reload is not in the daemon's log")
        check(any(m.get("STOPPING") == "1" for t, m in messages), "no STOPPING=1 on SIGTERM")
        if failures:
            print(daemon_log[-3000:], file=sys.stderr)
    if failures:
        sys.exit(1)
    print("notify_test: all checks passed")


if __name__ == "__main__":
    main()

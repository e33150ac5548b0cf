#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""Recorder benchmarks, run by hand; every figure is measured side by side in one run.

1. CPU: mimamorid recording a 1080p15 clip as fast as possible, against a bare gst-launch-1.0
   pipeline with the same decoder and encoder settings writing plain TS (target <= 1.05x).
2. Bytes written to the device per byte of encoded video (/proc/PID/io write_bytes, i.e.
   rusage blocks out), recording at real time with the once-a-second sync (target <= 1.05).
3. Days a 256 GB card holds with the default encoder on that 1080p15 street footage
   (target >= 12 days, about 1.9 Mbit/s or less).

usage: bench/recorder_bench.py [--build DIR] [--clip FILE] [--runs N] [--realtime-seconds S]
The 1080p15 clip is made once from ../shared/data/street-vtest.avi (scaled, 10 fps retimed to
15 fps without duplicating frames) and cached in the build directory.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The recorder's default x264 settings (recorder/src/pipeline.cpp kDefaultX264Properties);
# mimamorid also asks for a keyframe every 10 s (kDefaultKeyframeSeconds), so the bare pipeline
# gets a 10 s GOP at the clip's 15 fps.
X264 = ("speed-preset=ultrafast pass=qual quantizer=30 cabac=true dct8x8=true bframes=2 "
        "b-adapt=false psy-tune=ssim threads=1 option-string=deblock=0,0:chroma-qp-offset=-1")
GOP_FRAMES = 10 * 15


def run_measured(argv, stop_after=None):
    """Runs argv, returns (cpu seconds user+sys, bytes written to the device, wall seconds)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if stop_after is not None:
        time.sleep(stop_after)
        proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    # ru_oublock is the kernel's write_bytes (task I/O accounting) in 512-byte units.
    return usage.ru_utime + usage.ru_stime, usage.ru_oublock * 512, wall


def make_clip(path):
    source = os.path.join(ROOT, "..", "shared", "data", "street-vtest.avi")
    if not os.path.exists(source):
        sys.exit(f"missing {source}")
    print(f"making the 1080p15 clip {path} (once)", flush=True)
    subprocess.run(
        ["gst-launch-1.0", "-q", "filesrc", f"location={source}", "!", "decodebin", "!",
         "videoconvert", "!", "videoscale", "!", "video/x-raw,width=1920,height=1080", "!",
         "videorate", "rate=1.5", "!", "video/x-raw,framerate=15/1", "!",
         "x264enc", "speed-preset=fast", "pass=qual", "quantizer=14", "key-int-max=15", "!",
         "h264parse", "!", "matroskamux", "!", "filesink", f"location={path}.part"],
        check=True)
    os.rename(path + ".part", path)


# The street clip's building windows, as a city would mask them.
WINDOWS_POLYGON = [[0.42, 0.07], [0.75, 0.07], [0.75, 0.19], [0.42, 0.19]]


def daemon_config(workdir, source, encoder_properties=None):
    """Writes masks.json and mimamorid.json (camera "bench", 1 s sync) into workdir; returns the
    config's path. `source` is the config's source object."""
    with open(os.path.join(workdir, "masks.json"), "w") as f:
        json.dump({"version": 1, "camera": "bench",
                   "masks": [{"name": "windows", "polygon": WINDOWS_POLYGON}]}, f)
    config = {
        "camera_id": "bench",
        "source": source,
        **({"encoder": {"element": "x264enc", "properties": encoder_properties}} if encoder_properties else {}),
        "storage": {"path": "ring", "retention_days": 12, "sync_interval_ms": 1000},
        "mask_file": "masks.json", "key_dir": "keys", "state_dir": "state",
    }
    path = os.path.join(workdir, "mimamorid.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def ring_figures(build, config):
    out = subprocess.run([os.path.join(build, "bench", "recorder_ring_bench"), "--config", config],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--clip")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--realtime-seconds", type=float, default=30)
    args = ap.parse_args()
    daemon = os.path.join(args.build, "apps", "mimamorid")
    clip = args.clip or os.path.join(args.build, "bench-street-1080p15.mkv")
    if not os.path.exists(clip):
        make_clip(clip)

    work = tempfile.mkdtemp(prefix="mimamori-bench-")
    try:
        # 1. CPU, interleaved runs, best of N for each (the machine is shared).
        baseline_cpu, daemon_cpu = [], []
        ts_bytes = 0
        for run in range(args.runs):
            ts = os.path.join(work, "baseline.ts")
            cpu, _, wall = run_measured(
                ["gst-launch-1.0", "-q", "filesrc", f"location={clip}", "!", "decodebin", "!",
                 "videoconvert", "!", "video/x-raw,format={I420,NV12}", "!", "queue",
                 "max-size-buffers=8", "max-size-bytes=0", "max-size-time=0", "!",
                 "x264enc", *X264.split(), f"key-int-max={GOP_FRAMES}", "!", "h264parse",
                 "config-interval=-1", "!", "mpegtsmux", "pat-interval=90000",
                 "pmt-interval=90000", "!", "filesink", f"location={ts}"])
            baseline_cpu.append(cpu)
            ts_bytes = os.path.getsize(ts)
            print(f"run {run + 1}: gst-launch baseline  cpu {cpu:7.2f} s  wall {wall:6.1f} s", flush=True)

            rundir = os.path.join(work, f"fast{run}")
            os.makedirs(rundir)
            config = daemon_config(rundir, {"kind": "file", "location": clip, "realtime": False})
            cpu, _, wall = run_measured([daemon, "--config", config, "--exit-at-eos"])
            daemon_cpu.append(cpu)
            print(f"run {run + 1}: mimamorid            cpu {cpu:7.2f} s  wall {wall:6.1f} s", flush=True)
        fast = ring_figures(args.build, os.path.join(work, "fast0", "mimamorid.json"))

        # 2. Device bytes per byte of video, at real time (the once-a-second sync is exercised).
        rundir = os.path.join(work, "realtime")
        os.makedirs(rundir)
        config = daemon_config(rundir, {"kind": "file", "location": clip, "realtime": True})
        _, written, wall = run_measured([daemon, "--config", config], stop_after=args.realtime_seconds)
        rt = ring_figures(args.build, config)

        # 3. Days on a 256 GB card at the bitrate on disk.
        bytes_per_second = fast["disk_bytes"] / fast["footage_seconds"]
        days = 256e9 / (bytes_per_second * 86400)
        video_mbit = fast["plaintext_bytes"] * 8 / fast["footage_seconds"] / 1e6

        print()
        print(f"clip: {clip} (1920x1080, 15 fps, {fast['footage_seconds']:.1f} s)")
        print(f"CPU mimamorid / gst-launch baseline: {min(daemon_cpu):.2f} s / {min(baseline_cpu):.2f} s"
              f" = {min(daemon_cpu) / min(baseline_cpu):.3f}x  (target <= 1.05x)")
        print(f"  plain TS of the baseline {ts_bytes} bytes, mimamorid plaintext TS {fast['plaintext_bytes']} bytes")
        print(f"device write_bytes per byte of video (real time, {rt['footage_seconds']:.1f} s recorded, "
              f"sync 1 s): {written} / {rt['plaintext_bytes']} = {written / rt['plaintext_bytes']:.3f}"
              f"  (target <= 1.05; on disk {rt['disk_bytes'] / rt['plaintext_bytes']:.3f})")
        print(f"bitrate of the default encoder on 1080p15 street footage: {video_mbit:.2f} Mbit/s video, "
              f"{bytes_per_second * 8 / 1e6:.2f} Mbit/s on disk")
        print(f"days on a 256 GB card: {days:.1f}  (target >= 12)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

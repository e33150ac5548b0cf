#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""Mimamori's recorder against Motion 4.5.1 (what a city would otherwise install), run by hand.

Both record the same live 1080p 15 fps stream for the same minute, one after the other: a local
RTSP server (GstRtspServer) serves the street clip; every client gets its own session that
starts at the clip's first frame. Each recorder masks the same rectangle (Mimamori: its mask
file; Motion: mask_privacy with a PGM made from the same rectangle) and records continuously
(Motion: emulate_motion on, x264 through movie_quality 45 = CRF 28, preset ultrafast).

Printed: CPU seconds per recorded frame (/proc/PID/stat utime+stime+cutime+cstime at exit),
average bitrate of what each wrote, and SSIM against the source on the part of the frame
neither recorder masks, frame-aligned by content (method: docs/benchmarks-motion.md).
Targets (issue 3): Mimamori's CPU per frame below Motion's; its bitrate a quarter of Motion's or
less at no worse SSIM.

usage: /usr/bin/python3 bench/motion_compare.py [--build DIR] [--seconds S] [--port P] [--mimamori-first]
       [--mimamori-encoder "x264enc properties"] [--keep]
Needs the Debian packages motion, ffmpeg, python3-gi, gir1.2-gst-rtsp-server-1.0
(packaging/install-deps) and a build with apps/mimamorid and bench/ring_export_bench.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from recorder_bench import WINDOWS_POLYGON, daemon_config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WIDTH, HEIGHT, FPS = 1920, 1080, 15
# SSIM is computed below the masked band (rows 216..1079, 80% of the frame): both recorders
# black the band out, the source does not, and on a flat black area SSIM's luminance term sits
# at its near-zero-mean extreme where a codec level or two swings it; the band says nothing
# about the encoders (its blackness is checked separately).
SSIM_TOP = 216
# Frames compared for alignment are shrunk to this size, grey only (cheap in pure Python).
THUMB_W, THUMB_H = 48, 27


def log(text):
    print(text, flush=True)


def mask_pixels():
    """The masked pixel rectangle [x0, x1) x [y0, y1): every pixel the rectangle touches,
    as Mimamori rasterises it (docs/mask-file.md)."""
    xs = [p[0] * WIDTH for p in WINDOWS_POLYGON]
    ys = [p[1] * HEIGHT for p in WINDOWS_POLYGON]
    import math
    return (math.floor(min(xs)), math.ceil(max(xs)), math.floor(min(ys)), math.ceil(max(ys)))


def write_pgm(path):
    """Motion's mask_privacy: a binary PGM of the frame size, white = visible, black = masked."""
    x0, x1, y0, y1 = mask_pixels()
    row_visible = bytes([255]) * WIDTH
    row_band = bytes([255]) * x0 + bytes([0]) * (x1 - x0) + bytes([255]) * (WIDTH - x1)
    with open(path, "wb") as f:
        f.write(f"P5\n{WIDTH} {HEIGHT}\n255\n".encode())
        for y in range(HEIGHT):
            f.write(row_band if y0 <= y < y1 else row_visible)


def make_clip(path):
    """The 1080p15 street clip (recorder_bench.py's recipe), played twice so it outlasts a
    minute of recording (the sample is 53 s at 15 fps)."""
    source = os.path.join(ROOT, "..", "shared", "data", "street-vtest.avi")
    if not os.path.exists(source):
        sys.exit(f"missing {source}")
    once = path + ".once.mkv"
    log(f"making the 1080p15 clip {path} (once)")
    subprocess.run(
        ["gst-launch-1.0", "-q", "filesrc", f"location={source}", "!", "decodebin", "!",
         "videoconvert", "!", "videoscale", "!", f"video/x-raw,width={WIDTH},height={HEIGHT}", "!",
         "videorate", "rate=1.5", "!", f"video/x-raw,framerate={FPS}/1", "!",
         "x264enc", "speed-preset=veryfast", "pass=qual", "quantizer=14", f"key-int-max={FPS}", "!",
         "h264parse", "!", "matroskamux", "!", "filesink", f"location={once}"],
        check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "1", "-i", once, "-c", "copy",
                    "-f", "matroska", path + ".part"], check=True)
    os.remove(once)
    os.rename(path + ".part", path)


def serve(clip, port):
    """RTSP server process: rtsp://127.0.0.1:PORT/street, real time, a new session per client."""
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( filesrc location={clip} ! matroskademux ! h264parse ! "
                       "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(False)  # every recorder sees the clip from its first frame
    server.get_mount_points().add_factory("/street", factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp server: cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


def proc_cpu_seconds(pid):
    """utime + stime + cutime + cstime of /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the ")" that closes comm: fields[0] is state (field 3); utime is field 14.
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK"), fields[0]


def thread_cpu(pid):
    """CPU seconds per thread name of a running process, largest first (where the time goes)."""
    totals = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        totals[name] = totals.get(name, 0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return sorted(totals.items(), key=lambda item: -item[1])


def record(argv, seconds, logpath, cwd=None):
    """Runs a recorder for `seconds` of wall time, stops it with SIGTERM, and returns its CPU
    seconds read from /proc/PID/stat once it has exited (zombie, before reaping), its CPU per
    thread name just before SIGTERM, and the 1-minute load average then (the machine is shared)."""
    with open(logpath, "w") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd)
    time.sleep(seconds)
    if proc.poll() is not None:
        sys.exit(f"{argv[0]} exited early ({proc.returncode}); see {logpath}")
    threads = thread_cpu(proc.pid)
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    cpu = 0.0
    while True:
        cpu, state = proc_cpu_seconds(proc.pid)
        if state in ("Z", "X"):
            break
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.05)
    proc.wait()
    return cpu, threads, load


def thumbnails(path):
    """Every frame of `path` as a tiny grey image (bytes), in decode order."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-an", "-fps_mode", "passthrough", "-vf",
                          f"crop={WIDTH}:{HEIGHT - SSIM_TOP}:0:{SSIM_TOP},scale={THUMB_W}:{THUMB_H}",
                          "-pix_fmt", "gray", "-f", "rawvideo", "-"],
                         check=True, capture_output=True).stdout
    size = THUMB_W * THUMB_H
    return [raw[i:i + size] for i in range(0, len(raw) - size + 1, size)]


def distance(a, b):
    return sum(abs(x - y) for x, y in zip(a, b))


def align(recorded, source):
    """For each recorded frame, the index of the source frame it shows. The start is searched
    among the first 30 s of the source (each RTSP session starts at the clip's first frame;
    later offsets would also match the clip's second pass) on the first 10 recorded frames.
    Then each frame is taken to show the next source frame unless one of the following few
    (a dropped frame) or the same one (a repeated frame) matches clearly better: nearly static
    street frames differ little, so a bare nearest match would jitter."""
    probe = min(10, len(recorded))
    starts = range(min(30 * FPS, len(source) - probe))
    best = min(starts, key=lambda off: sum(distance(recorded[i], source[off + i]) for i in range(probe)))
    mapping, j = [best], best
    for frame in recorded[1:]:
        step = min(j + 1, len(source) - 1)
        candidates = range(j, min(j + 6, len(source)))
        scores = {k: distance(frame, source[k]) for k in candidates}
        k = min(scores, key=scores.get)
        j = k if scores[k] < 0.8 * scores[step] else step
        mapping.append(j)
    return mapping


def ssim(recording, clip, mapping, workdir):
    """Mean SSIM (ffmpeg's ssim filter, all planes) between each recorded frame and the source
    frame it was aligned with, on rows SSIM_TOP..1079. The aligned source frames are fed to
    ffmpeg as raw video in the recording's order."""
    crop = f"crop={WIDTH}:{HEIGHT - SSIM_TOP}:0:{SSIM_TOP}"
    frame_bytes = WIDTH * (HEIGHT - SSIM_TOP) * 3 // 2
    stats = os.path.join(workdir, os.path.basename(recording) + ".ssim.txt")
    src = subprocess.Popen(["ffmpeg", "-v", "error", "-i", clip, "-an", "-fps_mode", "passthrough", "-vf", crop,
                            "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"], stdout=subprocess.PIPE)
    cmp = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p",
         "-s", f"{WIDTH}x{HEIGHT - SSIM_TOP}", "-r", str(FPS), "-i", "-", "-i", recording,
         "-lavfi", f"[1:v]{crop},format=yuv420p,setpts=N/{FPS}/TB[rec];[0:v]setpts=N/{FPS}/TB[ref];"
                   f"[rec][ref]ssim=stats_file={stats}:shortest=1",
         "-frames:v", str(len(mapping)), "-f", "null", "-"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    index, frame = -1, None
    try:
        for want in mapping:
            while index < want:
                frame = src.stdout.read(frame_bytes)
                if len(frame) != frame_bytes:
                    raise RuntimeError(f"source ended before frame {want}")
                index += 1
            cmp.stdin.write(frame)
        cmp.stdin.close()
    finally:
        src.kill()
        src.wait()
    err = cmp.stderr.read().decode()
    if cmp.wait() != 0:
        sys.exit(f"ffmpeg ssim failed: {err[-2000:]}")
    values = []
    with open(stats) as f:
        for line in f:
            for token in line.split():
                if token.startswith("All:"):
                    values.append(float(token[4:]))
    values = values[:len(mapping)]
    if not values:
        sys.exit(f"no SSIM values in {stats}")
    return sum(values) / len(values), len(values)


def masked_band_mean_luma(recording):
    """Mean Y of the masked rectangle over the recording, to show both recorders really mask."""
    x0, x1, y0, y1 = mask_pixels()
    # Stay 2 pixels inside the rectangle: codec ringing at its edges is not a masking failure.
    x0, x1, y0, y1 = x0 + 2, x1 - 2, y0 + 2, y1 - 2
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", recording, "-an", "-fps_mode", "passthrough", "-vf",
                          f"crop={x1 - x0}:{y1 - y0}:{x0}:{y0},scale=64:16",
                          "-pix_fmt", "gray", "-f", "rawvideo", "-"],
                         check=True, capture_output=True).stdout
    return sum(raw) / max(1, len(raw))


def x264_settings(path):
    """The rate-control and speed settings x264 wrote into the stream's SEI, e.g.
    "rc=crf crf=28.0 subme=0 ref=1 keyint=250": what each encoder really ran with."""
    # Through ffmpeg: in MPEG-TS the SEI text is split by packet headers.
    head = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-map", "0:v:0", "-c", "copy",
                           "-frames:v", "1", "-f", "h264", "-"], capture_output=True).stdout
    start = head.find(b"options: ")
    if start < 0:
        return "no x264 SEI found"
    options = head[start + 9:head.find(b"\0", start)].decode("ascii", "replace").split()
    keep = ("rc", "crf", "qp", "subme", "me", "ref", "keyint", "vbv_maxrate", "bframes")
    return " ".join(o for o in options if o.split("=")[0] in keep)


def motion_config(workdir, port, pgm):
    out = os.path.join(workdir, "motion-out")
    os.makedirs(out)
    conf = os.path.join(workdir, "motion.conf")
    with open(conf, "w") as f:
        f.write(f"""# Motion 4.5.1, continuous recording of one RTSP camera with a privacy mask.
daemon off
setup_mode off
log_level 6
log_file {workdir}/motion.log
pid_file {workdir}/motion.pid
target_dir {out}
netcam_url rtsp://127.0.0.1:{port}/street
width {WIDTH}
height {HEIGHT}
framerate {FPS}
mask_privacy {pgm}
emulate_motion on
event_gap 60
pre_capture 0
post_capture 0
text_left
text_right
text_changes off
locate_motion_mode off
picture_output off
snapshot_interval 0
movie_output on
movie_passthrough off
movie_codec mkv
movie_quality 45
movie_max_time 0
movie_filename recording
webcontrol_port 0
stream_port 0
""")
    return conf, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--clip", help="1080p15 H.264 Matroska clip (default: made once in BUILD)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--mimamori-first", action="store_true", help="record with mimamorid first")
    ap.add_argument("--mimamori-encoder", metavar="PROPS",
                    help="x264enc properties for mimamorid (default: its own defaults)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--serve", nargs=2, metavar=("CLIP", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    daemon = os.path.join(args.build, "apps", "mimamorid")
    exporter = os.path.join(args.build, "bench", "ring_export_bench")
    motion = shutil.which("motion")
    for path, what in ((daemon, "mimamorid"), (exporter, "bench/ring_export_bench"),
                       (motion, "motion (Debian package motion)")):
        if not path or not os.path.exists(path):
            sys.exit(f"missing {what}: {path}")
    version = subprocess.run([motion, "-h"], capture_output=True, text=True).stdout.split("\n")[0]
    clip = args.clip or os.path.join(args.build, "bench-street-1080p15-looped.mkv")
    if not os.path.exists(clip):
        make_clip(clip)

    work = tempfile.mkdtemp(prefix="mimamori-motion-")
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", clip, str(args.port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            sys.exit("rtsp server did not start")
        log(f"rtsp://127.0.0.1:{args.port}/street serves {clip}")
        pgm = os.path.join(work, "mask.pgm")
        write_pgm(pgm)

        # One after the other, each for the same wall-clock time (Motion first by default).
        conf, motion_out = motion_config(work, args.port, pgm)
        config = daemon_config(work, {"kind": "rtsp", "location": f"rtsp://127.0.0.1:{args.port}/street"},
                               args.mimamori_encoder)
        runs = {}

        def run_motion():
            log(f"recording {args.seconds:.0f} s with {version}")
            runs["Motion"] = record([motion, "-n", "-c", conf], args.seconds, os.path.join(work, "motion.stderr"))

        def run_mimamori():
            log(f"recording {args.seconds:.0f} s with mimamorid")
            runs["Mimamori"] = record([daemon, "--config", config], args.seconds,
                                      os.path.join(work, "mimamorid.log"))

        for run in ((run_mimamori, run_motion) if args.mimamori_first else (run_motion, run_mimamori)):
            run()
        movies = sorted(os.path.join(motion_out, n) for n in os.listdir(motion_out) if n.endswith(".mkv"))
        if len(movies) != 1:
            sys.exit(f"expected one Motion movie in {motion_out}, found {movies}; see {work}/motion.log")
        motion_file = movies[0]
        mimamori_file = os.path.join(work, "mimamori-plaintext.ts")  # benchmark only, deleted below
        with open(mimamori_file, "wb") as out:
            subprocess.run([exporter, "--config", config], stdout=out, check=True)
        ring = os.path.join(work, "ring")
        ring_bytes = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(ring) for n in names)

        log("aligning and computing SSIM")
        source_thumbs = thumbnails(clip)
        results = {}
        for name, path, disk in (("Motion", motion_file, os.path.getsize(motion_file)),
                                 ("Mimamori", mimamori_file, ring_bytes)):
            cpu, threads, load = runs[name]
            recorded = thumbnails(path)
            frames = len(recorded)
            mapping = align(recorded, source_thumbs)
            value, compared = ssim(path, clip, mapping, work)
            source_span = (mapping[-1] - mapping[0] + 1) / FPS  # seconds of the source it covers
            results[name] = {
                "frames": frames, "cpu": cpu, "cpu_per_frame": cpu / frames,
                "bytes": disk, "mbit": disk * 8 / source_span / 1e6,
                "video_mbit": os.path.getsize(path) * 8 / source_span / 1e6,
                "ssim": value, "compared": compared, "first": mapping[0],
                "repeats": sum(1 for a, b in zip(mapping, mapping[1:]) if a == b),
                "skips": sum(b - a - 1 for a, b in zip(mapping, mapping[1:]) if b > a + 1),
                "band": masked_band_mean_luma(path), "span": source_span,
                "x264": x264_settings(path), "threads": threads, "load": load,
            }
    finally:
        server.terminate()
        server.wait()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    m, k = results["Mimamori"], results["Motion"]
    log("")
    order = "Mimamori, then Motion" if args.mimamori_first else "Motion, then Mimamori"
    log(f"{WIDTH}x{HEIGHT} {FPS} fps over RTSP on 127.0.0.1, {args.seconds:.0f} s each, {order}")
    log(f"{'':28}{'Motion 4.5.1':>16}{'Mimamori':>16}{'Mimamori/Motion':>18}")
    rows = [
        ("frames recorded", "frames", "{:.0f}"),
        ("CPU seconds", "cpu", "{:.2f}"),
        ("CPU ms per frame", "cpu_per_frame", "{:.2f}", 1000),
        ("bitrate written, Mbit/s", "mbit", "{:.3f}"),
        ("  of which video, Mbit/s", "video_mbit", "{:.3f}"),
        ("SSIM vs source (unmasked)", "ssim", "{:.4f}"),
    ]
    for label, key, fmt, *scale in rows:
        s = scale[0] if scale else 1
        log(f"{label:28}{fmt.format(k[key] * s):>16}{fmt.format(m[key] * s):>16}{m[key] / k[key]:>17.3f}x")
    for name, r in (("Motion", k), ("Mimamori", m)):
        log(f"{name}: starts at source frame {r['first']}, {r['compared']} frames compared, "
            f"{r['repeats']} repeated and {r['skips']} skipped source frames, "
            f"masked band mean Y {r['band']:.1f}")
        log(f"{name} x264: {r['x264']}" + (f" (encoder.properties {args.mimamori_encoder})"
                                            if name == "Mimamori" and args.mimamori_encoder else ""))
        log(f"{name} CPU by thread before SIGTERM: "
            + ", ".join(f"{t} {c:.1f} s" for t, c in r["threads"][:6])
            + f"; load average then {r['load']:.2f}")
    log(f"target CPU per frame below Motion's: {'met' if m['cpu_per_frame'] < k['cpu_per_frame'] else 'NOT met'}"
        f" ({m['cpu_per_frame'] / k['cpu_per_frame']:.2f}x)")
    log(f"target bitrate <= 1/4 of Motion's at no worse SSIM: "
        f"{'met' if m['mbit'] <= k['mbit'] / 4 and m['ssim'] >= k['ssim'] else 'NOT met'}"
        f" ({m['mbit'] / k['mbit']:.3f}x bitrate, SSIM {m['ssim']:.4f} vs {k['ssim']:.4f})")
    log("command: /usr/bin/python3 bench/motion_compare.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()

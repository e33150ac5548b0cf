#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""`mimamori provision` (issue 13 item 4), with the real CLI and daemon: the keys land in the key
store with the key id printed for the city's register, the starting config is the packaged
example with this camera's id and passes `mimamorid --check-config`, the mask file hides the
whole frame, and nothing is ever overwritten or put on the card.

  provision_test.py MIMAMORI MIMAMORID SOURCE_DIR
"""
import json
import os
import stat
import subprocess
import sys
import tempfile

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def snapshot(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            files[path] = open(path, "rb").read()
    return files


def main():
    cli, daemon, source = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as tmp:
        etc, keys, state, ring = (os.path.join(tmp, p) for p in ("etc", "var/keys", "var/state", "card/ring"))
        config = os.path.join(etc, "mimamorid.json")
        where = ["--config", config, "--key-dir", keys, "--state-dir", state, "--ring", ring]

        out = run(cli, "provision", "--camera-id", "kakogawa-0042", *where)
        check(out.returncode == 0, f"provision failed: {out.stdout}{out.stderr}")
        secret = os.path.join(keys, "kakogawa-0042.secret")
        check(stat.S_IMODE(os.stat(secret).st_mode) == 0o600, "the secret key is not mode 0600")
        for suffix in (".pub", ".tls.key", ".tls.crt"):
            check(os.path.exists(os.path.join(keys, "kakogawa-0042" + suffix)), f"no {suffix} written")
        key_id = [line.split(": ")[1] for line in open(os.path.join(keys, "kakogawa-0042.pub")).read().splitlines()
                  if line.startswith("key-id: ")][0]
        check(f"camera 'kakogawa-0042', key id {key_id}" in out.stdout,
              f"the key id {key_id} is not printed for the register: {out.stdout}")

        # The packaged example, with only the id and the paths changed.
        written = json.load(open(config))
        example = json.load(open(os.path.join(source, "packaging/config/mimamorid.json")))
        example.update(camera_id="kakogawa-0042", mask_file=os.path.join(etc, "masks.json"), key_dir=keys,
                       state_dir=state)
        example["storage"]["path"] = ring
        check(written == example, f"the starting config is not the packaged example: {written}")
        masks = json.load(open(os.path.join(etc, "masks.json")))
        check(masks["camera"] == "kakogawa-0042" and len(masks["masks"]) == 1
              and masks["masks"][0]["polygon"] == [[0, 0], [1, 0], [1, 1], [0, 1]],
              f"the mask file does not hide the whole frame: {masks}")
        shown = run(cli, "mask", "show", os.path.join(etc, "masks.json"), "--width", "1920", "--height", "1080")
        check("100.00% of the frame" in shown.stdout, f"mask show: {shown.stdout}{shown.stderr}")

        checked = run(daemon, "--check-config", config)
        check(checked.returncode == 0, f"--check-config fails on the starting config: {checked.stdout}{checked.stderr}")

        # A second provisioning refuses before writing anything, naming what exists.
        before = snapshot(tmp)
        again = run(cli, "provision", "--camera-id", "kakogawa-0042", *where)
        check(again.returncode == 1 and "refusing to overwrite" in again.stderr and secret in again.stderr,
              f"a second provision did not refuse: {again.returncode} {again.stderr}")
        other = run(cli, "provision", "--camera-id", "kakogawa-0043", *where)
        check(other.returncode == 1 and config in other.stderr, f"an existing config was not refused: {other.stderr}")
        check(snapshot(tmp) == before, "a refused provision changed files")

    with tempfile.TemporaryDirectory() as tmp:
        # Keys on the card are refused; an existing mask file is kept as it is.
        etc, card = os.path.join(tmp, "etc"), os.path.join(tmp, "card")
        os.makedirs(etc)
        mine = '{"version": 1, "camera": "kakogawa-0044", "masks": []}\n'
        open(os.path.join(etc, "masks.json"), "w").write(mine)
        base = ["--config", os.path.join(etc, "mimamorid.json"), "--state-dir", os.path.join(tmp, "state"),
                "--ring", os.path.join(card, "ring")]
        onCard = run(cli, "provision", "--camera-id", "kakogawa-0044", "--key-dir", os.path.join(card, "ring", "keys"),
                     *base)
        check(onCard.returncode == 2 and "on the card" in onCard.stderr, f"keys on the card: {onCard.stderr}")
        check(not os.path.exists(card) and not os.path.exists(os.path.join(etc, "mimamorid.json")),
              "a refused provision wrote files")
        kept = run(cli, "provision", "--camera-id", "kakogawa-0044", "--key-dir", os.path.join(tmp, "keys"), *base)
        check(kept.returncode == 0 and open(os.path.join(etc, "masks.json")).read() == mine,
              f"an existing mask file was not kept: {kept.stdout}{kept.stderr}")
        bad = run(cli, "provision", "--camera-id", "../x", "--key-dir", os.path.join(tmp, "k2"),
                  "--config", os.path.join(tmp, "c2.json"))
        check(bad.returncode == 1 and "invalid key name" in bad.stderr and not os.path.exists(os.path.join(tmp, "c2.json")),
              f"a bad camera id: {bad.returncode} {bad.stderr}")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""The manual pages and the bash completion the build writes from the binaries' own help:
groff reads the pages without a warning, every command's --help text is in mimamori(1), and
the completion offers every command and every option of a command; every command's help has the
same layout, ending in its exit status.

  manual_test.py MIMAMORI MIMAMORID GENERATED_DIR
"""
import gzip
import os
import re
import subprocess
import sys

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def render(page):
    text = gzip.open(page).read()
    lint = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8"], input=text, capture_output=True)
    check(lint.returncode == 0 and lint.stderr == b"", f"{page}: groff warns: {lint.stderr.decode()[:500]}")
    out = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                         env={**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": "0"})
    check(out.returncode == 0, f"man -l {page} failed: {out.stderr}")
    return re.sub(r".\x08", "", out.stdout)  # no overstrike


def completion(script, *words):
    cword = len(words) - 1
    array = " ".join(f"'{w}'" for w in words)
    out = subprocess.run(["bash", "-c", f"source '{script}'; COMP_WORDS=({array}); COMP_CWORD={cword}; _mimamori; "
                                        "printf '%s\\n' \"${COMPREPLY[@]}\""], capture_output=True, text=True)
    check(out.returncode == 0, f"completion for {words} failed: {out.stderr}")
    return set(out.stdout.split())


def main():
    cli, daemon, generated = sys.argv[1:4]
    manual = render(os.path.join(generated, "mimamori.1.gz"))
    overview = subprocess.run([cli, "--help"], capture_output=True, text=True).stdout
    commands = re.findall(r"^  ([a-z]+(?: [a-z]+)?)\s{2,}", overview, re.M)
    check(len(commands) >= 15, f"too few commands in mimamori --help: {commands}")
    for command in commands:
        help_text = subprocess.run([cli, *command.split(), "--help"], capture_output=True, text=True).stdout
        # One help layout: the usage line first, an exit-status section last, 2 always bad usage.
        check(help_text.startswith(f"usage: mimamori {command}"), f"`{command} --help` does not start with its usage line")
        sections = help_text.split("\nexit status: ")
        status = " ".join(sections[-1].split())
        check(len(sections) == 2 and status.startswith("0 ") and status.endswith("2 bad usage"),
              f"`{command} --help` does not end in one 'exit status: 0 ..., 2 bad usage' section")
        for line in help_text.splitlines():
            if line.strip():
                check(line.strip() in manual, f"mimamori(1) lacks this line of `{command} --help`: {line.strip()!r}")
    daemon_manual = render(os.path.join(generated, "mimamorid.8.gz"))
    check("--check-config FILE" in daemon_manual and "SIGHUP reloads the mask" in daemon_manual,
          "mimamorid(8) lacks the usage text")

    script = os.path.join(generated, "mimamori.bash")
    first = completion(script, "mimamori", "")
    for word in {c.split()[0] for c in commands}:
        check(word in first, f"completion of the first word lacks {word}")
    masks = completion(script, "mimamori", "mask", "")
    check({"validate", "preview", "show"} <= masks, f"completion of `mask` offers {masks}")
    preview = completion(script, "mimamori", "mask", "preview", "--")
    check({"--input", "--at", "--out", "--outline", "--help"} <= preview, f"`mask preview --` offers {preview}")
    keygen = completion(script, "mimamori", "keygen", "--")
    check("--role" in keygen, f"`keygen --` offers {keygen}")
    if failures:
        print("\n".join(f"FAIL: {f}" for f in failures), file=sys.stderr)
        sys.exit(1)
    print(f"manual pages and completion: {len(commands)} commands checked")


if __name__ == "__main__":
    main()

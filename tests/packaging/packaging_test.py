#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""The Debian packages (issue 13 items 1-3): builds both with CPack from this build tree, checks
their fields and contents with dpkg-deb, runs lintian --pedantic (any error or warning fails),
checks every binary's hardening and stripping with readelf, checks the unit with
systemd-analyze verify and security (exposure below 2.0), then installs them into a throwaway
root: a mount namespace whose /etc, /usr, /var and /media are overlays of the host's, thrown
away at the end, so the maintainer scripts run for real (user, groups, enable; purge). There it
provisions a camera and runs `mimamorid --check-config` on the installed defaults.
Needs root (mount namespace, dpkg).

  packaging_test.py BUILD_DIR SOURCE_DIR
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def run(*args, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600, **kwargs)


def field(deb, name):
    return run("dpkg-deb", "-f", deb, name).stdout.strip()


def check_contents(debs):
    camera, tools = debs["mimamori-camera"], debs["mimamori-tools"]
    for deb in (camera, tools):
        check(field(deb, "Section") == "video", f"{deb}: Section is not video")
        description = field(deb, "Description").splitlines()
        check(len(description) > 4, f"{deb}: no extended description")
    check("mimamori-tools" in field(camera, "Recommends"), "the camera package does not recommend the tools")
    files = {name: run("dpkg-deb", "-c", deb).stdout for name, deb in debs.items()}
    for path in ("./usr/sbin/mimamorid", "./lib/systemd/system/mimamorid.service", "./usr/lib/tmpfiles.d/mimamori-camera.conf",
                 "./usr/share/man/man8/mimamorid.8.gz", "./usr/share/doc/mimamori-camera/README.Debian",
                 "./usr/share/doc/mimamori-camera/examples/masks.json", "./usr/share/doc/mimamori-camera/copyright",
                 "./usr/share/doc/mimamori-camera/changelog.gz"):
        check(f" {path}\n" in files["mimamori-camera"], f"mimamori-camera lacks {path}")
    for path in ("./usr/bin/mimamori", "./usr/share/man/man1/mimamori.1.gz", "./usr/share/bash-completion/completions/mimamori",
                 "./usr/share/doc/mimamori-tools/copyright", "./usr/share/doc/mimamori-tools/changelog.gz"):
        check(f" {path}\n" in files["mimamori-tools"], f"mimamori-tools lacks {path}")
    check("./etc/" not in files["mimamori-camera"], "mimamori-camera ships files in /etc (provision writes the config)")
    control = run("dpkg-deb", "-I", camera).stdout
    for script in ("postinst", "prerm", "postrm"):
        check(re.search(rf"\b{script}\b", control) is not None, f"mimamori-camera has no {script}")


def check_lintian(debs):
    out = run("lintian", "--pedantic", "--display-info", *debs.values())
    problems = [line for line in out.stdout.splitlines() if re.match(r"[EW]: ", line)]
    check(not problems, "lintian --pedantic:\n  " + "\n  ".join(problems))
    print(out.stdout, end="")


def check_hardening(root):
    for binary in ("usr/sbin/mimamorid", "usr/bin/mimamori"):
        path = os.path.join(root, binary)
        headers = run("readelf", "-W", "-l", "-d", "-S", path).stdout
        symbols = run("readelf", "-W", "--dyn-syms", path).stdout
        check("GNU_RELRO" in headers, f"{binary}: no RELRO")
        check(re.search(r"\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*\bNOW\b", headers) is not None, f"{binary}: no BIND_NOW")
        check(re.search(r"\(FLAGS_1\).*\bPIE\b", headers) is not None, f"{binary}: not PIE")
        check("__stack_chk_fail" in symbols, f"{binary}: no stack protector")
        check(re.search(r"__\w+_chk@", symbols) is not None, f"{binary}: no FORTIFY_SOURCE functions")
        check(" .symtab " not in headers and " .debug_info " not in headers, f"{binary}: not stripped")


def check_unit(unit):
    security = run("systemd-analyze", "security", "--offline=true", unit)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    check(level is not None and float(level.group(1)) < 2.0,
          f"systemd-analyze security: {level.group(1) if level else security.stdout + security.stderr}")


# Runs inside the namespace (this file with --inside): install, provision, check, purge.
def inside(debs_dir):
    debs = sorted(glob.glob(os.path.join(debs_dir, "*.deb")))
    installed = run("dpkg", "-i", *debs)
    check(installed.returncode == 0, f"dpkg -i: {installed.stdout}{installed.stderr}")
    check(run("getent", "passwd", "mimamori").returncode == 0, "postinst made no mimamori user")
    groups = run("id", "-nG", "mimamori").stdout.split()
    check({"mimamori", "video", "bluetooth"} <= set(groups), f"mimamori's groups: {groups}")
    check(os.path.islink("/etc/systemd/system/multi-user.target.wants/mimamorid.service"), "postinst did not enable the unit")
    check(os.path.isdir("/media/sdcard/mimamori"), "the card's folder was not created (tmpfiles.d)")

    verify = run("systemd-analyze", "verify", "/lib/systemd/system/mimamorid.service")
    check(verify.returncode == 0 and verify.stderr == "", f"systemd-analyze verify: {verify.stdout}{verify.stderr}")
    unchecked = run("/usr/sbin/mimamorid", "--check-config", "/etc/mimamori/mimamorid.json")
    check(unchecked.returncode == 1, "--check-config passes before provisioning?")
    provision = run("/usr/bin/mimamori", "provision", "--camera-id", "kakogawa-0001")
    check(provision.returncode == 0, f"provision: {provision.stdout}{provision.stderr}")
    checked = run("/usr/sbin/mimamorid", "--check-config", "/etc/mimamori/mimamorid.json")
    check(checked.returncode == 0, f"--check-config on the installed defaults: {checked.stdout}{checked.stderr}")
    check(os.path.exists("/var/lib/mimamori/keys/kakogawa-0001.secret"), "no camera key in the key store")

    open("/media/sdcard/mimamori/segment", "w").write("ring")
    purged = run("dpkg", "--purge", "mimamori-camera")
    check(purged.returncode == 0, f"dpkg --purge: {purged.stdout}{purged.stderr}")
    check(run("getent", "passwd", "mimamori").returncode != 0, "purge left the mimamori user")
    check(not os.path.exists("/var/lib/mimamori") and not os.path.exists("/etc/mimamori"),
          "purge left /var/lib/mimamori or /etc/mimamori")
    check(not os.path.exists("/etc/systemd/system/multi-user.target.wants/mimamorid.service"), "purge left the unit enabled")
    check(os.path.exists("/media/sdcard/mimamori/segment"), "purge removed the ring without being asked")
    again = run("dpkg", "-i", *[d for d in debs if "mimamori-camera" in d])
    check(again.returncode == 0, f"reinstall: {again.stderr}")
    asked = run("dpkg", "--purge", "mimamori-camera", env={**os.environ, "MIMAMORI_PURGE_RING": "yes"})
    check(asked.returncode == 0 and not os.path.exists("/media/sdcard/mimamori"),
          f"MIMAMORI_PURGE_RING=yes did not remove the ring: {asked.stderr}")


def in_throwaway_root(debs_dir, scratch):
    # Overlays of the host's folders; the upper layers live in `scratch` and go with it.
    mounts = []
    for i, folder in enumerate(("/etc", "/usr", "/var", "/media")):
        upper, work = os.path.join(scratch, f"upper{i}"), os.path.join(scratch, f"work{i}")
        os.makedirs(upper)
        os.makedirs(work)
        mounts.append(f"mount -t overlay overlay -o lowerdir={folder},upperdir={upper},workdir={work} {folder}")
    script = " && ".join(mounts + [f"exec /usr/bin/python3 '{os.path.abspath(__file__)}' --inside '{debs_dir}'"])
    out = run("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
    print(out.stdout, end="")
    check(out.returncode == 0, f"in the throwaway root: {out.stderr}")


def main():
    if sys.argv[1] == "--inside":
        inside(sys.argv[2])
        for f in failures:
            print("FAIL:", f)
        return 1 if failures else 0
    build, source = sys.argv[1:3]
    if os.geteuid() != 0:
        print("SKIP: needs root (a mount namespace and dpkg for the throwaway root)")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = os.path.join(tmp, "debs")
        made = run("cpack", "-G", "DEB", "-B", out_dir, "--config", os.path.join(build, "CPackConfig.cmake"))
        check(made.returncode == 0, f"cpack: {made.stdout}{made.stderr}")
        debs = {os.path.basename(d).split("_")[0]: d for d in glob.glob(os.path.join(out_dir, "*.deb"))}
        check(set(debs) == {"mimamori-camera", "mimamori-tools"}, f"cpack made {sorted(debs)}")
        if not failures:
            check_contents(debs)
            check_lintian(debs)
            root = os.path.join(tmp, "root")
            for deb in debs.values():
                run("dpkg-deb", "-x", deb, root)
            check_hardening(root)
            check_unit(os.path.join(source, "packaging/mimamorid.service"))
            in_throwaway_root(out_dir, os.path.join(tmp, "overlay"))
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

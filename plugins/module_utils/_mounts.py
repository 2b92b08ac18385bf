# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mounts and loop devices: parse what the kernel reports, release what
lives under a work directory (deepest first), and provide an image root with
/proc, /sys, /dev, /dev/pts and resolv.conf that is always torn down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from contextlib import contextmanager

POLICY_RC_D = "#!/bin/sh\n# osimage.builder: no daemon starts inside an image root during a build\nexit 101\n"
POLICY_RC_D_MARK = "osimage.builder"


def _unescape(field):
    """mountinfo escapes space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text):
    """Mount points listed in /proc/self/mountinfo text, in kernel order."""
    points = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            points.append(_unescape(fields[4]))
    return points


def is_under(path, top):
    top = os.path.normpath(top)
    path = os.path.normpath(path)
    return path == top or path.startswith(top.rstrip("/") + "/")


def mounts_under(top, mountinfo_text):
    """Mount points at or below `top`, deepest first (the order to unmount)."""
    found = [p for p in parse_mountinfo(mountinfo_text) if is_under(p, top)]
    # Unmount in reverse mount order, then by depth: a later mount may sit on
    # top of an earlier one at the same path.
    ordered = list(reversed(found))
    ordered.sort(key=lambda p: p.count("/"), reverse=True)
    return ordered


def read_mountinfo():
    with open("/proc/self/mountinfo") as f:
        return f.read()


def parse_losetup_json(text):
    """[(device, backing_file)] from `losetup --json --list` output."""
    if not text.strip():
        return []
    data = json.loads(text)
    return [(d.get("name"), d.get("back-file") or "") for d in data.get("loopdevices", [])]


def loops_backed_under(top, losetup_json):
    """Loop devices whose backing file lives at or below `top`."""
    result = []
    for dev, back in parse_losetup_json(losetup_json):
        # losetup appends " (deleted)" when the backing file was removed.
        back = back.replace(" (deleted)", "").strip()
        if back and is_under(back, top):
            result.append(dev)
    return sorted(result)


def release_under(runner, top, detach_loops=True, dry_run=False):
    """Unmount everything at or below `top` (deepest first) and detach loop
    devices backed by files there. Returns (unmounted, detached)."""
    unmounted = []
    for _attempt in range(5):
        points = mounts_under(top, read_mountinfo())
        if not points:
            break
        for point in points:
            unmounted.append(point)
            if dry_run:
                continue
            rc, _out, _err = runner.run(["umount", point], "unmount", check=False)
            if rc != 0:
                # Busy after a killed build: detach lazily so nothing stays
                # reachable under the work dir.
                runner.run(["umount", "--lazy", point], "lazy unmount", check=False)
        if dry_run:
            break
    else:
        left = mounts_under(top, read_mountinfo())
        if left:
            runner.module.fail_json(msg="could not unmount %s under %s" % (", ".join(left), top))
    detached = []
    if detach_loops:
        losetup = runner.module.get_bin_path("losetup", required=False)
        if losetup:
            _rc, out, _err = runner.run([losetup, "--json", "--list"], "list loop devices", check=False, record=False)
            for dev in loops_backed_under(top, out or ""):
                detached.append(dev)
                if not dry_run:
                    runner.run([losetup, "--detach", dev], "detach loop device", check=False)
    return sorted(set(unmounted), key=unmounted.index), detached


class Interrupted(Exception):
    """Raised from a signal handler so that `finally` blocks run."""


@contextmanager
def signals_raise():
    """Turn SIGTERM/SIGHUP/SIGINT into an exception for the duration, so a
    Ctrl-C or a dropped SSH connection still runs the teardown."""
    previous = {}

    def handler(signum, _frame):
        raise Interrupted("interrupted by signal %d" % signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _mount(runner, argv, target, mounted):
    os.makedirs(target, exist_ok=True)
    runner.run(argv + [target], "mount", record=False)
    mounted.append(target)


@contextmanager
def chroot_mounts(runner, root, proc=True, sys=True, dev=True, resolv_conf=True,
                  policy_rc_d=True, binds=None):
    """An image root prepared for chroot: /proc, /sys, /dev, /dev/pts, the
    host's resolv.conf and a policy-rc.d that keeps daemons from starting.
    Everything is undone on exit, deepest mount first, also on failure or on
    a signal. `binds` maps host directories to paths inside the root."""
    root = os.path.realpath(root)
    mounted = []
    restore = []  # (path, backup_or_None) for files put in place
    try:
        if proc:
            _mount(runner, ["mount", "-t", "proc", "proc"], os.path.join(root, "proc"), mounted)
        if sys:
            _mount(runner, ["mount", "-t", "sysfs", "sysfs"], os.path.join(root, "sys"), mounted)
        if dev:
            _mount(runner, ["mount", "--bind", "/dev"], os.path.join(root, "dev"), mounted)
            _mount(runner, ["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts"],
                   os.path.join(root, "dev", "pts"), mounted)
        for host_dir, inside in sorted((binds or {}).items(), key=lambda kv: kv[1]):
            os.makedirs(host_dir, exist_ok=True)
            _mount(runner, ["mount", "--bind", host_dir], os.path.join(root, inside.lstrip("/")), mounted)
        if resolv_conf and os.path.exists("/etc/resolv.conf"):
            restore.append(_put_file(os.path.join(root, "etc", "resolv.conf"),
                                     open("/etc/resolv.conf").read(), 0o644))
        if policy_rc_d:
            target = os.path.join(root, "usr", "sbin", "policy-rc.d")
            if not os.path.exists(target) or POLICY_RC_D_MARK in _read(target):
                restore.append(_put_file(target, POLICY_RC_D, 0o755))
        yield root
    finally:
        for path, backup in reversed(restore):
            _restore_file(path, backup)
        for target in reversed(mounted):
            rc, _o, _e = runner.run(["umount", target], "unmount", check=False, record=False)
            if rc != 0:
                time.sleep(0.2)
                runner.run(["umount", "--lazy", target], "lazy unmount", check=False, record=False)
        # Anything a command inside the root mounted on its own goes too.
        release_under(runner, root, detach_loops=False)


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _put_file(path, content, mode):
    """Put a file in place, keeping what was there (file or symlink) aside."""
    backup = None
    if os.path.lexists(path):
        backup = path + ".osimage-builder-orig"
        if os.path.lexists(backup):
            # Left by a killed run: the backup is the original, keep it.
            os.unlink(path) if not os.path.isdir(path) else shutil.rmtree(path)
        else:
            os.rename(path, backup)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content)
    os.chmod(path, mode)
    return path, backup


def _restore_file(path, backup):
    if os.path.lexists(path):
        os.unlink(path)
    if backup and os.path.lexists(backup):
        os.rename(backup, path)


def restore_leftovers(root):
    """Undo files a killed run left in place (resolv.conf, policy-rc.d)."""
    restored = []
    for rel in ("etc/resolv.conf", "usr/sbin/policy-rc.d"):
        path = os.path.join(root, rel)
        backup = path + ".osimage-builder-orig"
        if os.path.lexists(backup):
            _restore_file(path, backup)
            restored.append(path)
        elif rel.endswith("policy-rc.d") and POLICY_RC_D_MARK in _read(path):
            os.unlink(path)
            restored.append(path)
    return restored


@contextmanager
def loop_device(runner, image, partitions=0):
    """Attach `image` to a loop device and register its partitions with
    partx (this machine's kernel has no partition table parser, so
    `losetup -P` alone makes no p1). Yields (device, [partition devices]).
    Everything mounted from it and the device itself are released on exit,
    also on failure."""
    _rc, out, _err = runner.run(["losetup", "--find", "--show", image], "attach %s to a loop device" % image)
    dev = out.strip()
    parts = []
    try:
        if partitions:
            runner.run(["partx", "--add", dev], "register the partitions of %s" % dev, check=False)
            parts = ["%sp%d" % (dev, i) for i in range(1, partitions + 1)]
            for _ in range(100):
                if all(os.path.exists(p) for p in parts):
                    break
                time.sleep(0.1)
            else:
                runner.module.fail_json(msg="partition devices %s did not appear after partx --add %s"
                                            % (", ".join(parts), dev))
        yield dev, parts
    finally:
        text = read_mountinfo()
        for part in reversed(parts + [dev]):
            for line in text.splitlines():
                fields = line.split()
                if len(fields) > 9 and fields[fields.index("-") + 2] == part:
                    for point in mounts_under(_unescape(fields[4]), text):
                        runner.run(["umount", point], "unmount", check=False, record=False)
        if parts:
            runner.run(["partx", "--delete", dev], "forget partitions", check=False, record=False)
        runner.run(["losetup", "--detach", dev], "detach loop device", check=False, record=False)


@contextmanager
def mounted(runner, device, target, options=None):
    """Mount a device for the duration; unmount (lazily if busy) on exit."""
    os.makedirs(target, exist_ok=True)
    argv = ["mount"] + (["-o", options] if options else []) + [device, target]
    runner.run(argv, "mount %s" % device, record=False)
    try:
        yield target
    finally:
        release_under(runner, target, detach_loops=False)

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mounts and loop devices: parse what the kernel reports, release what
lives under a work directory (deepest first), and provide an image root with
/proc, /sys, /dev, /dev/pts and resolv.conf that is always torn down.

Two rules keep the build host safe whatever an image holds:

- teardown is scoped: nothing is released under `/` or under a directory of
  the host's own system (`host_dir_problem`), so a wrong `root` or `path`
  can never unmount the host's mounts or another build's;
- a path inside an image root is resolved the way chroot(2) would resolve it
  (`resolve_in_root`): a symlink a package or a tarball put in the image
  (`/etc -> /etc` of "the host", `/proc -> /`) stays inside the root, so a
  write or a mount from the host never lands on the host's own files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from contextlib import contextmanager

POLICY_RC_D = "#!/bin/sh\n# osimage.builder: no daemon starts inside an image root during a build\nexit 101\n"
POLICY_RC_D_MARK = "osimage.builder"

# Directories of the build host's own system (FHS 3.0 top-level directories
# and the shared ones below them): never an image root or a work directory,
# because releasing what is mounted under them would take the host's own
# mounts (or another build's) with it.
HOST_SYSTEM_DIRS = frozenset([
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
    "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/usr/lib",
    "/usr/share", "/usr/src", "/var", "/var/tmp", "/var/cache", "/var/lib", "/var/log", "/var/spool",
    "/var/mail", "/var/opt", "/var/local", "/var/backups", "/var/lib/docker", "/var/lib/containers",
    "/run/user", "/dev/shm", "/run/lock",
])
# Linux follows at most 40 symlinks in one lookup (path_resolution(7), ELOOP).
MAX_SYMLINKS = 40


def host_dir_problem(path):
    """Why `path` must not be a directory whose mounts a module releases
    (None when it may): `/` itself, a directory of the host's own system,
    or one that holds one of them."""
    real = os.path.realpath(path)
    if real == "/":
        return "%s is / of the build host" % path
    if real in HOST_SYSTEM_DIRS:
        return "%s is the build host's own %s" % (path, real)
    return None


def resolve_in_root(root, path, follow_last=True, strict=False):
    """The host path that `path` names inside the image root `root`,
    resolved as a process chrooted into `root` would resolve it: every
    component is looked at in turn, an absolute symlink starts again at
    `root`, a relative one is followed from its directory, and `..` stops
    at `root` (path_resolution(7) in a chroot). The result never leaves
    `root`. Components that do not exist yet are joined as they are.

    follow_last=False leaves the last component as it is (to rename or
    unlink a symlink rather than what it points to). strict=True refuses a
    `path` that climbs out of the root with `..` (ValueError), for inputs a
    user wrote. Raises ValueError after MAX_SYMLINKS symlinks (a loop)."""
    root = os.path.realpath(root)
    given = [c for c in path.split("/") if c not in ("", ".")]
    if strict:
        depth = 0
        for comp in given:
            depth += -1 if comp == ".." else 1
            if depth < 0:
                raise ValueError("%s climbs out of the image root with .." % path)
    todo = list(given)
    resolved = root
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp == "..":
            if resolved != root:
                resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, comp)
        if (todo or follow_last) and os.path.islink(candidate):
            links += 1
            if links > MAX_SYMLINKS:
                raise ValueError("%s: too many levels of symbolic links inside %s" % (path, root))
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = root
            todo = [c for c in target.split("/") if c not in ("", ".")] + todo
            continue
        resolved = candidate
    return resolved


def is_inside(path, root):
    """Whether `path`, with every symlink on the host resolved, is `root`
    or below it: the check made just before a write or a mount, so that a
    component swapped for a symlink after resolve_in_root is caught."""
    return is_under(os.path.realpath(path), os.path.realpath(root))


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


def loops_backed_by(prefix, losetup_json):
    """Loop devices whose backing file's path starts with `prefix` (a
    module's own temporary image names, such as <dir>/.disk.img.disk_image-)."""
    result = []
    for dev, back in parse_losetup_json(losetup_json):
        back = back.replace(" (deleted)", "").strip()
        if back and back.startswith(prefix):
            result.append(dev)
    return sorted(result)


def detach_loops_backed_by(runner, prefix):
    """Detach (after unmounting what is mounted from them) the loop devices
    backed by files whose path starts with `prefix`. Returns the devices."""
    losetup = runner.module.get_bin_path("losetup", required=False)
    if not losetup or not os.path.basename(prefix):
        return []
    _rc, out, _err = runner.run([losetup, "--json", "--list"], "list loop devices", check=False, record=False)
    devices = loops_backed_by(prefix, out or "")
    if not devices:
        return []
    partx = runner.module.get_bin_path("partx", required=False)
    for line in read_mountinfo().splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) <= fields.index("-") + 2:
            continue
        source = fields[fields.index("-") + 2]
        if any(source == dev or source.startswith(dev + "p") for dev in devices):
            # Mounted from this module's own image: the mount is its own.
            runner.run(["umount", "--lazy", _unescape(fields[4])], "unmount", check=False, record=False)
    for dev in devices:
        if partx:
            runner.run([partx, "--delete", dev], "forget partitions", check=False, record=False)
        runner.run([losetup, "--detach", dev], "detach loop device", check=False, record=False)
    return devices


def release_under(runner, top, detach_loops=True, dry_run=False):
    """Unmount everything at or below `top` (deepest first) and detach loop
    devices backed by files there. Returns (unmounted, detached).

    Refuses (fail_json, before anything is released) a `top` that is `/`
    or a directory of the host's own system: only a directory a module made
    for its own work may be swept."""
    problem = host_dir_problem(top)
    if problem:
        runner.module.fail_json(msg="refusing to release the mounts under %s: %s; name a directory made for "
                                    "this build (a work directory or an image root)" % (top, problem))
    top = os.path.realpath(top)
    unmounted = []
    for _attempt in range(5):
        points = mounts_under(top, read_mountinfo())
        if not points:
            break
        for point in points:
            unmounted.append(point)
            if dry_run:
                continue
            if not is_inside(point, top):
                # A component was swapped for a symlink after the mount was
                # made: umount would follow it out of `top`, onto whatever
                # the host has there. Stop rather than guess.
                runner.module.fail_json(msg="mount point %s now leads out of %s (a symlink was put in its "
                                            "path); unmount it by hand" % (point, top))
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


def _mount(runner, argv, root, inside, mounted):
    """Mount on `inside` (a path in the image), resolved in the root so a
    symlink such as /proc -> / in the image cannot put the mount on the host."""
    target = resolve_in_root(root, inside)
    os.makedirs(target, exist_ok=True)
    if not os.path.isdir(target) or not is_inside(target, root):
        runner.module.fail_json(msg="mount target %s inside %s is not a directory of the image root"
                                    % (inside, root))
    runner.run(argv + [target], "mount", record=False)
    mounted.append(target)


@contextmanager
def chroot_mounts(runner, root, proc=True, sys=True, dev=True, resolv_conf=True,
                  policy_rc_d=True, binds=None):
    """An image root prepared for chroot: /proc, /sys, /dev, /dev/pts, the
    host's resolv.conf and a policy-rc.d that keeps daemons from starting.
    Everything is undone on exit, deepest mount first, also on failure or on
    a signal. `binds` maps host directories to paths inside the root.
    Every target is resolved inside the root (resolve_in_root)."""
    root = os.path.realpath(root)
    problem = host_dir_problem(root)
    if problem:
        runner.module.fail_json(msg="root=%s cannot be an image root: %s" % (root, problem))
    mounted = []
    restore = []  # (path, backup_or_None) for files put in place
    try:
        if proc:
            _mount(runner, ["mount", "-t", "proc", "proc"], root, "/proc", mounted)
        if sys:
            _mount(runner, ["mount", "-t", "sysfs", "sysfs"], root, "/sys", mounted)
        if dev:
            _mount(runner, ["mount", "--bind", "/dev"], root, "/dev", mounted)
            _mount(runner, ["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts"],
                   root, "/dev/pts", mounted)
        for host_dir, inside in sorted((binds or {}).items(), key=lambda kv: kv[1]):
            os.makedirs(host_dir, exist_ok=True)
            _mount(runner, ["mount", "--bind", host_dir], root, inside, mounted)
        if resolv_conf and os.path.exists("/etc/resolv.conf"):
            with open("/etc/resolv.conf") as f:
                restore.append(_put_file(root, "/etc/resolv.conf", f.read(), 0o644))
        if policy_rc_d:
            target = resolve_in_root(root, "/usr/sbin/policy-rc.d")
            if not os.path.exists(target) or POLICY_RC_D_MARK in _read(target):
                restore.append(_put_file(root, "/usr/sbin/policy-rc.d", POLICY_RC_D, 0o755))
        yield root
    finally:
        for path, backup in reversed(restore):
            _restore_file(path, backup)
        for target in reversed(mounted):
            if not is_inside(target, root):
                continue  # swapped for a symlink by the command: release_under below finds the mount
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


def _put_file(root, inside, content, mode):
    """Put a file at `inside` in the image root, keeping what was there
    (file or symlink) aside. Its directory is resolved in the root and the
    file itself is never followed: a resolv.conf that is a symlink is
    renamed aside, not written through."""
    path = os.path.join(resolve_in_root(root, os.path.dirname(inside)), os.path.basename(inside))
    backup = None
    if os.path.lexists(path):
        backup = path + ".osimage-builder-orig"
        if os.path.lexists(backup):
            # Left by a killed run: the backup is the original, keep it.
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        else:
            os.rename(path, backup)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not is_inside(os.path.dirname(path), root):
        raise ValueError("%s leads out of the image root %s" % (inside, root))
    # O_EXCL|O_NOFOLLOW: the name was just cleared; never write through a
    # symlink that appeared since.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.chmod(path, mode)
    return path, backup


def _restore_file(path, backup):
    if os.path.lexists(path):
        os.unlink(path)
    if backup and os.path.lexists(backup):
        os.rename(backup, path)


def restore_leftovers(root):
    """Undo files a killed run left in place (resolv.conf, policy-rc.d),
    found where chroot_mounts put them: resolved inside the root."""
    restored = []
    for inside in ("/etc/resolv.conf", "/usr/sbin/policy-rc.d"):
        path = os.path.join(resolve_in_root(root, os.path.dirname(inside)), os.path.basename(inside))
        backup = path + ".osimage-builder-orig"
        if os.path.lexists(backup):
            _restore_file(path, backup)
            restored.append(path)
        elif inside.endswith("policy-rc.d") and not os.path.islink(path) and POLICY_RC_D_MARK in _read(path):
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
            for _attempt in range(100):
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
    """Mount a device for the duration; unmount (lazily if busy) on exit.
    `target` is a directory the caller made for its own work."""
    problem = host_dir_problem(target)
    if problem:
        runner.module.fail_json(msg="refusing to mount %s on %s: %s" % (device, target, problem))
    os.makedirs(target, exist_ok=True)
    argv = ["mount"] + (["-o", options] if options else []) + [device, target]
    runner.run(argv, "mount %s" % device, record=False)
    try:
        yield target
    finally:
        release_under(runner, target, detach_loops=False)

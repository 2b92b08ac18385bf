# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lock for a build directory that two builds may share (a kernel's
object tree, a cache): the second build waits for the first, for a bounded
time, then fails naming the directory and the pid that holds it; it never
writes into a tree another build is writing.

flock(2) on `<directory>/.osimage.lock`: the kernel releases the lock when
its holder exits, also when it is killed, so a crashed build leaves no stale
lock behind (the file stays; an unlocked file is free).

A pipeline holds the lock of its work directory for its whole run, across
many tasks, each its own process: `hold_for_build` takes the lock and hands
it to a small holder process that keeps it until `release_build_lock` stops
it, or until the build that took it is gone (`build_owner`: the
ansible-playbook process of a local connection, the sshd session of an SSH
one), so a killed build leaves no held lock either."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import time

LOCK_NAME = ".osimage.lock"
# Long enough for the other build of a shared object tree to finish (a
# defconfig kernel on two cores), short enough that a hung one is reported.
DEFAULT_TIMEOUT = 3 * 3600
# OSIMAGE_LOCK_TIMEOUT (seconds) overrides the default wait of every lock a
# module takes; set it with a task's `environment:`.
TIMEOUT_ENV = "OSIMAGE_LOCK_TIMEOUT"
POLL_SECONDS = 0.2


class LockTimeout(Exception):
    """The directory stayed locked by another build for the whole wait."""


def lock_path(directory, beside=False):
    """<directory>/.osimage.lock; beside=True: .<name>.osimage.lock next to
    the directory, for a directory whose whole content is copied into an
    image (a .deb cache)."""
    if beside:
        directory = directory.rstrip("/") or "/"
        return os.path.join(os.path.dirname(directory), ".%s%s" % (os.path.basename(directory), LOCK_NAME))
    return os.path.join(directory, LOCK_NAME)


def holder_info(directory, beside=False):
    """What the build holding (or last holding) the lock recorded: {"pid": N}
    for a module's own lock, the JSON record of a pipeline's holder
    (hold_for_build), {} when nothing is readable."""
    try:
        with open(lock_path(directory, beside)) as f:
            text = f.read().strip()
    except OSError:
        return {}
    if text.isdigit():
        return {"pid": int(text)}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def holder_pid(directory, beside=False):
    """The pid recorded by the build holding (or last holding) the lock, or None."""
    pid = holder_info(directory, beside).get("pid")
    return pid if isinstance(pid, int) else None


def try_lock(fd):
    """Take the exclusive lock of the open lock file `fd` if it is free."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False


def busy_message(directory, timeout, what, hint=None, beside=False):
    info = holder_info(directory, beside)
    pid = info.get("pid")
    who = "pid %s" % (pid if pid is not None else "unknown")
    if info.get("started"):
        who += ", started %s" % info["started"]
    if info.get("build"):
        who += ": %s" % info["build"]
    if info.get("holder_pid"):
        who += "; lock holder pid %s" % info["holder_pid"]
    return ("%s %s is in use by another build (%s) and stayed locked for %d seconds; wait for it to finish or stop "
            "it, or give this build its own directory (lock file %s; %s)"
            % (what, directory, who, timeout, lock_path(directory, beside),
               hint or "%s=<seconds> sets the wait" % TIMEOUT_ENV))


def _wait_for_lock(fd, directory, timeout, what, fail, hint=None, beside=False):
    deadline = time.monotonic() + timeout
    while not try_lock(fd):
        if time.monotonic() >= deadline:
            error = LockTimeout(busy_message(directory, timeout, what, hint, beside))
            if fail is not None:
                fail(msg=str(error), lock_holder_pid=holder_pid(directory, beside),
                     lock_holder=holder_info(directory, beside))
            raise error
        time.sleep(POLL_SECONDS)


def timeout_from_env(default=DEFAULT_TIMEOUT):
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        return float(value) if value else default
    except ValueError:
        return default


@contextlib.contextmanager
def build_dir_lock(directory, timeout=None, what="build directory", fail=None, beside=False):
    """Hold the exclusive lock of `directory` (which must exist) for the
    duration. Waits up to `timeout` seconds (default: OSIMAGE_LOCK_TIMEOUT or
    DEFAULT_TIMEOUT) for another holder, then raises LockTimeout with a
    message naming the directory and the holder's pid; or, with `fail`
    (a module's fail_json), fails with that message. beside=True locks a
    file next to the directory (lock_path)."""
    if timeout is None:
        timeout = timeout_from_env()
    path = lock_path(directory, beside)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _wait_for_lock(fd, directory, timeout, what, fail, beside=beside)
        # Written only while holding the lock: a waiter reads the holder's pid.
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        yield path
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def cache_lock(directory, what, fail=None):
    """The lock of a cache two builds with different work directories share
    (a .deb cache: the package_cache_dir of rootfs_bootstrap, the
    apt_cache_dir of chroot_command), taken beside it so that copying the
    cache into an image copies no lock file; a no-op for no directory."""
    if not directory:
        return contextlib.nullcontext()
    os.makedirs(directory, exist_ok=True)
    return build_dir_lock(directory, what=what, fail=fail, beside=True)


# A pipeline's lock: held across the tasks of a whole run.
#
# Each Ansible task is its own process, so a flock taken by one module ends
# with it. hold_for_build takes the lock, then forks a holder process that
# inherits the locked descriptor and keeps it until release_build_lock stops
# it (SIGTERM) or the build's owner process is gone. The owner is what lives
# as long as the build on the build host (build_owner):
# - a local connection: the topmost ansible-playbook (or ansible) ancestor,
#   the controller itself (its workers are forks of it with the same
#   command line);
# - SSH: the nearest sshd session process. It lives as long as the SSH
#   connection: with OpenSSH's ControlPersist (the ssh connection plugin's
#   default) that is the whole play, and a killed controller releases the
#   lock when the master connection ends (ControlPersist seconds later). A
#   connection per task (paramiko) ends with the task that took the lock:
#   the lock then protects the plan only, and the release finds nothing to
#   release (the limit of watching a process on the build host).
# - otherwise the session leader of the module's process, or the pid the
#   caller names (owner_pid).
# The build also lives while any process the owner started lives: Ansible
# runs each worker in a session of its own (setsid), so a task left running
# after only the controller was killed is in no group of the controller's;
# the holder follows the owner's process tree (pid and start of every
# descendant, once a second) and keeps the lock until the last of them ends.
# A process is identified by pid and start time (/proc/<pid>/stat field 22),
# so a reused pid is not taken for the build.
OWNER_PROGRAMS = ("ansible-playbook", "ansible")
HOLDER_POLL_SECONDS = 1.0


def _stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return text[text.rindex(")") + 2:].split()


def process_start(pid):
    """The start time of `pid` in clock ticks since boot, None when gone."""
    fields = _stat_fields(pid) if pid and pid > 0 else None
    if not fields or fields[0] == "Z":
        return None
    return int(fields[19])


def _parent(pid):
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def started_utc(start):
    """A start time in clock ticks since boot as UTC (2026-12-01T16:30:00Z)."""
    try:
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(boot + start / os.sysconf("SC_CLK_TCK")))


def alive(pid, start):
    return pid is not None and start is not None and process_start(pid) == start


def describe(pid, limit=120):
    text = " ".join(os.path.basename(a) if i < 2 else a for i, a in enumerate(_cmdline(pid)))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def ancestors(pid=None):
    chain = []
    pid = os.getppid() if pid is None else pid
    while pid > 1 and len(chain) < 64:
        chain.append(pid)
        pid = _parent(pid)
    return chain


def descendants(roots):
    """{pid: start} of the live processes started by any of `roots` (a
    {pid: start} of live processes), at any depth, roots included; a
    zombie counts as gone."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields and fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(name))
    found = {pid: start for pid, start in roots.items() if alive(pid, start)}
    todo = list(found)
    while todo:
        for pid in children.get(todo.pop(), []):
            start = process_start(pid)
            if pid not in found and start is not None:
                found[pid] = start
                todo.append(pid)
    return found


def build_owner(owner_pid=None):
    """(pid, start, how) of the process whose life is the build's, or None."""
    if owner_pid:
        start = process_start(owner_pid)
        return (owner_pid, start, "owner_pid") if start is not None else None
    chain = ancestors()
    controller = [p for p in chain
                  if any(os.path.basename(a) in OWNER_PROGRAMS for a in _cmdline(p)[:2])]
    if controller:
        pid = controller[-1]
        return pid, process_start(pid), "ansible controller"
    for pid in chain:
        if _comm(pid).startswith("sshd"):
            return pid, process_start(pid), "sshd session"
    leader = os.getsid(0)
    if leader not in (0, 1, os.getpid()) and process_start(leader) is not None:
        return leader, process_start(leader), "session leader"
    return None


def held_by(directory, owner):
    """The record of the live holder of `directory`'s lock if it is this
    build's (owner as from build_owner), else None."""
    info = holder_info(directory)
    if (info.get("pid"), info.get("pid_start")) == (owner[0], owner[1]) and \
            alive(info.get("holder_pid"), info.get("holder_start")):
        return info
    return None


def is_free(directory):
    """Whether nothing holds `directory`'s lock; creates no file."""
    try:
        fd = os.open(lock_path(directory), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        if try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        return False
    finally:
        os.close(fd)


def _close_other_fds(keep):
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _hold(fd, report, record, owner):
    """The holder process (never returns): detached from the module's
    session and pipes, it records itself in the lock file, reports the
    record on `report`, then keeps the lock while the owner or any process
    it started lives."""
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        # Not in the task's temporary directory, which Ansible removes.
        os.chdir("/")
        devnull = os.open("/dev/null", os.O_RDWR)
        for n in (0, 1, 2):
            os.dup2(devnull, n)
        _close_other_fds({fd, report})
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        record = dict(record, holder_pid=os.getpid(), holder_start=process_start(os.getpid()))
        data = json.dumps(record, sort_keys=True).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data + b"\n", 0)
        os.write(report, data)
        os.close(report)
        me = os.getpid()
        build = {owner[0]: owner[1]}
        while build:
            time.sleep(HOLDER_POLL_SECONDS)
            build = descendants(build)
            build.pop(me, None)
    except BaseException:  # noqa: BLE001  # pylint: disable=broad-except
        pass
    os._exit(0)


def hold_for_build(directory, owner, timeout=None, what="directory", fail=None, hint=None):
    """Take the lock of `directory` (which must exist) for the build `owner`
    (pid, start, how), waiting up to `timeout` seconds (default:
    OSIMAGE_LOCK_TIMEOUT or DEFAULT_TIMEOUT), and hand it to a holder process.
    Returns the holder's record (pid, pid_start, owner, build, started: when
    the build's process started, locked, holder_pid, holder_start). On a
    timeout, fails (or raises LockTimeout) naming the directory and the build
    that holds it."""
    if timeout is None:
        timeout = timeout_from_env()
    fd = os.open(lock_path(directory), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _wait_for_lock(fd, directory, timeout, what, fail, hint)
        record = {"pid": owner[0], "pid_start": owner[1], "owner": owner[2],
                  "build": describe(owner[0]),
                  "directory": directory,
                  "started": started_utc(owner[1]) or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "locked": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read_end)
            _hold(fd, write_end, record, owner)
        os.close(write_end)
        os.waitpid(child, 0)
        with os.fdopen(read_end, "rb") as f:
            data = f.read()
        if not data:
            raise OSError(errno.ECHILD, "the lock holder process of %s did not start" % directory)
        return json.loads(data)
    finally:
        # The holder keeps its own copy of the descriptor, and with it the lock.
        os.close(fd)


def release_build_lock(info, wait=10.0):
    """Stop the holder of `info` (a record from held_by); True once it is
    gone, and with it this build's lock (a waiting build may hold the lock
    the moment after)."""
    try:
        os.kill(info["holder_pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + wait
    while alive(info["holder_pid"], info["holder_start"]):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True

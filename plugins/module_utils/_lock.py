# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lock for a build directory that two builds may share (a kernel's
object tree, a cache): the second build waits for the first, for a bounded
time, then fails naming the directory and the pid that holds it; it never
writes into a tree another build is writing.

flock(2) on `<directory>/.osimage.lock`: the kernel releases the lock when
its holder exits, also when it is killed, so a crashed build leaves no stale
lock behind (the file stays; an unlocked file is free)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
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


def lock_path(directory):
    return os.path.join(directory, LOCK_NAME)


def holder_pid(directory):
    """The pid recorded by the build holding (or last holding) the lock, or None."""
    try:
        with open(lock_path(directory)) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def timeout_from_env(default=DEFAULT_TIMEOUT):
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        return float(value) if value else default
    except ValueError:
        return default


@contextlib.contextmanager
def build_dir_lock(directory, timeout=None, what="build directory", fail=None):
    """Hold the exclusive lock of `directory` (which must exist) for the
    duration. Waits up to `timeout` seconds (default: OSIMAGE_LOCK_TIMEOUT or
    DEFAULT_TIMEOUT) for another holder, then raises LockTimeout with a
    message naming the directory and the holder's pid; or, with `fail`
    (a module's fail_json), fails with that message."""
    if timeout is None:
        timeout = timeout_from_env()
    path = lock_path(directory)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                pid = holder_pid(directory)
                error = LockTimeout(
                    "%s %s is in use by another build (pid %s) and stayed locked for %d seconds; wait for it to "
                    "finish or stop it, or give this build its own directory (lock file %s; %s=<seconds> sets "
                    "the wait)" % (what, directory, pid if pid is not None else "unknown", timeout, path,
                                   TIMEOUT_ENV))
                if fail is not None:
                    fail(msg=str(error), lock_holder_pid=pid)
                raise error
            time.sleep(POLL_SECONDS)
        # Written only while holding the lock: a waiter reads the holder's pid.
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        yield path
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)

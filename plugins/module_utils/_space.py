# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A full disk as an error a user can act on: which directory filled up, how
much the write needed (when known) and how much is free, instead of a
traceback ending in `[Errno 28] No space left on device`. The writers that
use it write to a temporary name and remove it on failure, so a full disk
leaves no partial artifact."""

from __future__ import annotations

import contextlib
import errno
import os
import re

# ENOSPC, and a user's quota (EDQUOT), which a build sees the same way.
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# What a program says on a full disk: strerror(ENOSPC), strerror(EDQUOT),
# and GNU tar's report of a short write (`Wrote only 6656 of 10240 bytes`),
# which it gives without the errno.
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")
SHORT_WRITE = re.compile(r"Wrote only \d+ of \d+ bytes")


class NoSpace(OSError):
    """A write failed for lack of space; str() is the whole message."""

    def __init__(self, message, directory, needed=None, free=None):
        super().__init__(errno.ENOSPC, message)
        self.message = message
        self.directory = directory
        self.needed = needed
        self.free = free

    def __str__(self):
        return self.message

    def details(self):
        """For fail_json: directory, needed_bytes, free_bytes."""
        return {"directory": self.directory, "needed_bytes": self.needed, "free_bytes": self.free}


def is_no_space(exc):
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def existing_dir(path):
    """The nearest existing directory of `path` (itself if it is one)."""
    path = os.path.abspath(path)
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def free_bytes(path):
    """Bytes an unprivileged writer may still use on the filesystem of
    `path`, None when it cannot be asked."""
    try:
        st = os.statvfs(existing_dir(path))
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def human(n):
    if n is None:
        return "unknown"
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return "%d bytes (%.1f %s)" % (n, n / size, unit)
    return "%d bytes" % n


def no_space_message(directory, what, needed=None, written=None, free=None, param=None):
    """`<what>: no space left in <directory>: needed <N> bytes, <F> free; ...`.
    `needed` is the size of the whole write when known, else `written` (what
    was written before the disk filled) gives a lower bound; `param` names the
    option or variable that chooses the directory."""
    if free is None:
        free = free_bytes(directory)
    if needed is not None:
        need = "needed %s" % human(needed)
    elif written is not None:
        need = "needed more than the %s written before it filled" % human(written)
    else:
        need = "needed more room"
    where = "%s (%s)" % (directory, param) if param else directory
    return ("%s: no space left in %s: %s, %s free there. Free space there or give the build a directory with "
            "more room, then re-run" % (what, where, need, human(free)))


def no_space(exc, path, what, needed=None, written=None, param=None):
    """A NoSpace for the failed write of `path` (exc an ENOSPC OSError)."""
    directory = existing_dir(os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else path)
    free = free_bytes(directory)
    return NoSpace(no_space_message(directory, what, needed, written, free, param), directory, needed, free)


@contextlib.contextmanager
def disk_full_is_an_error(fail, path, what, needed=None, param=None):
    """Turn a full disk while writing `path` inside the block into
    fail(msg=..., directory=, needed_bytes=, free_bytes=) (a module's
    fail_json); or, without `fail`, into a NoSpace exception."""
    try:
        yield
    except NoSpace as exc:
        if fail is None:
            raise
        fail(msg=str(exc), **exc.details())
    except OSError as exc:
        if not is_no_space(exc):
            raise
        error = no_space(exc, path, what, needed=needed, param=param)
        if fail is None:
            raise error from exc
        fail(msg=str(error), **error.details())


def program_ran_out_of_space(text):
    """Whether a program's output says the disk was full."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return any(t in (text or "") for t in NO_SPACE_TEXTS) or SHORT_WRITE.search(text or "") is not None


def space_of_paths(argv, low=64 * 2 ** 20):
    """For a program that ran out of space: `<dir>: <free> free` for the
    directories its absolute path arguments (also `--opt=/path`) lie in, one
    per filesystem, the fullest first: the fullest one, and any other with
    less than `low` bytes free. A temporary directory of the collection's
    (a hidden name, removed on failure) is named by its parent."""
    found = {}
    for arg in argv[1:]:
        arg = str(arg)
        path = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if not path.startswith("/") or path.startswith(("/dev/", "/proc/", "/sys/")):
            continue
        directory = existing_dir(path if os.path.isdir(path) else os.path.dirname(path))
        if os.path.basename(directory).startswith("."):
            directory = os.path.dirname(directory)
        try:
            dev = os.stat(directory).st_dev
        except OSError:
            continue
        free = free_bytes(directory)
        if dev not in found and free is not None:
            found[dev] = (free, directory)
    ranked = sorted(found.values())
    return ["%s: %s free" % (d, human(f)) for i, (f, d) in enumerate(ranked) if i == 0 or f < low]

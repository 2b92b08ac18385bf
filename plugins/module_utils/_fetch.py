# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bringing an external input onto the build host, verified against the
sha256 it must have: input_file's (kernel_build does not download; the
roles fetch a kernel source URL with input_file first).
The copy goes to a temporary name beside its destination and is moved into
place only when its checksum matches, so a wrong checksum or a broken
download leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from ansible.module_utils.urls import open_url

from ansible_collections.osimage.builder.plugins.module_utils._digest import CHUNK
from ansible_collections.osimage.builder.plugins.module_utils._space import disk_full_is_an_error, is_no_space

REMOTE = re.compile(r"^(https?|ftp)://")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_remote(src):
    return REMOTE.match(src) is not None


def local_path(src):
    """A local path, also when given as a file:// URL."""
    return src[len("file://"):] if src.startswith("file://") else src


def _open(module, src, timeout, src_param):
    if not is_remote(src):
        return open(local_path(src), "rb")
    try:
        return open_url(src, timeout=timeout)
    except Exception as exc:
        module.fail_json(msg="%s=%s could not be downloaded: %s" % (src_param, src, exc))


def _copy(module, src, out, timeout, src_param):
    """Copy src (path or URL) into the binary file `out`; returns its sha256."""
    h = hashlib.sha256()
    with _open(module, src, timeout, src_param) as fin:
        try:
            for block in iter(lambda: fin.read(CHUNK), b""):
                h.update(block)
                if out is not None:
                    out.write(block)
        except OSError as exc:
            if not is_remote(src) or is_no_space(exc):
                raise
            module.fail_json(msg="%s=%s could not be downloaded: %s" % (src_param, src, exc))
    return h.hexdigest()


def mismatch_message(src_param, src, got, sha_param, want, refusal):
    return "%s=%s has sha256 %s, but %s=%s was expected; refusing to %s" % (
        src_param, src, got, sha_param, want, refusal)


def fetch_verified(module, src, want, dest, timeout=60, mode=0o644, src_param="src", sha_param="sha256",
                   refusal="use it"):
    """Copy or download src (a path, or an http/https/ftp/file URL) to dest,
    verified against `want` (64 hex digits) before it is moved into place.
    Failures name the module's parameters (src_param, sha_param)."""
    dest_dir = os.path.dirname(dest) or "."
    os.makedirs(dest_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=dest_dir)
    needed = None if is_remote(src) or not os.path.isfile(local_path(src)) else os.path.getsize(local_path(src))
    try:
        with disk_full_is_an_error(module.fail_json, tmp, "copying %s=%s to %s" % (src_param, src, dest), needed):
            with os.fdopen(fd, "wb") as out:
                got = _copy(module, src, out, timeout, src_param)
        if got != want:
            module.fail_json(msg=mismatch_message(src_param, src, got, sha_param, want, refusal), actual_sha256=got)
        module.atomic_move(tmp, dest)
        os.chmod(dest, mode)  # atomic_move applies the umask to a new file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest

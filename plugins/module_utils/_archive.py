# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reproducible tarballs: GNU tar arguments and a streamed, hashed
tar | compressor pipeline, shared by rootfs_archive and stemcell_package;
and the checks made before a tarball this build did not make is unpacked."""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile

# The compressor table lives in _compress (one place for every compression);
# rootfs_archive and stemcell_package take these names from here.
from ansible_collections.osimage.builder.plugins.module_utils._compress import (  # noqa: F401  # pylint: disable=unused-import
    COMPRESSORS,
    pick_compressor,
)
from ansible_collections.osimage.builder.plugins.module_utils._space import is_no_space, no_space
from ansible_collections.osimage.builder.plugins.module_utils._tree import walk_tree


def tar_create_argv(src, exclude, source_date_epoch, members=None):
    """Sorted members, numeric owners, xattrs and ACLs, no atime/ctime, mtimes
    clamped to source_date_epoch: the same tree gives the same bytes."""
    argv = ["tar", "--create", "--file=-", "--directory=" + src, "--sort=name", "--numeric-owner", "--sparse",
            "--xattrs", "--xattrs-include=*", "--acls", "--one-file-system",
            "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"]
    if source_date_epoch is not None:
        argv += ["--mtime=@%d" % source_date_epoch, "--clamp-mtime"]
    for pattern in exclude:
        argv.append("--exclude=" + pattern)
    argv += members if members else ["."]
    return argv


def stream_pack(runner, tar_argv, comp_argv, out_path):
    """Run tar | compressor through the runner, hash the stream and write it
    to out_path (None: hash only). Returns (sha256, size)."""
    argvs = [tar_argv] + ([comp_argv] if comp_argv else [])
    h = hashlib.sha256()
    size = 0
    # tar exits 1 when a file changed while it was read; a root must be quiet
    # while packed, so that is a failure like any other.
    with runner.stream(argvs, ["pack", "compress"][:len(argvs)]) as stream:
        out = open(out_path, "wb") if out_path else None
        try:
            for block in iter(lambda: stream.read(1024 * 1024), b""):
                h.update(block)
                if out:
                    out.write(block)
                size += len(block)
            if out:
                out.close()
        except OSError as exc:
            if not (out_path and is_no_space(exc)):
                raise
            # A full disk: the pipeline is stopped (the runner kills it as
            # the block ends) and the caller removes the partial file (it is
            # a temporary name); say where and how much.
            error = no_space(exc, out_path, "writing the archive", written=size)
            runner.module.fail_json(msg=str(error), commands=runner.commands, **error.details())
        finally:
            if out and not out.closed:
                try:
                    out.close()
                except OSError:
                    pass  # the write's own error is the one reported
    return h.hexdigest(), size


# Unpacking a tarball that this build did not make (a downloaded OS image,
# an input someone handed over): what may not reach the build host.
SETID_BITS = 0o6000
MAX_REPORTED = 20


def _parts(name):
    return [c for c in name.split("/") if c not in ("", ".")]


def untrusted_member_problems(members):
    """Check the members of an untrusted tarball (TarInfo-like objects with
    name, type, mode and linkname). Returns (problems, devices, setid):
    problems are reasons to refuse the tarball (absolute names, `..`, hard
    links out of the tree, members written through a symlink of the same
    tarball), devices the device nodes to leave out, setid the members whose
    setuid/setgid bits are to be dropped."""
    problems, devices, setid = [], [], []
    symlinks = set()
    for m in members:
        name = m.name
        parts = _parts(name)
        if name.startswith("/") or ".." in parts:
            problems.append("member %r escapes the root (absolute path or ..)" % name)
            continue
        if m.type == tarfile.LNKTYPE and (m.linkname.startswith("/") or ".." in _parts(m.linkname)):
            problems.append("hard link %r -> %r points out of the root" % (name, m.linkname))
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in symlinks:
                problems.append("member %r is written through the symlink %r of the same tarball"
                                % (name, "/".join(parts[:i])))
                break
        if m.type == tarfile.SYMTYPE:
            symlinks.add("/".join(parts))
        elif m.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            devices.append(name)
        elif m.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.CONTTYPE) \
                and m.mode & SETID_BITS:
            setid.append(name)
    return problems, devices, setid


def read_members(path, runner=None):
    """The members (TarInfo, no data) of a tarball compressed with gzip, xz,
    bzip2 or zstd, or plain; streamed, so a large image is read once."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x28\xb5\x2f\xfd":
        # The zstd program, through the runner like every command (a corrupt
        # file fails naming zstd and its stderr).
        if runner is None:
            raise ValueError("%s is zstd-compressed: reading it runs the zstd program, pass a runner" % path)
        with runner.stream([["zstd", "-dc", path]], ["decompress %s" % path]) as stream:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tar:
                    members = list(tar)
            except tarfile.TarError as exc:
                members = exc  # a failure of zstd itself is the one reported, when the stream ends
            # Read to the end, so that zstd exits on its own.
            for _block in iter(lambda: stream.read(1024 * 1024), b""):
                pass
        if isinstance(members, tarfile.TarError):
            raise members
        return members
    with tarfile.open(path, mode="r|*") as tar:
        return list(tar)


def make_unprivileged(top):
    """After unpacking an untrusted tarball into `top` (a directory only
    root can enter): remove device nodes and clear setuid/setgid bits, never
    following a symlink. Returns (devices removed, setid dropped), paths
    relative to top, sorted."""
    devices, setid = [], []
    for rel, full, st in walk_tree(top):
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            os.unlink(full)
            devices.append(rel)
        elif not stat.S_ISLNK(st.st_mode) and st.st_mode & SETID_BITS:
            os.chmod(full, stat.S_IMODE(st.st_mode) & ~SETID_BITS)
            setid.append(rel)
    return devices, setid


def summary(names):
    """At most MAX_REPORTED names, then how many more."""
    names = list(names)
    more = len(names) - MAX_REPORTED
    return ", ".join(names[:MAX_REPORTED]) + (" and %d more" % more if more > 0 else "")

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reproducible tarballs: GNU tar arguments and a streamed, hashed
tar | compressor pipeline, shared by rootfs_archive and stemcell_package."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess

COMPRESSORS = {"gzip": (["pigz", "-n", "-6"], ["gzip", "-n", "-6"]),
               "xz": (["xz", "-T0", "-6"],), "zstd": (["zstd", "-q", "-T0", "-19"],), "none": ()}


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


def pick_compressor(module, compression):
    for argv in COMPRESSORS[compression]:
        if module.get_bin_path(argv[0]):
            return argv
    if compression != "none":
        module.fail_json(msg="compression=%s needs %s on the build host"
                             % (compression, " or ".join(a[0] for a in COMPRESSORS[compression])))
    return None


def stream_pack(runner, tar_argv, comp_argv, out_path):
    """Run tar | compressor, hash the stream and write it to out_path (None:
    hash only). Returns (sha256, size)."""
    runner.commands.append(shlex.join(tar_argv) + (" | " + shlex.join(comp_argv) if comp_argv else ""))
    env = dict(os.environ, LC_ALL="C")
    tar = subprocess.Popen(tar_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    comp = None
    stream = tar.stdout
    if comp_argv:
        comp = subprocess.Popen(comp_argv, stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        tar.stdout.close()
        stream = comp.stdout
    h = hashlib.sha256()
    size = 0
    out = open(out_path, "wb") if out_path else None
    try:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            h.update(block)
            size += len(block)
            if out:
                out.write(block)
    finally:
        if out:
            out.close()
    tar_err = tar.stderr.read().decode(errors="replace")
    tar_rc = tar.wait()
    if comp:
        comp_err = comp.stderr.read().decode(errors="replace")
        if comp.wait() != 0:
            runner.fail("compress", comp_argv, comp.returncode, "", comp_err)
    # tar exits 1 when a file changed while it was read; a root must be quiet while packed.
    if tar_rc != 0:
        runner.fail("pack", tar_argv, tar_rc, "", tar_err)
    return h.hexdigest(), size

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deterministic newc ("070701") cpio writer, the format the kernel
unpacks as an initramfs: entries sorted by path, owner 0:0, mtimes clamped
to source_date_epoch, inode numbers assigned in order, hard links kept as
links (data written once, with the last entry, as the kernel expects)."""

from __future__ import annotations

import os
import stat

from ansible_collections.osimage.builder.plugins.module_utils._tree import walk_tree

TRAILER = "TRAILER!!!"


def _pad4(n):
    return (4 - n % 4) % 4


def header(ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, name):
    name_b = name.encode() + b"\0"
    fields = (ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
              len(name_b), 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    return head + name_b + b"\0" * _pad4(len(head) + len(name_b))


def entries(root, extra_nodes=()):
    """(archive path, lstat or a synthetic node) for every entry under root,
    sorted by path; parents come before children. extra_nodes are
    (path, 'c'|'b', major, minor, mode) device nodes added without needing
    them in the source directory."""
    found = {rel: ("fs", full, st) for rel, full, st in walk_tree(root)}
    for path, kind, major, minor, mode in extra_nodes:
        rel = path.strip("/")
        parts = rel.split("/")
        for i in range(1, len(parts)):
            found.setdefault("/".join(parts[:i]), ("dir", None, None))
        fmt = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        found[rel] = ("node", None, (fmt | mode, major, minor))
    return sorted(found.items())


def write_newc(out, root, source_date_epoch=0, extra_nodes=()):
    """Write the archive of `root` to the binary file object `out`."""
    items = entries(root, extra_nodes)
    inodes, links = {}, {}
    for rel, (kind, _full, st) in items:
        if kind == "fs" and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            links.setdefault((st.st_dev, st.st_ino), []).append(rel)
    next_ino = 1
    for rel, (kind, full, st) in items:
        if kind == "dir":
            mode, size, data, rmaj, rmin, nlink, key = stat.S_IFDIR | 0o755, 0, b"", 0, 0, 2, None
        elif kind == "node":
            mode, rmaj, rmin = st
            size, data, nlink, key = 0, b"", 1, None
        else:
            mode, rmaj, rmin, key = st.st_mode, 0, 0, None
            nlink = 2 if stat.S_ISDIR(st.st_mode) else 1
            data = b""
            if stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                group = links.get(key)
                nlink = len(group) if group else 1
                # The data of a hard-linked file goes with its last name only.
                if not group or group[-1] == rel:
                    with open(full, "rb") as f:
                        data = f.read()
            elif stat.S_ISLNK(st.st_mode):
                data = os.readlink(full).encode()
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                rmaj, rmin = os.major(st.st_rdev), os.minor(st.st_rdev)
            size = len(data)
        mtime = source_date_epoch if kind != "fs" else min(int(st.st_mtime), source_date_epoch)
        if key is not None and key in inodes:
            ino = inodes[key]
        else:
            ino = next_ino
            next_ino += 1
            if key is not None:
                inodes[key] = ino
        out.write(header(ino, mode, 0, 0, nlink, mtime, size, 0, 0, rmaj, rmin, rel))
        out.write(data + b"\0" * _pad4(size))
    out.write(header(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, TRAILER))


def read_newc(data):
    """[(name, mode, size, uid, gid, mtime)] of a newc archive (for tests and checks)."""
    pos, found = 0, []
    while True:
        if data[pos:pos + 6] != b"070701":
            raise ValueError("not a newc cpio archive at offset %d" % pos)
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += _pad4(110 + namesize)
        if name == TRAILER:
            return found
        found.append((name, f[1], filesize, f[2], f[3], f[5]))
        pos += filesize + _pad4(filesize)

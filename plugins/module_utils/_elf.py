# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ELF library closure of binaries in an image root, as KurmaOS copies it
into its ACIs and initrd (kurmaos init-rapid.conf: run the binary with
LD_TRACE_LOADED_OBJECTS=1 and copy what the glibc loader prints). Pure
functions: reading an ELF's program headers, parsing the loader's trace, and
resolving a path inside a root the way chroot would."""

from __future__ import annotations

import os
import re
import struct

PT_DYNAMIC = 2
PT_INTERP = 3


class ElfError(ValueError):
    pass


def elf_info(path):
    """(is_elf, interpreter or None, dynamic) for a file; a script or data
    file is (False, None, False). Only 64- and 32-bit little/big endian
    program headers are read, nothing is executed."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 52 or head[:4] != b"\x7fELF":
            return False, None, False
        bits = head[4]
        endian = "<" if head[5] == 1 else ">"
        if bits == 2:
            phoff, = struct.unpack(endian + "Q", head[32:40])
            phentsize, phnum = struct.unpack(endian + "HH", head[54:58])
        else:
            phoff, = struct.unpack(endian + "I", head[28:32])
            phentsize, phnum = struct.unpack(endian + "HH", head[42:46])
        interp, dynamic = None, False
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ph = f.read(phentsize)
            p_type, = struct.unpack(endian + "I", ph[:4])
            if p_type == PT_DYNAMIC:
                dynamic = True
            elif p_type == PT_INTERP:
                if bits == 2:
                    offset, = struct.unpack(endian + "Q", ph[8:16])
                    size, = struct.unpack(endian + "Q", ph[32:40])
                else:
                    offset, = struct.unpack(endian + "I", ph[4:8])
                    size, = struct.unpack(endian + "I", ph[16:20])
                f.seek(offset)
                interp = f.read(size).rstrip(b"\0").decode()
        return True, interp, dynamic


_ADDR = re.compile(r"\s*\(0x[0-9a-fA-F]+\)\s*$")


def parse_trace(text):
    """The libraries the glibc loader lists under LD_TRACE_LOADED_OBJECTS=1:
    [(name, path)] in its order, the vDSO left out (kurmaos: drop
    linux-vdso.so.1 and lines not starting with a tab, strip through '=> ' and
    the ' (0x...)'). A library the loader could not find raises ElfError
    naming it."""
    libs, missing = [], []
    for line in text.splitlines():
        if not line.startswith("\t"):
            continue
        line = _ADDR.sub("", line.strip())
        if "=>" in line:
            name, _arrow, path = (s.strip() for s in line.partition("=>"))
            if path == "not found" or not path:
                missing.append(name)
                continue
        else:
            name, path = os.path.basename(line), line
        if name.startswith("linux-vdso.so") or name.startswith("linux-gate.so") or not path.startswith("/"):
            continue
        libs.append((name, path))
    if missing:
        raise ElfError("not found: " + ", ".join(missing))
    return libs


def resolve_in_root(root, path, limit=40):
    """The host path of `path` inside `root`, every symlink followed as
    chroot would (absolute targets stay in the root, .. stops at it)."""
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p]
    done = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        here = os.path.join(root, *done, part)
        if os.path.islink(here):
            hops += 1
            if hops > limit:
                raise ElfError("too many symlinks resolving %s in %s" % (path, root))
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


# The NSS modules glibc dlopens (nsswitch.conf's "files dns"): no binary
# names them in DT_NEEDED, so kurmaos copied them by hand.
def nss_library(service):
    if not re.match(r"^[a-z0-9_]+\Z", service):
        raise ElfError("%r is not an NSS service name (files, dns, ...)" % service)
    return "libnss_%s.so.2" % service


# Where the Debian and Gentoo loaders look without ld.so.cache, in order.
LIB_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]


def find_library(root, name, lib_dirs=None):
    """The path inside `root` of a library by file name, or None."""
    for d in lib_dirs or LIB_DIRS:
        candidate = resolve_in_root(root, d + "/" + name)
        if os.path.isfile(candidate):
            return d + "/" + name
    return None

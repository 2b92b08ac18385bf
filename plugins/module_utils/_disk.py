# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk image planning as pure functions: sizes, the partition layout and
its parted commands, fstab and grub.cfg, and a cheap fingerprint of an image
root (names, sizes, modes, owners, mtimes) for the inputs stamp."""

from __future__ import annotations

import hashlib
import re
import stat

from ansible_collections.osimage.builder.plugins.module_utils._tree import walk_tree

MIB = 1024 * 1024
UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": MIB, "MB": MIB, "MIB": MIB,
         "G": 1024 * MIB, "GB": 1024 * MIB, "GIB": 1024 * MIB, "T": 1024 * 1024 * MIB, "TIB": 1024 * 1024 * MIB}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_size(text):
    """Bytes in '5G', '5120M', '512MiB', '1073741824' (binary units)."""
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$", str(text))
    if not m or m.group(2).upper() not in UNITS:
        raise ValueError("size %r is not a size such as 5G or 5120M" % (text,))
    return int(float(m.group(1)) * UNITS[m.group(2).upper()])


def tree_usage(root):
    """(bytes rounded up to 4 KiB blocks, inode count) of a tree, counting
    hard-linked files once."""
    total, inodes, seen = 0, 0, set()
    for _rel, _full, st in walk_tree(root):
        inodes += 1
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        total += (st.st_size + 4095) // 4096 * 4096
    return total, inodes


def required_root_bytes(content_bytes, inodes):
    """Smallest ext4/xfs filesystem that holds the content: the data, 256
    bytes of inode table per inode, the journal and reserved space (5%), and
    headroom for metadata (10%)."""
    need = content_bytes + inodes * 256 + 64 * MIB
    return int(need * 1.10 / 0.95)


def min_disk_mb(content_bytes, inodes=0, partition_table="msdos", bootloader="grub-i386-pc"):
    """The smallest disk (MiB) whose root partition holds the content: the
    root filesystem's need plus the partitions before it and the MiB a GPT's
    backup header (or the rounding) takes after it. disk_image refuses less;
    the roles' plans reckon with it before the first stage."""
    parts = layout(partition_table, bootloader, 0)
    return -(-required_root_bytes(content_bytes, inodes) // MIB) + parts[-1]["start_mib"] + 2


def layout(partition_table, bootloader, size_bytes, efi_mb=64):
    """Partitions as dicts {name, start_mib, end_mib, role}; the root
    partition (end_mib None) runs to the end of the disk, and its size_bytes
    leaves 1 MiB for a GPT's backup header."""
    parts, start = [], 1
    if partition_table == "gpt" and bootloader == "grub-i386-pc":
        parts.append({"name": "bios", "start_mib": start, "end_mib": start + 1, "role": "bios_grub"})
        start += 1
    if bootloader == "grub-x86_64-efi":
        parts.append({"name": "efi", "start_mib": start, "end_mib": start + efi_mb, "role": "esp"})
        start += efi_mb
    parts.append({"name": "root", "start_mib": start, "end_mib": None, "role": "root",
                  "size_bytes": size_bytes - (start + 1) * MIB})
    return parts


def parted_script(partition_table, parts):
    """parted -s arguments that create the label and the partitions."""
    args = ["mklabel", partition_table]
    for i, p in enumerate(parts, start=1):
        fs = {"esp": "fat32", "bios_grub": "", "root": "ext4"}[p["role"]]
        end = "100%" if p["end_mib"] is None else "%dMiB" % p["end_mib"]
        name = p["name"] if partition_table == "gpt" else "primary"
        args += ["mkpart", name] + ([fs] if fs else []) + ["%dMiB" % p["start_mib"], end]
        if p["role"] == "bios_grub":
            args += ["set", str(i), "bios_grub", "on"]
        elif p["role"] == "esp":
            args += ["set", str(i), "esp", "on"]
        elif p["role"] == "root" and partition_table == "msdos":
            args += ["set", str(i), "boot", "on"]
    return args


def fstab(root_uuid, fs_type, efi_uuid=None):
    lines = ["# <file system> <mount point> <type> <options> <dump> <pass>",
             "UUID=%s / %s defaults 0 1" % (root_uuid, fs_type)]
    if efi_uuid:
        lines.append("UUID=%s /boot/efi vfat umask=0077 0 1" % efi_uuid)
    return "\n".join(lines) + "\n"


def grub_cfg(root_uuid, kernel, initrd, cmdline, title, superuser=None, password_pbkdf2=None):
    """grub.cfg booting one kernel on the serial console and the screen.
    With a superuser, the entry boots without a password (--unrestricted)
    but editing it or the command line needs the password."""
    out = ["# Written by osimage.builder.disk_image",
           "set default=0", "set timeout=1",
           "serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1",
           "terminal_input serial console", "terminal_output serial console",
           "insmod part_msdos", "insmod part_gpt", "insmod ext2", "insmod xfs"]
    if superuser:
        out += ['set superusers="%s"' % superuser, "password_pbkdf2 %s %s" % (superuser, password_pbkdf2)]
    out += ["menuentry '%s' %s{" % (title, "--unrestricted " if superuser else ""),
            "  search --no-floppy --fs-uuid --set=root %s" % root_uuid,
            "  linux %s root=UUID=%s ro %s" % (kernel, root_uuid, cmdline),
            "  initrd %s" % initrd,
            "}"]
    return "\n".join(out) + "\n"


def newest_kernel(boot_dir_names):
    """('vmlinuz-X', 'initrd.img-X') of the highest kernel version present."""
    def key(name):
        return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name[len("vmlinuz-"):])]
    kernels = sorted((n for n in boot_dir_names if n.startswith("vmlinuz-")), key=key)
    for k in reversed(kernels):
        initrd = "initrd.img-" + k[len("vmlinuz-"):]
        if initrd in boot_dir_names:
            return k, initrd
    return None, None


def tree_fingerprint(root):
    """sha256 over each entry's relative path, type, mode, owner, size and
    mtime: changes whenever the image root does, without reading contents."""
    h = hashlib.sha256()
    for rel, _full, st in walk_tree(root):
        h.update(("%s\0%o\0%d:%d\0%d\0%d\n" % (rel, st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                               st.st_mtime_ns)).encode())
    return h.hexdigest()

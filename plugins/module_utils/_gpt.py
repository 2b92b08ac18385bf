# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A GPT disk layout computed the way CoreOS' (and kurmaos') disk_util does
it from disk_layout.json: the first partition starts after the primary GPT
(block 34), every start is aligned up to part_alignment blocks, the backup
GPT's 34 blocks follow the last partition, and the disk is aligned up to
disk_alignment blocks. Pure functions, unit-tested against the kurmaos
figures."""

from __future__ import annotations

import re

# cgpt's type names -> GPT type GUIDs (CoreOS' disk_util table; kurmaos' seed
# layout used efi, bios, data and rootfs).
TYPES = {
    "efi": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "bios": "21686148-6449-6E6F-744E-656564454649",
    "data": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    "rootfs": "3CB8E202-3B7E-47DD-8A3C-7FF2A13CFCEC",
    "coreos-resize": "3884DD41-8582-4404-B9A8-E9B84F2DF50E",
}
GUID_RE = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\Z")
LABEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}\Z")
FILESYSTEMS = ("vfat", "ext2", "ext4", "none")


class LayoutError(ValueError):
    pass


def align_up(value, alignment):
    return -(-value // alignment) * alignment


def type_guid(name):
    if name in TYPES:
        return TYPES[name]
    if GUID_RE.match(name or ""):
        return name.upper()
    raise LayoutError("type %r is neither a GUID nor one of %s" % (name, ", ".join(sorted(TYPES))))


def plan(partitions, part_alignment=4096, disk_alignment=258048, first_block=34, gpt_blocks=34, disk_blocks=None):
    """[(number, label, type guid, start, blocks, fs, partition)], total
    blocks. A partition without blocks (the last one only) takes the rest of
    a given disk_blocks. Raises LayoutError naming the partition."""
    out, start, labels = [], first_block, set()
    for i, part in enumerate(partitions):
        label = part.get("label")
        if not isinstance(label, str) or not LABEL_RE.match(label):
            raise LayoutError("partitions[%d].label %r must be 1-36 letters, digits, _ or -" % (i, label))
        if label in labels:
            raise LayoutError("partitions[%d].label %s is used twice" % (i, label))
        labels.add(label)
        fs = part.get("fs", "none")
        if fs not in FILESYSTEMS:
            raise LayoutError("partitions[%d].fs %r is not one of %s" % (i, fs, ", ".join(FILESYSTEMS)))
        guid = type_guid(part.get("type", "data"))
        start = align_up(start, part_alignment)
        blocks = part.get("blocks")
        if blocks is None:
            if i != len(partitions) - 1 or disk_blocks is None:
                raise LayoutError("partitions[%d] (%s) has no blocks; only the last one may fill a given disk size"
                                  % (i, label))
            blocks = disk_blocks - gpt_blocks - start
            if blocks <= 0:
                raise LayoutError("partitions[%d] (%s) does not fit: the disk has %d blocks, the partition would "
                                  "start at %d" % (i, label, disk_blocks, start))
        if not isinstance(blocks, int) or blocks <= 0:
            raise LayoutError("partitions[%d].blocks must be a positive number of blocks" % i)
        out.append((i + 1, label, guid, start, blocks, fs, part))
        start += blocks
    total = align_up(start + gpt_blocks, disk_alignment)
    if disk_blocks is not None:
        if start + gpt_blocks > disk_blocks:
            raise LayoutError("the partitions need %d blocks with the backup GPT, the disk has %d"
                              % (start + gpt_blocks, disk_blocks))
        total = disk_blocks
    return out, total


def sfdisk_script(layout):
    """sfdisk's input for the layout (sectors of 512 bytes)."""
    lines = ["label: gpt", "first-lba: 34", "sector-size: 512"]
    for number, label, guid, start, blocks, _fs, part in layout:
        attrs = ', attrs="LegacyBIOSBootable"' if part.get("legacy_boot") else ""
        lines.append("%d : start=%d, size=%d, type=%s, name=%s%s" % (number, start, blocks, guid, label, attrs))
    return "\n".join(lines) + "\n"

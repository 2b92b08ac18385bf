# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The byte layout of a Kata Containers guest image (container.img), as pure
functions: the NVDIMM DAX header (Kata osbuilder image_builder.sh with
nsdax.gpl.c, here in Python so that no C helper is compiled at build time),
the MBR partition tables, the image size rules, and the dm-verity root hash line
and kernel parameters.

DAX header layout (image_builder.sh + nsdax.gpl.c):
  0..511        MBR #1, partition 1 from 3 MiB to the end of the file
  4096..8191    struct nd_pfn_sb (dataoff 2 MiB, mode PFN_MODE_RAM, align 2 MiB)
  2 MiB         MBR #2 of the rootfs disk, partition 1 at 1 MiB (3 MiB absolute)
  3 MiB         the filesystem
A DAX-capable guest reads the namespace from the data offset (2 MiB) and
finds MBR #2 (/dev/pmem0p1); any other reader sees MBR #1, the same bytes."""

from __future__ import annotations

import struct

MIB = 1024 * 1024
SECTOR = 512
# Linux memory hotplug works in sections of 128 MiB (PAGE_SECTION_MASK);
# Clear Containers and Kata round the image up to that.
ALIGNMENT_MB = 128
DAX_HEADER_MB = 2
PARTITION_START_MB = 1

# include/linux/pfn.h / drivers/nvdimm/pfn.h
PFN_SIG = b"NVDIMM_PFN_INFO\0"
PFN_SB_SIZE = 4096
PFN_SB_OFFSET = 4096
PFN_MODE_RAM = 1
PFN_VERSION_MAJOR = 0
PFN_VERSION_MINOR = 2
# struct nd_pfn_sb: signature[16], uuid[16], parent_uuid[16], flags u32,
# version_major u16, version_minor u16, dataoff u64, npfns u64, mode u32,
# start_pad u32, end_trunc u32, align u32; padding to 4088; checksum u64.
_PFN_HEAD = struct.Struct("<16s16s16sIHHQQIIII")
PFN_CHECKSUM_OFFSET = 4088

MBR_TYPE_LINUX = 0x83


def fletcher64(block):
    """nd_fletcher64 (drivers/nvdimm/core.c): over little-endian u32 words,
    lo += word, hi += lo, both modulo 2^32; result hi << 32 | lo."""
    if len(block) % 4:
        raise ValueError("fletcher64 needs a multiple of 4 bytes, got %d" % len(block))
    lo = hi = 0
    for (word,) in struct.iter_unpack("<I", block):
        lo = (lo + word) & 0xFFFFFFFF
        hi = (hi + lo) & 0xFFFFFFFF
    return hi << 32 | lo


def nd_pfn_sb(dataoff=DAX_HEADER_MB * MIB, align=DAX_HEADER_MB * MIB):
    """The 4096-byte nd_pfn_sb nsdax.gpl.c writes: zero uuids, mode RAM,
    version 0.2, the data offset and alignment, and the checksum computed with
    the checksum field zeroed."""
    head = _PFN_HEAD.pack(PFN_SIG, b"\0" * 16, b"\0" * 16, 0, PFN_VERSION_MAJOR, PFN_VERSION_MINOR,
                          dataoff, 0, PFN_MODE_RAM, 0, 0, align)
    block = head + b"\0" * (PFN_SB_SIZE - len(head))
    checksum = fletcher64(block)
    return block[:PFN_CHECKSUM_OFFSET] + struct.pack("<Q", checksum)


def parse_nd_pfn_sb(block):
    """The fields of an nd_pfn_sb, with `checksum_ok`; for tests and for
    checking an image."""
    if len(block) != PFN_SB_SIZE:
        raise ValueError("an nd_pfn_sb is %d bytes, got %d" % (PFN_SB_SIZE, len(block)))
    names = ("signature", "uuid", "parent_uuid", "flags", "version_major", "version_minor", "dataoff", "npfns",
             "mode", "start_pad", "end_trunc", "align")
    fields = dict(zip(names, _PFN_HEAD.unpack_from(block)))
    (fields["checksum"],) = struct.unpack_from("<Q", block, PFN_CHECKSUM_OFFSET)
    zeroed = block[:PFN_CHECKSUM_OFFSET] + b"\0" * 8
    fields["checksum_ok"] = fletcher64(zeroed) == fields["checksum"]
    return fields


def _chs(lba, heads=255, sectors=63):
    """The CHS triple of an MBR entry (clamped to 1023/254/63 beyond its range,
    as fdisk and parted write it); Linux reads only the LBA fields."""
    cyl, rest = divmod(lba, heads * sectors)
    head, sec = divmod(rest, sectors)
    if cyl > 1023:
        cyl, head, sec = 1023, heads - 1, sectors - 1
    sec += 1
    return bytes([head, ((cyl >> 2) & 0xC0) | (sec & 0x3F), cyl & 0xFF])


def mbr(partitions, disk_id=0, boot_code=b""):
    """A 512-byte MBR: partitions as (start_lba, sectors, type[, bootable]),
    at most four; a fixed disk id (upstream's parted picks a random one, which
    makes images differ from build to build)."""
    if len(partitions) > 4:
        raise ValueError("an MBR holds at most 4 primary partitions")
    sector = bytearray(SECTOR)
    sector[:len(boot_code)] = boot_code[:440]
    struct.pack_into("<I", sector, 440, disk_id & 0xFFFFFFFF)
    for i, part in enumerate(partitions):
        start, count, kind = part[0], part[1], part[2]
        boot = 0x80 if len(part) > 3 and part[3] else 0
        if start + count > 0xFFFFFFFF:
            raise ValueError("partition %d ends beyond what an MBR can address (2 TiB)" % (i + 1))
        entry = (bytes([boot]) + _chs(start) + bytes([kind]) + _chs(start + count - 1)
                 + struct.pack("<II", start, count))
        sector[446 + 16 * i:446 + 16 * (i + 1)] = entry
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def parse_mbr(sector):
    """The partitions of an MBR as dicts (start, sectors, end, type, boot), and its disk id."""
    if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
        raise ValueError("no MBR signature (55 aa) at bytes 510..511")
    parts = []
    for i in range(4):
        e = sector[446 + 16 * i:446 + 16 * (i + 1)]
        start, count = struct.unpack_from("<II", e, 8)
        if e[4] == 0 or count == 0:
            continue
        parts.append({"number": i + 1, "start": start, "sectors": count, "end": start + count - 1, "type": e[4],
                      "boot": e[0] == 0x80})
    return {"disk_id": struct.unpack_from("<I", sector, 440)[0], "partitions": parts}


def round_up(value_mb, alignment_mb=ALIGNMENT_MB):
    return -(-int(value_mb) // alignment_mb) * alignment_mb


def hash_start_mb(disk_mb):
    """Where the dm-verity hash partition starts (image_builder.sh: 99 % of
    the rootfs disk, in whole MiB)."""
    return disk_mb * 99 // 100


def partitions_mb(disk_mb, verity):
    """(start, end) in MiB, end exclusive, of the partitions of a rootfs disk
    of disk_mb MiB: one from 1 MiB to the end, or data + hash with verity."""
    if verity:
        split = hash_start_mb(disk_mb)
        return [(PARTITION_START_MB, split), (split, disk_mb)]
    return [(PARTITION_START_MB, disk_mb)]


def disk_mbr(disk_mb, verity, disk_id, shift_mb=0, total_mb=None):
    """The MBR of a rootfs disk of disk_mb MiB, its partitions moved by
    shift_mb (the DAX header's MBR #1: shift 2 MiB over a file of total_mb)."""
    parts = []
    spm = MIB // SECTOR
    layout = partitions_mb(disk_mb, verity)
    for i, (start, end) in enumerate(layout):
        first = (start + shift_mb) * spm
        last = (end + shift_mb) * spm - 1
        if i == len(layout) - 1 and total_mb is not None:
            last = total_mb * spm - 1
        parts.append((first, last - first + 1, MBR_TYPE_LINUX, verity and i == 0))
    return mbr(parts, disk_id)


def dax_header(total_mb, disk_mb, verity, disk_id):
    """The first 2 MiB of an image with a DAX header: MBR #1 whose
    partitions start 2 MiB later than the rootfs disk's (p1 at 3 MiB) and end
    at the end of the file, then the nd_pfn_sb at 4 KiB, the rest zero."""
    header = bytearray(DAX_HEADER_MB * MIB)
    header[:SECTOR] = disk_mbr(disk_mb, verity, disk_id, shift_mb=DAX_HEADER_MB, total_mb=total_mb)
    header[PFN_SB_OFFSET:PFN_SB_OFFSET + PFN_SB_SIZE] = nd_pfn_sb()
    return bytes(header)


def image_size_mb(fs_type, needed_fs_mb, free_mb, dax, verity, given_mb=None, alignment_mb=ALIGNMENT_MB):
    """(file MiB, rootfs disk MiB, notice or None) of container.img.

    needed_fs_mb is the smallest filesystem the rootfs fits in (found by
    formatting). ext4/xfs: a given size is rounded up to the alignment (with
    a notice, as Clear Containers does); a computed one is the filesystem plus
    the 1 MiB before the partition, the free space, the DAX header, rounded up
    likewise. erofs: no rounding (image_builder.sh), the filesystem plus
    2 MiB. With verity the hash partition takes the last 1 %.
    Raises ValueError when a given size is too small or not positive."""
    notice = None
    dax_mb = DAX_HEADER_MB if dax else 0
    need_disk = needed_fs_mb + PARTITION_START_MB + free_mb
    if verity:
        need_disk = need_disk * 100 // 99 + 2
    if given_mb is not None:
        if given_mb <= 0:
            raise ValueError("must be a positive number of MiB, got %s" % given_mb)
        total = given_mb
        if fs_type != "erofs" and total % alignment_mb:
            total = round_up(total, alignment_mb)
            notice = "size %d MiB is not a multiple of %d MiB (the memory hotplug section); rounded up to %d MiB" % (
                given_mb, alignment_mb, total)
        if total - dax_mb < need_disk:
            raise ValueError("%d MiB is smaller than the %d MiB the rootfs needs (%d MiB filesystem + %d MiB free"
                             " space + partition table%s%s)" % (
                                 total, need_disk + dax_mb, needed_fs_mb, free_mb,
                                 " + DAX header" if dax else "", " + verity hash" if verity else ""))
        return total, total - dax_mb, notice
    if fs_type == "erofs":
        total = need_disk + 1 + dax_mb
    else:
        total = round_up(need_disk + dax_mb, alignment_mb)
    return total, total - dax_mb, notice


# veritysetup format prints "Root hash:      <hex>" and friends.
_VERITY_KEYS = {"Root hash": "root_hash", "Salt": "salt", "Data blocks": "data_blocks",
                "Data block size": "data_block_size", "Hash block size": "hash_block_size"}


def parse_veritysetup(text):
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in _VERITY_KEYS:
            info[_VERITY_KEYS[key.strip()]] = value.strip()
    missing = sorted(set(_VERITY_KEYS.values()) - set(info))
    if missing:
        raise ValueError("veritysetup printed no %s" % ", ".join(missing))
    for key in ("data_blocks", "data_block_size", "hash_block_size"):
        info[key] = int(info[key])
    return info


def root_hash_line(info):
    """The root_hash.txt line (image_builder.sh), also the runtime's
    kernel_verity_params value."""
    return "root_hash=%s,salt=%s,data_blocks=%d,data_block_size=%d,hash_block_size=%d" % (
        info["root_hash"], info["salt"], info["data_blocks"], info["data_block_size"], info["hash_block_size"])


def root_flags(fs_type, dax):
    """rootflags the runtime gives (GetKernelRootParams)."""
    if fs_type == "ext4":
        return ("dax," if dax else "") + "data=ordered,errors=remount-ro ro"
    return "dax ro" if dax else "ro"


def verity_kernel_params(info, fs_type, nvdimm):
    """The kernel parameters the Kata runtime makes of kernel_verity_params
    (src/runtime/virtcontainers/hypervisor.go)."""
    dev = "/dev/pmem0p" if nvdimm else "/dev/vda"
    sectors = info["data_blocks"] * info["data_block_size"] // 512
    table = "dm-verity,,,ro,0 %d verity 1 %s1 %s2 %d %d %d 0 sha256 %s %s" % (
        sectors, dev, dev, info["data_block_size"], info["hash_block_size"], info["data_blocks"],
        info["root_hash"], info["salt"])
    return 'dm-mod.create="%s" root=/dev/dm-0 rootflags=%s rootfstype=%s' % (
        table, "data=ordered,errors=remount-ro ro" if fs_type == "ext4" else "ro", fs_type)

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_disk
short_description: The disk image of a VM-isolated container guest (Kata/Clear Containers container.img)
description:
  - Writes the image a VM-based container runtime boots, as Kata Containers' osbuilder C(image_builder.sh) (and
    Clear Containers' C(image_builder.sh)) lays it out, from a root directory, without loop devices or mounts.
  - One partition on an MBR (Kata, the default) or GPT (Clear Containers, partition named C(ext4) from 1 MiB to
    1 MiB before the end); the filesystem ext4 (filled with C(mkfs.ext4 -d), C(tune2fs -m 3), directories
    optimised with C(e2fsck -D)), xfs (reflink off, filled from a prototype file) or erofs (lz4hc,
    C(-Enoinline_data)), built as a file and copied into the partition.
  - The size is O(size_mb) (ext4/xfs rounded up to a multiple of 128 MiB, with a notice) or computed as the
    smallest filesystem the root fits in, found by formatting (ext4, xfs) or by building it (erofs), plus
    O(free_space_mb), the partition table and the DAX header, rounded up like a given size (erofs is not rounded).
  - The optional DAX header (O(dax_header), MBR only) is written by the module itself, byte for byte as
    nsdax.gpl.c does it, so nothing is compiled at build time; a second MBR at 2 MiB describes the same partition
    for a guest that reads the NVDIMM namespace from its 2 MiB data offset (C(/dev/pmem0p1)).
  - Optional dm-verity (O(verity)) - C(veritysetup format --no-superblock) of the data partition into a hash
    partition in the last 1 % - with the C(root_hash.txt) line and the kernel parameters the runtime would add.
  - Keyed on its inputs (its record V(guest_disk) of the stamp C(<dest>.stamp.json)), so the same root and options
    do nothing; the image is written to a
    temporary file beside O(dest) and renamed into place when complete.
version_added: 0.2.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  src:
    description: The guest's root directory.
    type: path
    required: true
  dest:
    description: The image file (C(container.img)).
    type: path
    required: true
  fs_type:
    description: Filesystem of the root partition.
    type: str
    choices: [ext4, xfs, erofs]
    default: ext4
  size_mb:
    description:
      - Size of the image in MiB; ext4 and xfs sizes are rounded up to a multiple of 128 MiB.
      - Omitted, the size is computed. A size the root does not fit in is an error before anything is written.
    type: int
  free_space_mb:
    description: Free space to leave in a computed image (image_builder.sh C(-r)).
    type: int
    default: 0
  partition_table:
    description: V(msdos) as Kata, V(gpt) as Clear Containers.
    type: str
    choices: [msdos, gpt]
    default: msdos
  dax_header:
    description: Write the NVDIMM DAX header (Kata's default; V(false) is SKIP_DAX_HEADER=yes). Needs V(msdos).
    type: bool
    default: true
  verity:
    description: Protect the root partition with dm-verity (MEASURED_ROOTFS=yes). Needs V(msdos).
    type: bool
    default: false
  root_hash_file:
    description: Where the dm-verity root hash line goes (default C(root_hash.txt) beside O(dest)).
    type: path
  block_size:
    description: Filesystem block size (erofs needs 4096).
    type: int
    choices: [1024, 2048, 4096]
    default: 4096
  seed:
    description: Text the disk id, filesystem UUID and verity salt are derived from (reproducible images).
    type: str
    default: osimage.builder guest_disk
  source_date_epoch:
    description: Timestamp of the filesystem's own metadata (ext4, erofs).
    type: int
    default: 1700000000
  force:
    description: Rebuild although the inputs did not change.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Computes the layout from the root's size (not by formatting) and writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: osimage.builder.disk_image
  - module: osimage.builder.boot_test
requirements:
  - sfdisk (Debian package fdisk) for O(partition_table=gpt)
  - mkfs.ext4, tune2fs and e2fsck (Debian package e2fsprogs) for ext4
  - mkfs.xfs (Debian package xfsprogs) for xfs
  - mkfs.erofs (Debian package erofs-utils) for erofs
  - veritysetup (Debian package cryptsetup-bin) for O(verity)
"""

EXAMPLES = r"""
- name: A Kata guest image with a DAX header
  osimage.builder.guest_disk:
    src: /var/tmp/osimage/work/guest_image/rootfs
    dest: /var/tmp/osimage/work/guest_image/container.img

- name: erofs, protected by dm-verity, 512 MiB
  osimage.builder.guest_disk:
    src: /var/tmp/osimage/work/guest_image/rootfs
    dest: /var/tmp/osimage/work/guest_image/container.img
    fs_type: erofs
    verity: true
    size_mb: 512
"""

RETURN = r"""
artifact:
  description: The image as path, size and sha256.
  returned: success and not check mode
  type: dict
  sample:
    path: /var/tmp/osimage/work/guest_image/container.img
    size: 536870912
    sha256: "84983c60f7daadc1cb8698621f802c0d9f9a3c3c295c810748fb048115c186ec"
size_mb:
  description: Size of the image file in MiB.
  returned: always
  type: int
  sample: 512
disk_mb:
  description: Size of the rootfs disk (the image without the DAX header) in MiB.
  returned: always
  type: int
  sample: 510
partitions:
  description: The rootfs disk's partitions as start and end in MiB (end exclusive), relative to the rootfs disk.
  returned: always
  type: list
  elements: dict
  sample: [{start: 1, end: 504}, {start: 504, end: 510}]
notice:
  description: What the size was rounded up from, when it was.
  returned: always
  type: str
  sample: size 1000 MiB is not a multiple of 128 MiB (the memory hotplug section); rounded up to 1024 MiB
rebuild_reason:
  description: Why the image was built; null when up to date.
  returned: always
  type: str
  sample: artifact missing
verity:
  description: With O(verity) - root_hash, salt, data_blocks, data_block_size, hash_block_size, the root_hash.txt
    line (C(kernel_verity_params)), its file, and the kernel parameters for virtio-blk and NVDIMM.
  returned: always; null without O(verity), in check mode and when the image is up to date
  type: dict
  sample:
    root_hash: "ff7c9cf9a5750a192974d6e209944d4ea86ba35a6a29ad94705d86b64fe5cccb"
    salt: "3bd6da99beffe4d921c5feb3f4d94e63dafb74630a98de23fe67b1f541194aeb"
    data_blocks: 128768
    data_block_size: 4096
    hash_block_size: 4096
    line: "root_hash=ff7c9cf9a5750a192974d6e209944d4ea86ba35a6a29ad94705d86b64fe5cccb,\
      salt=3bd6da99beffe4d921c5feb3f4d94e63dafb74630a98de23fe67b1f541194aeb,data_blocks=128768,\
      data_block_size=4096,hash_block_size=4096"
    kernel_verity_params: "root_hash=ff7c9cf9a5750a192974d6e209944d4ea86ba35a6a29ad94705d86b64fe5cccb,\
      salt=3bd6da99beffe4d921c5feb3f4d94e63dafb74630a98de23fe67b1f541194aeb,data_blocks=128768,\
      data_block_size=4096,hash_block_size=4096"
    file: /var/tmp/osimage/work/guest_image/root_hash.txt
    kernel_params_virtio_blk: 'dm-mod.create="dm-verity,,,ro,0 1030144 verity 1 /dev/vda1 /dev/vda2 4096 4096 128768 0
      sha256 ff7c9cf9a5750a192974d6e209944d4ea86ba35a6a29ad94705d86b64fe5cccb
      3bd6da99beffe4d921c5feb3f4d94e63dafb74630a98de23fe67b1f541194aeb" root=/dev/dm-0 rootflags=ro rootfstype=erofs'
    kernel_params_nvdimm: 'dm-mod.create="dm-verity,,,ro,0 1030144 verity 1 /dev/pmem0p1 /dev/pmem0p2 4096 4096 128768
      0 sha256 ff7c9cf9a5750a192974d6e209944d4ea86ba35a6a29ad94705d86b64fe5cccb
      3bd6da99beffe4d921c5feb3f4d94e63dafb74630a98de23fe67b1f541194aeb" root=/dev/dm-0 rootflags=ro rootfstype=erofs'
commands:
  description: Commands run.
  returned: always
  type: list
  elements: str
  sample:
    - "/usr/bin/mkfs.erofs --quiet -zlz4hc -Enoinline_data -T1700000000 -U12fc8032-3001-4e6a-97fb-c99cecf59680
      /var/tmp/osimage/work/guest_image/.container.img.work.h3k9x2pa/root.fs /var/tmp/osimage/work/guest_image/rootfs"
    - "/usr/sbin/veritysetup format --no-superblock --salt
      3bd6da99beffe4d921c5feb3f4d94e63dafb74630a98de23fe67b1f541194aeb
      /var/tmp/osimage/work/guest_image/.container.img.work.h3k9x2pa/root.fs
      /var/tmp/osimage/work/guest_image/.container.img.work.h3k9x2pa/root.hash"
"""

import hashlib
import math
import os
import shutil
import tempfile
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils import _dax as dax
from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    read_stamp,
    rebuild_reason,
    sha256_file,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._disk import tree_fingerprint, tree_usage
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner

MIB = dax.MIB
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
TRIALS = 20
XFS_MIN_MB = 300


def derived_uuid(seed, what):
    return str(uuid.UUID(bytes=hashlib.sha256(("%s\0%s" % (seed, what)).encode()).digest()[:16], version=4))


def proto_mode(st):
    import stat as s
    kinds = {s.S_IFREG: "-", s.S_IFDIR: "d", s.S_IFLNK: "l", s.S_IFBLK: "b", s.S_IFCHR: "c", s.S_IFIFO: "p"}
    kind = kinds.get(s.S_IFMT(st.st_mode))
    if kind is None:
        return None
    return "%s%s%s%03o" % (kind, "u" if st.st_mode & s.S_ISUID else "-", "g" if st.st_mode & s.S_ISGID else "-",
                           st.st_mode & 0o777)


def xfs_protofile(root):
    """mkfs.xfs -p prototype of a tree (xfsprogs 6.1 fills only from one):
    names with blanks cannot be expressed and are an error; hard links become
    copies."""
    lines = ["/dev/null", "0 0"]

    def walk(directory, depth):
        for name in sorted(os.listdir(directory)):
            full = os.path.join(directory, name)
            if any(c.isspace() for c in name):
                raise ValueError("xfs: %s has a blank in its name, which mkfs.xfs -p cannot express" % full)
            st = os.lstat(full)
            mode = proto_mode(st)
            if mode is None:
                continue  # sockets
            pad = " " * depth
            head = "%s%s %s %d %d" % (pad, name, mode, st.st_uid, st.st_gid)
            if mode[0] == "-":
                lines.append("%s %s" % (head, full))
            elif mode[0] == "l":
                lines.append("%s %s" % (head, os.readlink(full)))
            elif mode[0] in "bc":
                lines.append("%s %d %d" % (head, os.major(st.st_rdev), os.minor(st.st_rdev)))
            elif mode[0] == "d":
                lines.append(head)
                walk(full, depth + 1)
                lines.append(pad + "$")
            else:
                lines.append(head)

    st = os.lstat(root)
    lines.append("%s %d %d" % (proto_mode(st), st.st_uid, st.st_gid))
    walk(root, 1)
    lines.append("$")
    return "\n".join(lines) + "\n"


class Builder:
    def __init__(self, module, work):
        self.m = module
        self.p = module.params
        self.run = CommandRunner(module)
        self.work = work

    def make_fs(self, path, size_mb, check=True):
        """Format (and fill) a filesystem file of size_mb MiB; returns rc, stderr."""
        p = self.p
        if os.path.exists(path):
            os.unlink(path)
        with open(path, "wb") as f:
            f.truncate(size_mb * MIB)
        fs_uuid = derived_uuid(p["seed"], "fs")
        if p["fs_type"] == "ext4":
            env = {"E2FSPROGS_FAKE_TIME": str(p["source_date_epoch"])}
            rc, _out, err = self.run.run(
                ["mkfs.ext4", "-q", "-F", "-b", p["block_size"], "-U", fs_uuid, "-E", "hash_seed=" + fs_uuid,
                 "-d", p["src"], path, "%dM" % size_mb], "make and fill the ext4 filesystem", check=check, env=env)
            if rc == 0:
                # image_builder.sh: 3 % reserved blocks; fsck -D optimises the directories.
                self.run.run(["tune2fs", "-m", "3", path], "set the reserved blocks", env=env)
                rc2, out2, err2 = self.run.run(["e2fsck", "-f", "-y", "-D", path], "optimise the directories",
                                               check=False, env=env)
                if rc2 > 1:
                    self.run.fail("optimise the directories", ["e2fsck", "-f", "-y", "-D", path], rc2, out2, err2)
            return rc, err
        if p["fs_type"] == "xfs":
            proto = os.path.join(self.work, "xfs.proto")
            if not os.path.exists(proto):
                try:
                    text = xfs_protofile(p["src"])
                except ValueError as exc:
                    self.m.fail_json(msg="src: %s" % exc)
                with open(proto, "w") as f:
                    f.write(text)
            # Reflink and DAX do not go together (image_builder.sh).
            return self.run.run(["mkfs.xfs", "-q", "-f", "-m", "reflink=0", "-b", "size=%d" % p["block_size"],
                                 "-m", "uuid=" + fs_uuid, "-p", proto, path], "make and fill the xfs filesystem",
                                check=check)[::2]
        raise AssertionError(p["fs_type"])

    def make_erofs(self, path):
        p = self.p
        if os.path.exists(path):
            os.unlink(path)
        self.run.run(["mkfs.erofs", "--quiet", "-zlz4hc", "-Enoinline_data", "-T%d" % p["source_date_epoch"],
                      "-U" + derived_uuid(p["seed"], "fs"), path, p["src"]], "make the erofs filesystem")
        return os.path.getsize(path)

    def smallest_fs(self, path, start_mb):
        """image_builder.sh's trial loop: the first of start+10, start+20, ...
        MiB the root fits in."""
        for i in range(1, TRIALS + 1):
            size = start_mb + 10 * i
            rc, _err = self.make_fs(path, size, check=False)
            if rc == 0:
                return size
        self.m.fail_json(msg="could not find a filesystem size the root fits in (tried %d to %d MiB of %s)"
                             % (start_mb + 10, start_mb + 10 * TRIALS, self.p["fs_type"]),
                         commands=self.run.commands)


def copy_into(dst, offset, src):
    """Copy a file into dst at offset, leaving zero blocks as holes."""
    with open(src, "rb") as fi, open(dst, "r+b") as fo:
        pos = offset
        zero = b"\0" * MIB
        for block in iter(lambda: fi.read(MIB), b""):
            if block != zero[:len(block)]:
                fo.seek(pos)
                fo.write(block)
            pos += len(block)


def sfdisk_gpt(disk_mb, seed):
    """Clear Containers' layout: GPT, partition 1 named ext4 from 1 MiB to
    1 MiB before the end (parted mkpart ext4 1M -1M)."""
    spm = MIB // 512
    return ("label: gpt\nlabel-id: %s\nfirst-lba: 2048\n"
            "start=%d, size=%d, type=%s, uuid=%s, name=ext4\n" % (
                derived_uuid(seed, "gpt").upper(), spm, (disk_mb - 2) * spm, GPT_LINUX,
                derived_uuid(seed, "p1").upper()))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            fs_type=dict(type="str", default="ext4", choices=["ext4", "xfs", "erofs"]),
            size_mb=dict(type="int"),
            free_space_mb=dict(type="int", default=0),
            partition_table=dict(type="str", default="msdos", choices=["msdos", "gpt"]),
            dax_header=dict(type="bool", default=True),
            verity=dict(type="bool", default=False),
            root_hash_file=dict(type="path"),
            block_size=dict(type="int", default=4096, choices=[1024, 2048, 4096]),
            seed=dict(type="str", default="osimage.builder guest_disk"),
            source_date_epoch=dict(type="int", default=1700000000),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = CommandRunner(module)
    if not os.path.isdir(p["src"]):
        module.fail_json(msg="src=%s is not a directory" % p["src"])
    if p["size_mb"] is not None and p["size_mb"] <= 0:
        module.fail_json(msg="size_mb=%s must be a positive number of MiB (or omitted to compute it)" % p["size_mb"])
    if p["free_space_mb"] < 0:
        module.fail_json(msg="free_space_mb=%s must not be negative" % p["free_space_mb"])
    if p["partition_table"] == "gpt" and (p["dax_header"] or p["verity"]):
        module.fail_json(msg="partition_table=gpt (Clear Containers' layout) has no DAX header and no verity "
                             "partition: set dax_header=false and verity=false, or use partition_table=msdos")
    if p["fs_type"] == "erofs" and p["block_size"] != 4096:
        module.fail_json(msg="block_size=%d: erofs needs 4096" % p["block_size"])
    programs = {"ext4": ["mkfs.ext4", "tune2fs", "e2fsck"], "xfs": ["mkfs.xfs"], "erofs": ["mkfs.erofs"]}
    runner.require(*(programs[p["fs_type"]] + (["veritysetup"] if p["verity"] else [])
                     + (["sfdisk"] if p["partition_table"] == "gpt" else [])))
    dest = p["dest"]
    hash_file = p["root_hash_file"] or os.path.join(os.path.dirname(dest), "root_hash.txt")
    inputs = {k: p[k] for k in ("fs_type", "size_mb", "free_space_mb", "partition_table", "dax_header", "verity",
                                "block_size", "seed", "source_date_epoch")}
    inputs["root"] = tree_fingerprint(p["src"])
    record = read_stamp(dest, "guest_disk")
    reason = rebuild_reason(record, inputs, os.path.isfile(dest))
    if reason is None and sha256_file(dest) != record["outputs"].get(dest):
        reason = "the image was modified since it was built"
    if reason is None and p["verity"] and not os.path.isfile(hash_file):
        reason = "root_hash_file missing"
    if p["force"] and reason is None:
        reason = "force=true"
    content, inodes = tree_usage(p["src"])
    root_mb = int(math.ceil(content / MIB))
    if reason is None:
        result = dict(changed=False, artifact=artifact(dest), rebuild_reason=None, commands=[])
        result.update(record.get("facts", {}).get("layout", {}))
        module.exit_json(**result)

    if module.check_mode:
        # A lower bound from the root's size: formatting would write files.
        try:
            total, disk_mb, notice = dax.image_size_mb(p["fs_type"], root_mb + root_mb // 10 + 8, p["free_space_mb"],
                                                       p["dax_header"], p["verity"], p["size_mb"])
        except ValueError as exc:
            module.fail_json(msg="size_mb=%s: %s" % (p["size_mb"], exc))
        module.exit_json(changed=True, rebuild_reason=reason, size_mb=total, disk_mb=disk_mb, notice=notice,
                         partitions=[{"start": a, "end": b} for a, b in dax.partitions_mb(disk_mb, p["verity"])],
                         commands=[])

    dest_dir = os.path.dirname(dest) or "."
    os.makedirs(dest_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".%s.work." % os.path.basename(dest), dir=dest_dir)
    tmp_img = None
    try:
        b = Builder(module, work)
        b.run = runner
        fs_img = os.path.join(work, "root.fs")

        # The data partition's size for a given rootfs disk size.
        def data_mb(disk):
            parts = dax.partitions_mb(disk, p["verity"])
            end = parts[0][1] - (1 if p["partition_table"] == "gpt" else 0)
            return end - parts[0][0]

        if p["fs_type"] == "erofs":
            fs_bytes = b.make_erofs(fs_img)
            needed = (fs_bytes + MIB) // MIB + 1
        elif p["size_mb"] is None:
            # Found by formatting, not guessed (image_builder.sh's trial loop);
            # mkfs.xfs refuses filesystems under 300 MiB.
            needed = b.smallest_fs(fs_img, max(root_mb, XFS_MIN_MB - 10) if p["fs_type"] == "xfs" else root_mb)
        else:
            needed = root_mb
        # GPT (Clear Containers) also leaves 1 MiB at the end, for the backup table.
        gpt_tail = 1 if p["partition_table"] == "gpt" else 0
        try:
            total, disk_mb, notice = dax.image_size_mb(p["fs_type"], needed + gpt_tail, p["free_space_mb"],
                                                       p["dax_header"], p["verity"], p["size_mb"])
        except ValueError as exc:
            module.fail_json(msg="size_mb=%s: %s" % (p["size_mb"], exc), commands=runner.commands)
        if notice:
            module.warn(notice)
        part_mb = data_mb(disk_mb)
        if p["fs_type"] != "erofs":
            rc, err = b.make_fs(fs_img, part_mb, check=False)
            if rc != 0:
                module.fail_json(msg="size_mb=%s: the root (%d MiB in %d files) does not fit in a %d MiB %s "
                                     "filesystem: %s" % (p["size_mb"], root_mb, inodes, part_mb, p["fs_type"],
                                                         " | ".join(err.strip().splitlines()[-3:])),
                                 commands=runner.commands)
        elif os.path.getsize(fs_img) > part_mb * MIB:
            module.fail_json(msg="size_mb=%s: the erofs filesystem (%d MiB) does not fit in the %d MiB partition"
                                 % (p["size_mb"], os.path.getsize(fs_img) // MIB, part_mb), commands=runner.commands)
        verity = None
        parts = dax.partitions_mb(disk_mb, p["verity"])
        if p["verity"]:
            if p["fs_type"] == "erofs":
                # veritysetup covers the whole data partition.
                with open(fs_img, "r+b") as f:
                    f.truncate(part_mb * MIB)
            hash_img = os.path.join(work, "root.hash")
            salt = hashlib.sha256(("%s\0salt" % p["seed"]).encode()).hexdigest()
            _rc, out, _err = runner.run(["veritysetup", "format", "--no-superblock", "--salt", salt, fs_img, hash_img],
                                        "compute the dm-verity hash tree")
            try:
                verity = dax.parse_veritysetup(out)
            except ValueError as exc:
                module.fail_json(msg="veritysetup format: %s" % exc, stdout=out, commands=runner.commands)
            if os.path.getsize(hash_img) > (parts[1][1] - parts[1][0]) * MIB:
                module.fail_json(msg="size_mb=%s: the dm-verity hash tree (%d bytes) does not fit in its %d MiB "
                                     "partition; give a larger size" % (p["size_mb"], os.path.getsize(hash_img),
                                                                        parts[1][1] - parts[1][0]),
                                 commands=runner.commands)
        fd, tmp_img = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=dest_dir)
        with os.fdopen(fd, "wb") as f:
            f.truncate(total * MIB)
        base = dax.DAX_HEADER_MB * MIB if p["dax_header"] else 0
        disk_id = int(hashlib.sha256(("%s\0disk" % p["seed"]).encode()).hexdigest()[:8], 16)
        if p["partition_table"] == "msdos":
            with open(tmp_img, "r+b") as f:
                if p["dax_header"]:
                    f.write(dax.dax_header(total, disk_mb, p["verity"], disk_id))
                f.seek(base)
                f.write(dax.disk_mbr(disk_mb, p["verity"], disk_id))
        else:
            runner.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", tmp_img],
                       "write the GPT partition table", data=sfdisk_gpt(disk_mb, p["seed"]))
        copy_into(tmp_img, base + parts[0][0] * MIB, fs_img)
        if verity:
            copy_into(tmp_img, base + parts[1][0] * MIB, hash_img)
            line = dax.root_hash_line(verity)
            verity.update(line=line, kernel_verity_params=line, file=hash_file,
                          kernel_params_virtio_blk=dax.verity_kernel_params(verity, p["fs_type"], nvdimm=False),
                          kernel_params_nvdimm=dax.verity_kernel_params(verity, p["fs_type"], nvdimm=True))
            fd, tmp_hash = tempfile.mkstemp(prefix=".%s." % os.path.basename(hash_file),
                                            dir=os.path.dirname(hash_file) or ".")
            with os.fdopen(fd, "w") as f:
                f.write(line + "\n")
            os.chmod(tmp_hash, 0o644)
            module.atomic_move(tmp_hash, hash_file)
        os.chmod(tmp_img, 0o644)
        module.atomic_move(tmp_img, dest)
        tmp_img = None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp_img and os.path.exists(tmp_img):
            os.unlink(tmp_img)
    layout = dict(size_mb=total, disk_mb=disk_mb, notice=notice,
                  partitions=[{"start": a, "end": e} for a, e in parts], verity=verity)
    art = artifact(dest)
    write_stamp(dest, "guest_disk", inputs, outputs={dest: art["sha256"]}, facts={"layout": layout})
    module.exit_json(changed=True, artifact=art, rebuild_reason=reason, commands=runner.commands, **layout)


if __name__ == "__main__":
    main()

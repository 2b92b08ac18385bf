#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpt_image
short_description: A raw GPT disk image from a partition layout (CoreOS disk_util style), with grub for BIOS
description:
  - Lays out O(partitions) the way CoreOS' and KurmaOS' C(disk_util) does from C(disk_layout.json) - each start
    aligned up to O(part_alignment) blocks of 512 bytes from block 34, the backup GPT after the last partition, the
    disk aligned up to O(disk_alignment) - with each partition's GPT name (label) and type GUID (or a cgpt type name
    - efi, bios, data, rootfs, coreos-resize), written with C(sfdisk).
  - Filesystems are made in files and copied into place, nothing is mounted - vfat with C(mkfs.vfat) filled with
    mtools, ext2/ext4 with C(mke2fs -b 4096 -i 4096 -I 128 -d) and C(tune2fs -e remount-ro) as disk_util does.
  - O(bootloader=grub-i386-pc) builds grub's core image (C(grub-mkimage), modules fat part_gpt search_fs_uuid
    biosdisk gzio, prefix on the O(grub_partition) at C(/<grub_dir>)), copies grub's i386-pc modules there with
    O(grub_cfg), and embeds the core image into the BIOS boot partition with C(grub-bios-setup) on a loop device.
  - Optional qcow2 (compat 0.10) and vmdk copies. Keyed on its inputs in its record (V(gpt_image)) of the stamp
    C(<dest>.stamp.json); a layout that does not fit O(size) is an error before anything is written.
version_added: 0.2.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  dest:
    description: The raw image.
    type: path
    required: true
  partitions:
    description:
      - In order, each C(label), C(type) (GUID or cgpt name), C(blocks) (512-byte blocks; the last may leave it out
        to fill O(size)), C(fs) (vfat, ext2, ext4 or none), C(legacy_boot) (the legacy-BIOS-bootable attribute, as
        cgpt's C(hybrid) feature sets), C(src_dir) (a directory whose content fills the filesystem) and C(files)
        (a list of C({src, dest}), host file to path in the filesystem).
    type: list
    elements: dict
    required: true
  size:
    description: Disk size in 512-byte blocks; default the layout's own aligned size.
    type: int
  part_alignment:
    description: Partition start alignment in blocks.
    type: int
    default: 4096
  disk_alignment:
    description: Disk size alignment in blocks.
    type: int
    default: 258048
  bootloader:
    description: Bootloader.
    type: str
    choices: [none, grub-i386-pc]
    default: none
  grub_partition:
    description: Label of the vfat partition grub's files go to.
    type: str
    default: EFI-SYSTEM
  grub_dir:
    description: grub's directory on that partition.
    type: str
    default: kurmaos/grub
  grub_cfg:
    description: Content of C(<grub_dir>/grub.cfg).
    type: str
    default: ""
  formats:
    description: Converted copies beside O(dest) (C(<stem>.qcow2), C(<stem>.vmdk)).
    type: list
    elements: str
    choices: [qcow2, vmdk]
    default: []
  vmdk_adapter_type:
    description: The vmdk's adapter type (kurmaos - lsilogic for VMware, ide for VirtualBox).
    type: str
    choices: [ide, lsilogic, buslogic, legacyESX]
    default: lsilogic
  force:
    description: Rebuild although the inputs did not change.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root and loop devices for O(bootloader=grub-i386-pc).
requirements:
  - truncate (Debian package coreutils) and sfdisk (Debian package fdisk)
  - mkfs.vfat (Debian package dosfstools), mmd and mcopy (Debian package mtools) for vfat
  - mkfs.ext4 and tune2fs (Debian package e2fsprogs) for ext2/ext4 and grub's setup files
  - grub-mkimage (Debian package grub-common) and grub-bios-setup with the i386-pc files (Debian package grub-pc-bin),
    losetup, mount and umount (Debian package mount) for grub
  - qemu-img (Debian package qemu-utils) for qcow2 and vmdk copies
seealso:
  - module: osimage.builder.disk_image
  - module: osimage.builder.boot_test
"""

EXAMPLES = r"""
- name: KurmaOS' base layout with grub for BIOS
  osimage.builder.gpt_image:
    dest: /var/tmp/osimage/output/kurmaos.raw
    bootloader: grub-i386-pc
    grub_cfg: "{{ lookup('ansible.builtin.template', 'grub.cfg.j2') }}"
    partitions:
      - {label: EFI-SYSTEM, type: efi, blocks: 262144, fs: vfat, legacy_boot: true,
         files: [{src: /tmp/bzImage, dest: /bzImage}, {src: /tmp/initrd, dest: /initrd}]}
      - {label: BIOS-BOOT, type: bios, blocks: 4096}
      - {label: OEM, type: data, blocks: 262144, fs: ext4}
      - {label: ROOT, type: coreos-resize, blocks: 2097152, fs: ext4}
"""

RETURN = r"""
artifact:
  description: The raw image (path, size, sha256; in check mode its path only).
  returned: always
  type: dict
  sample:
    path: /var/tmp/osimage/output/kurmaos.raw
    size: 1453326336
    sha256: "8d74ff1a78fac5db61d1740399b80e21f8abdf04de33d07cc38e810d0545d983"
formats:
  description: The converted copies (path, size, sha256).
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/tmp/osimage/output/kurmaos.qcow2
      size: 301137920
      sha256: "7e90a71a96f6d67849ca31290bc1d1239b8c6f25ecaba16b58b3c53d00258867"
layout:
  description: Each partition's number, label, type, start and blocks.
  returned: always
  type: list
  elements: dict
  sample:
    - {number: 1, label: EFI-SYSTEM, type: C12A7328-F81F-11D2-BA4B-00A0C93EC93B, start: 4096, blocks: 262144,
       fs: vfat}
    - {number: 2, label: BIOS-BOOT, type: 21686148-6449-6E6F-744E-656564454649, start: 266240, blocks: 4096,
       fs: none}
    - {number: 3, label: OEM, type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4, start: 270336, blocks: 262144, fs: ext4}
    - {number: 4, label: ROOT, type: 3884DD41-8582-4404-B9A8-E9B84F2DF50E, start: 532480, blocks: 2097152,
       fs: ext4}
rebuild_reason:
  description: Why the image was built, or null.
  returned: always
  type: str
  sample: "inputs changed: grub_cfg"
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    read_stamp,
    rebuild_reason,
    sha256_file,
    tree_digest,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._gpt import LayoutError, plan, sfdisk_script
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner

GRUB_PC = "/usr/lib/grub/i386-pc"
GRUB_BIOS_SETUP = GRUB_PC + "/grub-bios-setup"


def make_fs(runner, work, number, label, fs, blocks, part):
    """The filesystem of one partition, made in a file; its path."""
    img = os.path.join(work, "p%d.img" % number)
    size = blocks * 512
    if fs == "vfat":
        # disk_util: mkfs.vfat -n <label> <dev> <bytes/1024>
        runner.run(["mkfs.vfat", "-n", label[:11], "-C", img, str(size // 1024)], "mkfs.vfat for %s" % label)
        env = {"MTOOLS_SKIP_CHECK": "1"}
        src_dir = part.get("src_dir")
        if src_dir:
            for name in sorted(os.listdir(src_dir)):
                runner.run(["mcopy", "-s", "-o", "-i", img, os.path.join(src_dir, name), "::" + name],
                           "copying %s to %s" % (name, label), env=env)
        made = set()
        for f in part.get("files") or []:
            dest = f["dest"].strip("/")
            parts = dest.split("/")[:-1]
            for i in range(len(parts)):
                d = "/".join(parts[: i + 1])
                if d not in made:
                    runner.run(["mmd", "-D", "s", "-i", img, "::" + d], "mmd %s on %s" % (d, label), check=False,
                               env=env)
                    made.add(d)
            runner.run(["mcopy", "-o", "-i", img, f["src"], "::" + dest], "copying %s to %s" % (f["src"], label),
                       env=env)
    else:
        src_dir = part.get("src_dir")
        with tempfile.TemporaryDirectory(dir=work) as tree:
            if src_dir:
                shutil.copytree(src_dir, tree, symlinks=True, dirs_exist_ok=True)
            for f in part.get("files") or []:
                target = os.path.join(tree, f["dest"].lstrip("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(f["src"], target)
            # disk_util: mke2fs -q -t <fs> -b 4096 -i 4096 -I 128 <dev> <fs_blocks>; tune2fs -L <label> -e remount-ro
            runner.run(["mkfs.ext4", "-q", "-F", "-t", fs, "-b", "4096", "-i", "4096", "-I", "128", "-L", label[:16],
                        "-d", tree, img, str(size // 4096)], "mke2fs for %s" % label)
        runner.run(["tune2fs", "-e", "remount-ro", img], "tune2fs for %s" % label)
    return img


def place(image, img, start):
    """Copy a filesystem image into the disk at block `start`, leaving runs
    of zeros as holes (the disk stays sparse)."""
    chunk = 1 << 20
    zero = bytes(chunk)
    with open(img, "rb") as fin, open(image, "r+b") as fout:
        offset = start * 512
        while True:
            data = fin.read(chunk)
            if not data:
                break
            if data != zero[: len(data)]:
                fout.seek(offset)
                fout.write(data)
            offset += len(data)


def grub_bios(module, runner, work, image, esp_img, p):
    """grub's core image with the prefix on the ESP, the modules and grub.cfg
    there, embedded into the BIOS boot partition (grub_install.sh)."""
    prefix = "(,gpt%d)/%s" % (p["__grub_number"], p["grub_dir"].strip("/"))
    setup_dir = os.path.join(work, "grub")
    os.makedirs(setup_dir)
    core = os.path.join(setup_dir, "core.img")
    runner.run(["grub-mkimage", "--compression=auto", "-O", "i386-pc", "-d", GRUB_PC, "-o", core, "-p", prefix,
                "biosdisk", "part_gpt", "fat", "search_fs_uuid", "gzio"], "grub-mkimage for i386-pc")
    shutil.copyfile(os.path.join(GRUB_PC, "boot.img"), os.path.join(setup_dir, "boot.img"))
    env = {"MTOOLS_SKIP_CHECK": "1"}
    gdir = p["grub_dir"].strip("/")
    acc = ""
    for part in gdir.split("/") + ["i386-pc"]:
        acc = (acc + "/" + part).strip("/")
        runner.run(["mmd", "-D", "s", "-i", esp_img, "::" + acc], "mmd %s" % acc, check=False, env=env)
    mods = sorted(n for n in os.listdir(GRUB_PC) if n.endswith((".mod", ".lst")))
    runner.run(["mcopy", "-o", "-i", esp_img] + [os.path.join(GRUB_PC, n) for n in mods] + ["::%s/i386-pc/" % gdir],
               "copying grub's modules")
    cfg = os.path.join(work, "grub.cfg")
    with open(cfg, "w") as f:
        f.write(p["grub_cfg"])
    runner.run(["mcopy", "-o", "-i", esp_img, cfg, "::%s/grub.cfg" % gdir], "copying grub.cfg")
    return setup_dir


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            partitions=dict(type="list", elements="dict", required=True),
            size=dict(type="int"),
            part_alignment=dict(type="int", default=4096),
            disk_alignment=dict(type="int", default=258048),
            bootloader=dict(type="str", default="none", choices=["none", "grub-i386-pc"]),
            grub_partition=dict(type="str", default="EFI-SYSTEM"),
            grub_dir=dict(type="str", default="kurmaos/grub"),
            grub_cfg=dict(type="str", default=""),
            formats=dict(type="list", elements="str", default=[], choices=["qcow2", "vmdk"]),
            vmdk_adapter_type=dict(type="str", default="lsilogic", choices=["ide", "lsilogic", "buslogic",
                                                                            "legacyESX"]),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = CommandRunner(module)
    try:
        layout, total = plan(p["partitions"], p["part_alignment"], p["disk_alignment"], disk_blocks=p["size"])
    except LayoutError as exc:
        module.fail_json(msg="partitions: %s" % exc)
    described = [{"number": n, "label": lb, "type": g, "start": s, "blocks": b, "fs": fs}
                 for n, lb, g, s, b, fs, _content in layout]
    if p["bootloader"] == "grub-i386-pc":
        esp = [x for x in layout if x[1] == p["grub_partition"]]
        if not esp or esp[0][5] != "vfat":
            module.fail_json(msg="grub_partition=%s is not a vfat partition of the layout" % p["grub_partition"])
        if not [x for x in layout if x[2] == "21686148-6449-6E6F-744E-656564454649"]:
            module.fail_json(msg="partitions: grub-i386-pc needs a BIOS boot partition (type bios)")
        p["__grub_number"] = esp[0][0]
    inputs = {"layout": described, "total": total, "bootloader": p["bootloader"], "grub_dir": p["grub_dir"],
              "grub_cfg": p["grub_cfg"], "formats": p["formats"], "vmdk_adapter_type": p["vmdk_adapter_type"],
              "content": {}}
    for n, _lb, _g, _s, _b, _fs, part in layout:
        for i, f in enumerate(part.get("files") or []):
            if (not isinstance(f, dict) or not os.path.isfile(str(f.get("src")))
                    or not str(f.get("dest", "")).startswith("/")):
                module.fail_json(msg="partitions[%d].files[%d] must be {src: <a file>, dest: </path>}: %r"
                                     % (n - 1, i, f))
            inputs["content"]["%d:%s" % (n, f["dest"])] = sha256_file(f["src"])
        if part.get("src_dir"):
            if not os.path.isdir(part["src_dir"]):
                module.fail_json(msg="partitions[%d].src_dir=%s is not a directory" % (n - 1, part["src_dir"]))
            inputs["content"]["%d:src_dir" % n] = tree_digest([part["src_dir"]])
    dest = p["dest"]
    stem = os.path.splitext(dest)[0]
    outputs = [stem + "." + f for f in p["formats"]]
    present = os.path.isfile(dest) and all(os.path.isfile(o) for o in outputs)
    reason = "force" if p["force"] else rebuild_reason(read_stamp(dest, "gpt_image"), inputs, present)
    if reason is None:
        module.exit_json(changed=False, artifact=artifact(dest), formats=[artifact(o) for o in outputs],
                         layout=described, rebuild_reason=None)
    if module.check_mode:
        module.exit_json(changed=True, artifact={"path": dest}, formats=[], layout=described, rebuild_reason=reason)
    tools = ["truncate", "sfdisk"]
    if any(x[5] == "vfat" for x in layout):
        tools += ["mkfs.vfat", "mcopy", "mmd"]
    if any(x[5] in ("ext2", "ext4") for x in layout):
        tools += ["mkfs.ext4", "tune2fs"]
    if p["bootloader"] == "grub-i386-pc":
        tools += ["grub-mkimage", "losetup", "mount", "umount", "mkfs.ext4", GRUB_BIOS_SETUP]
    if p["formats"]:
        tools.append("qemu-img")
    runner.require(*tools)
    d = os.path.dirname(dest) or "."
    os.makedirs(d, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".%s.gpt_image-" % os.path.basename(dest), dir=d)
    loop = mounted = None
    try:
        tmp = os.path.join(work, "disk.raw")
        runner.run(["truncate", "-s", str(total * 512), tmp], "creating the image")
        runner.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", tmp], "sfdisk", data=sfdisk_script(layout))
        fs_imgs = {}
        for n, lb, _g, start, blocks, fs, part in layout:
            if fs != "none":
                fs_imgs[lb] = (make_fs(runner, work, n, lb, fs, blocks, part), start)
        setup_dir = None
        if p["bootloader"] == "grub-i386-pc":
            setup_dir = grub_bios(module, runner, work, tmp, fs_imgs[p["grub_partition"]][0], p)
        for img, start in fs_imgs.values():
            place(tmp, img, start)
        if setup_dir:
            # grub-bios-setup guesses the device of its -d directory and fails when it cannot open it (a
            # virtual disk, a tmpfs): the directory is put on a small ext4 image mounted through a loop device.
            setup_fs = os.path.join(work, "grub-setup.img")
            runner.run(["truncate", "-s", "8M", setup_fs], "creating grub's setup filesystem")
            runner.run(["mkfs.ext4", "-q", "-F", "-d", setup_dir, setup_fs], "mkfs.ext4 for grub's setup files")
            mnt = os.path.join(work, "grub-setup")
            os.makedirs(mnt)
            runner.run(["mount", "-o", "loop,ro", setup_fs, mnt], "mounting grub's setup files")
            mounted = mnt
            _rc, out, _err = runner.run(["losetup", "--show", "-f", tmp], "attaching the image")
            loop = out.strip()
            runner.run([GRUB_BIOS_SETUP, "-d", mnt, "--device-map=/dev/null", "--skip-fs-probe", loop],
                       "grub-bios-setup")
            runner.run(["losetup", "-d", loop], "detaching the image")
            loop = None
            runner.run(["umount", mnt], "unmounting grub's setup files")
            mounted = None
        for fmt in p["formats"]:
            argv = ["qemu-img", "convert", "-f", "raw", "-O", fmt]
            argv += ["-o", "compat=0.10"] if fmt == "qcow2" else ["-o", "adapter_type=%s" % p["vmdk_adapter_type"]]
            runner.run(argv + [tmp, os.path.join(work, "disk." + fmt)], "qemu-img convert to %s" % fmt)
        for fmt in p["formats"]:
            os.rename(os.path.join(work, "disk." + fmt), stem + "." + fmt)
        os.rename(tmp, dest)
    finally:
        if loop:
            runner.run(["losetup", "-d", loop], "detaching the image", check=False)
        if mounted:
            runner.run(["umount", mounted], "unmounting grub's setup files", check=False)
        shutil.rmtree(work, ignore_errors=True)
    result = artifact(dest)
    formats = [artifact(o) for o in outputs]
    recorded = dict({f["path"]: f["sha256"] for f in formats}, **{dest: result["sha256"]})
    write_stamp(dest, "gpt_image", inputs, outputs=recorded)
    module.exit_json(changed=True, artifact=result, formats=formats, layout=described,
                     rebuild_reason=reason, commands=runner.commands)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: disk_image
short_description: Build a bootable, partitioned raw disk image from an image root
description:
  - Creates a raw disk image of O(size) with an msdos or gpt partition table, a root filesystem (ext4 or xfs) with
    a given UUID and label populated from O(src) (hard links, ACLs, extended attributes and ownership kept;
    C(mkfs.ext4 -d) for ext4, C(rsync -aHAX) for xfs), C(/etc/fstab) by UUID, and grub (i386-pc, or x86_64-efi
    with an EFI system partition filled with mtools) booting the newest kernel in C(/boot) with O(kernel_cmdline).
  - Optionally converts the image with C(qemu-img) to qcow2 (compat 0.10, as OpenStack wants), vmdk or vhd (fixed).
  - A size too small for the content is an error before anything is written. The image is built under a
    temporary name beside O(dest) and moved into place when complete. Loop devices and mounts are always
    released, deepest first, also on failure; ones left under the work directory by a killed run are released
    first.
  - Keyed on its inputs (a fingerprint of O(src) and every option) in C(<dest>.inputs.json).
version_added: 0.1.0
author: osimage.builder contributors
options:
  src:
    description: The image root to put on the disk.
    type: path
    required: true
  dest:
    description: The raw disk image.
    type: path
    required: true
  size:
    description: Disk size, such as V(5G) or V(5120M).
    type: str
    required: true
  partition_table:
    description: Partition table type.
    type: str
    choices: [msdos, gpt]
    default: msdos
  filesystem:
    description: Root filesystem.
    type: str
    choices: [ext4, xfs]
    default: ext4
  fs_uuid:
    description: UUID of the root filesystem (default derived from O(dest), so rebuilds keep it).
    type: str
  fs_label:
    description: Label of the root filesystem.
    type: str
    default: rootfs
  bootloader:
    description: Bootloader to install.
    type: str
    choices: [grub-i386-pc, grub-x86_64-efi, none]
    default: grub-i386-pc
  kernel_cmdline:
    description: Kernel command line after C(root=UUID=... ro).
    type: str
    default: console=ttyS0,115200n8
  grub_superuser:
    description: grub superuser who may edit entries and use the command line; entries still boot without it.
    type: str
  grub_password:
    description: Password of O(grub_superuser), stored as a PBKDF2 hash.
    type: str
  title:
    description: Title of the boot entry.
    type: str
    default: Linux
  formats:
    description: Converted copies to write beside O(dest) (C(<dest stem>.qcow2), C(.vmdk), C(.vhd)).
    type: list
    elements: str
    choices: [qcow2, vmdk, vhd]
    default: []
  work_dir:
    description: Where temporary mount points go.
    type: path
  force:
    description: Rebuild although the inputs did not change.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Needs root, C(parted), C(partx), C(losetup), C(mkfs.ext4) or C(mkfs.xfs), C(grub-install) (grub-pc-bin) and
    C(udevadm) (udev) on the build host; for EFI C(grub-mkimage), C(mkfs.vfat) and mtools.
"""

EXAMPLES = r"""
- name: A BOSH stemcell disk for OpenStack
  osimage.builder.disk_image:
    src: /var/tmp/osimage/work/stemcell/chroot
    dest: /var/tmp/osimage/work/stemcell/root.img
    size: 5G
    kernel_cmdline: console=ttyS0,115200n8 earlyprintk=ttyS0 rootdelay=300 ipv6.disable=1 audit=1
    grub_superuser: vcap
    grub_password: "{{ vault_grub_password }}"
    formats: [qcow2]
"""

RETURN = r"""
artifact:
  description: The raw image as path, size and sha256.
  returned: success and not check mode
  type: dict
converted:
  description: The converted images, each as path, size, sha256 and format.
  returned: success and not check mode
  type: list
  elements: dict
fs_uuid:
  description: UUID of the root filesystem.
  returned: always
  type: str
partitions:
  description: The partition layout (name, start_mib, end_mib, role).
  returned: always
  type: list
  elements: dict
required_bytes:
  description: The smallest root filesystem that holds O(src).
  returned: always
  type: int
rebuild_reason:
  description: Why the image was (or would be) built; null when up to date.
  returned: always
  type: str
commands:
  description: Commands run.
  returned: always
  type: list
  elements: str
"""

import hashlib
import os
import shutil
import tempfile
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    read_stamp,
    rebuild_reason,
    sha256_file,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._disk import (
    MIB,
    UUID_RE,
    fstab,
    grub_cfg,
    layout,
    newest_kernel,
    parse_size,
    parted_script,
    required_root_bytes,
    tree_fingerprint,
    tree_usage,
)
from ansible_collections.osimage.builder.plugins.module_utils._mounts import (
    loop_device,
    mounted,
    release_under,
    signals_raise,
)
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner

CONVERT = {"qcow2": ["-O", "qcow2", "-o", "compat=0.10"], "vmdk": ["-O", "vmdk"],
           "vhd": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"]}
EFI_MODULES = ["part_gpt", "part_msdos", "ext2", "xfs", "fat", "normal", "linux", "search", "search_fs_uuid",
               "configfile", "echo", "serial", "terminal", "password_pbkdf2", "gzio", "efi_gop", "all_video", "boot"]


def grub_pbkdf2(runner, password):
    _rc, out, _err = runner.run(["grub-mkpasswd-pbkdf2"], "hash the grub password",
                                data="%s\n%s\n" % (password, password), record=False)
    for word in out.split():
        if word.startswith("grub.pbkdf2."):
            return word
    runner.module.fail_json(msg="grub-mkpasswd-pbkdf2 printed no hash")


def install_efi(runner, work, esp_dev, root_uuid):
    """An EFI system partition with grub's removable-media loader: the early
    config finds the root filesystem by UUID and reads its grub.cfg. The
    host kernel has no VFAT, so the ESP is filled with mtools."""
    early = os.path.join(work, "early.cfg")
    with open(early, "w") as f:
        f.write("search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\n"
                "configfile $prefix/grub.cfg\n" % root_uuid)
    loader = os.path.join(work, "BOOTX64.EFI")
    runner.run(["grub-mkimage", "-O", "x86_64-efi", "-o", loader, "-c", early, "-p", "/boot/grub"] + EFI_MODULES,
               "build the EFI loader")
    runner.run(["mkfs.vfat", "-F", "32", "-n", "EFI", esp_dev], "make the EFI system partition")
    env = {"MTOOLS_SKIP_CHECK": "1"}
    runner.run(["mmd", "-i", esp_dev, "::/EFI", "::/EFI/BOOT"], "create EFI directories", env=env)
    runner.run(["mcopy", "-i", esp_dev, loader, "::/EFI/BOOT/BOOTX64.EFI"], "copy the EFI loader", env=env)
    _rc, out, _err = runner.run(["blkid", "-s", "UUID", "-o", "value", esp_dev], "read the ESP's UUID")
    return out.strip()


def build(module, runner, p, tmp, parts, root_uuid, work):
    runner.run(["truncate", "-s", str(p["size_bytes"]), tmp], "create the disk image file")
    runner.run(["parted", "-s", "-a", "optimal", tmp] + parted_script(p["partition_table"], parts),
               "partition the disk image")
    with loop_device(runner, tmp, partitions=len(parts)) as (dev, part_devs):
        roles = {part["role"]: part_devs[i] for i, part in enumerate(parts)}
        root_dev = roles["root"]
        if p["filesystem"] == "ext4":
            runner.run(["mkfs.ext4", "-F", "-q", "-U", root_uuid, "-L", p["fs_label"], "-d", p["src"], root_dev],
                       "make and fill the root filesystem")
        else:
            runner.run(["mkfs.xfs", "-f", "-q", "-m", "uuid=" + root_uuid, "-L", p["fs_label"], root_dev],
                       "make the root filesystem")
        mnt = os.path.join(work, "mnt")
        with mounted(runner, root_dev, mnt):
            if p["filesystem"] == "xfs":
                runner.run(["rsync", "-aHAX", "--numeric-ids", p["src"] + "/", mnt + "/"],
                           "fill the root filesystem")
            efi_uuid = None
            if "esp" in roles:
                efi_uuid = install_efi(runner, work, roles["esp"], root_uuid)
                os.makedirs(os.path.join(mnt, "boot", "efi"), exist_ok=True)
            with open(os.path.join(mnt, "etc", "fstab"), "w") as f:
                f.write(fstab(root_uuid, p["filesystem"], efi_uuid))
            if p["bootloader"] != "none":
                grub_dir = os.path.join(mnt, "boot", "grub")
                os.makedirs(grub_dir, exist_ok=True)
                pbkdf2 = grub_pbkdf2(runner, p["grub_password"]) if p["grub_superuser"] else None
                cfg = os.path.join(grub_dir, "grub.cfg")
                with open(cfg, "w") as f:
                    f.write(grub_cfg(root_uuid, "/boot/" + p["kernel"], "/boot/" + p["initrd"],
                                     p["kernel_cmdline"], p["title"], p["grub_superuser"], pbkdf2))
                os.chmod(cfg, 0o600)  # BOSH stemcell spec: grub.cfg readable by root only
            if p["bootloader"] == "grub-i386-pc":
                runner.run(["grub-install", "--target=i386-pc", "--no-floppy", "--boot-directory=" + mnt + "/boot",
                            "--modules=part_msdos part_gpt ext2 xfs biosdisk", dev], "install grub",
                           hint="grub-install needs grub-pc-bin and udev (udevadm) on the build host")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            size=dict(type="str", required=True),
            partition_table=dict(type="str", default="msdos", choices=["msdos", "gpt"]),
            filesystem=dict(type="str", default="ext4", choices=["ext4", "xfs"]),
            fs_uuid=dict(type="str"),
            fs_label=dict(type="str", default="rootfs"),
            bootloader=dict(type="str", default="grub-i386-pc", choices=["grub-i386-pc", "grub-x86_64-efi", "none"]),
            kernel_cmdline=dict(type="str", default="console=ttyS0,115200n8"),
            grub_superuser=dict(type="str"),
            grub_password=dict(type="str", no_log=True),
            title=dict(type="str", default="Linux"),
            formats=dict(type="list", elements="str", default=[], choices=["qcow2", "vmdk", "vhd"]),
            work_dir=dict(type="path"),
            force=dict(type="bool", default=False),
        ),
        required_together=[("grub_superuser", "grub_password")],
        supports_check_mode=True,
    )
    p = dict(module.params)
    runner = CommandRunner(module)
    dest = p["dest"]
    src = p["src"] = p["src"].rstrip("/")
    if not os.path.isdir(src) or not os.path.isdir(os.path.join(src, "etc")):
        module.fail_json(msg="src=%s is not an image root (no /etc)" % src)
    try:
        p["size_bytes"] = parse_size(p["size"])
    except ValueError as exc:
        module.fail_json(msg="size: %s" % exc)
    if p["fs_uuid"] and not UUID_RE.match(p["fs_uuid"]):
        module.fail_json(msg="fs_uuid=%s is not a UUID" % p["fs_uuid"])
    root_uuid = p["fs_uuid"] or str(uuid.UUID(hashlib.sha256(dest.encode()).hexdigest()[:32]))
    if p["bootloader"] == "grub-x86_64-efi" and p["partition_table"] != "gpt":
        module.fail_json(msg="bootloader=grub-x86_64-efi needs partition_table=gpt")
    if p["bootloader"] != "none":
        p["kernel"], p["initrd"] = newest_kernel(os.listdir(os.path.join(src, "boot")))
        if not p["kernel"]:
            module.fail_json(msg="src=%s has no kernel with an initrd in /boot (vmlinuz-*, initrd.img-*); "
                                 "install one first or use bootloader=none" % src)
    parts = layout(p["partition_table"], p["bootloader"], p["size_bytes"])
    content, inodes = tree_usage(src)
    need = required_root_bytes(content, inodes)
    root_bytes = parts[-1]["size_bytes"]
    result = dict(changed=False, fs_uuid=root_uuid, partitions=parts, required_bytes=need, commands=runner.commands)
    if root_bytes < need:
        module.fail_json(msg="size=%s is too small for src=%s: the root filesystem would get %d MiB but the content "
                             "needs at least %d MiB; use size=%dM or more"
                             % (p["size"], src, root_bytes // MIB, need // MIB,
                                need // MIB + parts[-1]["start_mib"] + 2), **result)

    stem = dest[:-4] if dest.endswith((".img", ".raw")) else dest
    outputs = {fmt: "%s.%s" % (stem, fmt) for fmt in p["formats"]}
    inputs = {k: p[k] for k in ("size_bytes", "partition_table", "filesystem", "fs_label", "bootloader",
                                "kernel_cmdline", "grub_superuser", "title", "formats")}
    inputs.update(src=tree_fingerprint(src), fs_uuid=root_uuid, kernel=p.get("kernel"),
                  grub_password_sha256=hashlib.sha256((p["grub_password"] or "").encode()).hexdigest())
    stamp = read_stamp(dest)
    present = os.path.isfile(dest) and all(os.path.isfile(o) for o in outputs.values())
    reason = "force=true" if p["force"] else rebuild_reason(stamp, inputs, present)
    if reason is None and stamp.get("outputs", {}).get("sha256") != sha256_file(dest):
        reason = "disk image changed on disk since it was built"
    result["rebuild_reason"] = reason
    if reason is None:
        result.update(artifact=stamp["outputs"]["artifact"], converted=stamp["outputs"]["converted"])
        module.exit_json(**result)
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)

    dest_dir = os.path.dirname(dest) or "."
    os.makedirs(dest_dir, exist_ok=True)
    if not os.access(dest_dir, os.W_OK):
        module.fail_json(msg="dest=%s: directory %s is not writable" % (dest, dest_dir))
    for prog in ("parted", "partx", "losetup", "mkfs." + p["filesystem"], "qemu-img"):
        runner.bin(prog, hint="install it on the build host (role osimage.builder.build_host)")
    work_root = p["work_dir"] or dest_dir
    os.makedirs(work_root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".disk_image-", dir=work_root)
    tmp = os.path.join(dest_dir, ".%s.%s.tmp" % (os.path.basename(dest), os.path.basename(work)))
    converted = []
    try:
        # Loop devices, mounts and half-written images a killed run left behind.
        release_under(runner, work_root)
        for name in os.listdir(dest_dir):
            if name.startswith(".%s." % os.path.basename(dest)) and ".tmp" in name:
                os.unlink(os.path.join(dest_dir, name))
        for name in os.listdir(work_root):
            full = os.path.join(work_root, name)
            if name.startswith(".disk_image-") and full != work:
                shutil.rmtree(full, ignore_errors=True)
        with signals_raise():
            build(module, runner, p, tmp, parts, root_uuid, work)
            for fmt, out in sorted(outputs.items()):
                ctmp = tmp + "." + fmt
                runner.run(["qemu-img", "convert", "-f", "raw"] + CONVERT[fmt] + [tmp, ctmp],
                           "convert the disk image to %s" % fmt)
                info = artifact(ctmp)
                module.atomic_move(ctmp, out)
                os.chmod(out, 0o644)
                info.update(path=out, format=fmt)
                converted.append(info)
            art = artifact(tmp)
            module.atomic_move(tmp, dest)
            os.chmod(dest, 0o644)
            art["path"] = dest
            write_stamp(dest, inputs, {"artifact": art, "converted": converted, "sha256": art["sha256"]})
    except BaseException:
        release_under(runner, work)
        for leftover in [tmp] + [tmp + "." + f for f in outputs]:
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    finally:
        release_under(runner, work)
        shutil.rmtree(work, ignore_errors=True)
    result.update(changed=True, artifact=art, converted=converted)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

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
    released, deepest first, also on failure; ones a killed run of the same O(dest) left are released first.
  - Teardown is scoped to what this module made, its own work directory C(.<dest name>.disk_image-work) (beside
    O(dest), or in O(work_dir)) and loop devices backed by its own temporary image. Nothing else under the
    directory of O(dest) or O(work_dir) is ever unmounted or detached, so O(dest) may live in a shared directory
    such as C(/var/tmp).
  - Files written into the new filesystem (C(/etc/fstab), C(/boot/grub/grub.cfg), grub's boot directory) are
    resolved inside it as C(chroot) would, so a symlink that O(src) holds (C(/etc -> /etc)) never leads a write
    onto the build host's own files.
  - Keyed on its inputs (a fingerprint of O(src) and every option) in its record (V(disk_image)) of the stamp
    C(<dest>.stamp.json), with the sha256 of the image and of its converted copies.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - osimage.builder.progress
options:
  src:
    description: The image root to put on the disk.
    type: path
    required: true
  dest:
    description: The raw disk image. Its directory may not be C(/) of the build host.
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
  stamp_key_file:
    description:
      - The build host's stamp key (see M(osimage.builder.build_stamp) O(osimage.builder.build_stamp#module:state=key)).
        With O(grub_password), the stamp beside O(dest) records an HMAC of the password keyed with it, never
        a plain digest (which would allow fast offline guessing); made on first use, mode 0600.
    type: path
    default: /var/cache/osimage/keys/stamp.key
  work_dir:
    description:
      - Where the module's own work directory (temporary mount points) goes; default the directory of O(dest).
      - Only that own directory is released, never O(work_dir) itself. May not be C(/).
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
  platform:
    platforms: posix
notes:
  - Needs root on the build host, and loop devices (C(/dev/loop-control)); in a container it must be privileged.
  - Partitions are read with C(partx), not through the kernel's partition parser, so hosts without one work too.
  - For O(filesystem=xfs) the root is mounted to be filled with rsync; for ext4 C(mkfs.ext4 -d) fills it without a
    mount.
seealso:
  - module: osimage.builder.rootfs_archive
  - module: osimage.builder.chroot_command
  - module: osimage.builder.boot_test
  - module: osimage.builder.stemcell_package
  - module: osimage.builder.release_mounts
requirements:
  - truncate (Debian package coreutils)
  - parted (Debian package parted)
  - partx and blkid (Debian package util-linux)
  - losetup, mount and umount (Debian package mount)
  - mkfs.ext4 (Debian package e2fsprogs), or mkfs.xfs (Debian package xfsprogs) and rsync (Debian package
    rsync) for xfs
  - grub-install (Debian package grub2-common) with the i386-pc platform files (Debian package grub-pc-bin) and
    udevadm (Debian package udev)
  - grub-mkpasswd-pbkdf2 (Debian package grub-common) for a grub password
  - for x86_64-efi, grub-mkimage (Debian package grub-common) with grub-efi-amd64-bin, mkfs.vfat (Debian package
    dosfstools), mmd and mcopy (Debian package mtools)
  - qemu-img (Debian package qemu-utils) for qcow2, vmdk and vhd copies
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
  sample:
    path: /var/tmp/osimage/work/stemcell/root.img
    size: 5368709120
    sha256: "78e73c6797927151da2fe2ed5c175ae24d30d8a32ab8be6a6835a5328c8b9c58"
converted:
  description: The converted images, each as path, size, sha256 and format.
  returned: success and not check mode
  type: list
  elements: dict
  sample:
    - path: /var/tmp/osimage/work/stemcell/root.qcow2
      size: 1187119104
      sha256: "34440665e575a2ddc988a53c04688cc1ae264d3828b1412dd8b9585dde98f711"
      format: qcow2
fs_uuid:
  description: UUID of the root filesystem.
  returned: always
  type: str
  sample: f6854b21-5757-17ee-9daf-c64cfa80a6b3
partitions:
  description: The partition layout (name, start_mib, end_mib, role).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: root, start_mib: 1, end_mib: null, role: root, size_bytes: 5366611968}
required_bytes:
  description: The smallest root filesystem that holds O(src).
  returned: always
  type: int
  sample: 1717567488
min_size_mb:
  description: The smallest O(size) in MiB that would hold O(src) (with the partition table).
  returned: when O(size) is too small
  type: int
  sample: 1641
rebuild_reason:
  description: Why the image was (or would be) built; null when up to date.
  returned: always
  type: str
  sample: "inputs changed: kernel_cmdline"
commands:
  description: Commands run.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/bin/truncate -s 5368709120 /var/tmp/osimage/work/stemcell/.root.img.disk_image-tmp
    - "/usr/sbin/parted -s -a optimal /var/tmp/osimage/work/stemcell/.root.img.disk_image-tmp mklabel msdos
      mkpart primary ext4 1MiB 100% set 1 boot on"
    - /usr/sbin/losetup --find --show /var/tmp/osimage/work/stemcell/.root.img.disk_image-tmp
    - "/usr/sbin/mkfs.ext4 -F -q -U f6854b21-5757-17ee-9daf-c64cfa80a6b3 -L rootfs
      -d /var/tmp/osimage/work/stemcell/chroot /dev/loop0p1"
    - "/usr/bin/qemu-img convert -f raw -O qcow2 -o compat=0.10 /var/tmp/osimage/work/stemcell/.root.img.disk_image-tmp
      /var/tmp/osimage/work/stemcell/.root.img.disk_image-tmp.qcow2"
"""

import hashlib
import os
import shutil
import tempfile
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    keyed_digest,
    read_stamp,
    rebuild_reason,
    recorded_artifact,
    sha256_file,
    stamp_key,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._disk import (
    MIB,
    UUID_RE,
    fstab,
    grub_cfg,
    layout,
    min_disk_mb,
    newest_kernel,
    parse_size,
    parted_script,
    required_root_bytes,
    tree_fingerprint,
    tree_usage,
)
from ansible_collections.osimage.builder.plugins.module_utils._mounts import (
    detach_loops_backed_by,
    loop_device,
    mounted,
    release_under,
    resolve_in_root,
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


def write_inside(root, inside, content, mode):
    """Write a file at `inside` in the filesystem mounted on `root`: the
    directory is resolved in the root, the file itself replaced, never
    written through (a symlink there is removed first)."""
    parent = resolve_in_root(root, os.path.dirname(inside))
    os.makedirs(parent, exist_ok=True)
    path = os.path.join(parent, os.path.basename(inside))
    if os.path.islink(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.chmod(path, mode)


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
            # The filesystem holds a copy of src, symlinks included: every
            # path written into it is resolved inside it, as chroot would.
            efi_uuid = None
            if "esp" in roles:
                efi_uuid = install_efi(runner, work, roles["esp"], root_uuid)
                os.makedirs(resolve_in_root(mnt, "/boot/efi"), exist_ok=True)
            write_inside(mnt, "/etc/fstab", fstab(root_uuid, p["filesystem"], efi_uuid), 0o644)
            if p["bootloader"] != "none":
                pbkdf2 = grub_pbkdf2(runner, p["grub_password"]) if p["grub_superuser"] else None
                # BOSH stemcell spec: grub.cfg readable by root only
                write_inside(mnt, "/boot/grub/grub.cfg",
                             grub_cfg(root_uuid, "/boot/" + p["kernel"], "/boot/" + p["initrd"],
                                      p["kernel_cmdline"], p["title"], p["grub_superuser"], pbkdf2), 0o600)
            if p["bootloader"] == "grub-i386-pc":
                runner.run(["grub-install", "--target=i386-pc", "--no-floppy",
                            "--boot-directory=" + resolve_in_root(mnt, "/boot"),
                            "--modules=part_msdos part_gpt ext2 xfs biosdisk", dev], "install grub",
                           hint="grub-install needs grub-pc-bin and udev (udevadm) on the build host")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            progress_log=dict(type="path"),
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
            stamp_key_file=dict(type="path", default="/var/cache/osimage/keys/stamp.key", no_log=False),
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
    dest_dir = os.path.dirname(os.path.abspath(dest))
    for key, where in (("dest", dest_dir), ("work_dir", p["work_dir"])):
        if where and os.path.realpath(where) == "/":
            module.fail_json(msg="%s=%s: the build host's / cannot hold the work of a disk image; name a "
                                 "directory of the build, for example /var/tmp/osimage/out" % (key, p[key]))
    if p["bootloader"] != "none":
        boot = resolve_in_root(src, "/boot")
        p["kernel"], p["initrd"] = newest_kernel(os.listdir(boot) if os.path.isdir(boot) else [])
        if not p["kernel"]:
            module.fail_json(msg="src=%s has no kernel with an initrd in /boot (vmlinuz-*, initrd.img-*); "
                                 "install one first or use bootloader=none" % src)
    parts = layout(p["partition_table"], p["bootloader"], p["size_bytes"])
    content, inodes = tree_usage(src)
    need = required_root_bytes(content, inodes)
    root_bytes = parts[-1]["size_bytes"]
    result = dict(changed=False, fs_uuid=root_uuid, partitions=parts, required_bytes=need, commands=runner.commands)
    if root_bytes < need:
        min_mb = min_disk_mb(content, inodes, p["partition_table"], p["bootloader"])
        module.fail_json(msg="size=%s is too small for src=%s: the root filesystem would get %d MiB but the content "
                             "needs at least %d MiB; use size=%dM or more"
                             % (p["size"], src, root_bytes // MIB, need // MIB, min_mb), min_size_mb=min_mb, **result)

    stem = dest[:-4] if dest.endswith((".img", ".raw")) else dest
    outputs = {fmt: "%s.%s" % (stem, fmt) for fmt in p["formats"]}
    inputs = {k: p[k] for k in ("size_bytes", "partition_table", "filesystem", "fs_label", "bootloader",
                                "kernel_cmdline", "grub_superuser", "title", "formats")}
    inputs.update(src=tree_fingerprint(src), fs_uuid=root_uuid, kernel=p.get("kernel"), grub_password_hmac=None)
    if p["grub_password"]:
        key, _created, problem = stamp_key(p["stamp_key_file"], create=not module.check_mode)
        if problem:
            module.fail_json(msg="stamp_key_file: %s" % problem, **result)
        # In check mode without a key yet, the password cannot be compared: the disk counts as changed.
        inputs["grub_password_hmac"] = keyed_digest(key, "grub_password", p["grub_password"]) if key else "unknown"
    record = read_stamp(dest, "disk_image")
    present = os.path.isfile(dest) and all(os.path.isfile(o) for o in outputs.values())
    reason = "force=true" if p["force"] else rebuild_reason(record, inputs, present)
    if reason is None and record["outputs"].get(dest) != sha256_file(dest):
        reason = "disk image changed on disk since it was built"
    if reason is None and any(o not in record["outputs"] for o in outputs.values()):
        reason = "a converted image is not recorded in the stamp"
    result["rebuild_reason"] = reason
    if reason is None:
        result.update(artifact=recorded_artifact(record, dest),
                      converted=[recorded_artifact(record, out, format=fmt) for fmt, out in sorted(outputs.items())])
        module.exit_json(**result)
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)

    os.makedirs(dest_dir, exist_ok=True)
    if not os.access(dest_dir, os.W_OK):
        module.fail_json(msg="dest=%s: directory %s is not writable" % (dest, dest_dir))
    for prog in ("parted", "partx", "losetup", "mkfs." + p["filesystem"], "qemu-img"):
        runner.bin(prog, hint="install it on the build host (role osimage.builder.build_host)")
    # The module's own directories and files, named after dest: teardown
    # touches these and nothing else in dest_dir or work_dir, which may be
    # shared with other builds (/var/tmp).
    work_root = p["work_dir"] or dest_dir
    own = os.path.join(work_root, ".%s.disk_image-work" % os.path.basename(dest))
    tmp_prefix = os.path.join(dest_dir, ".%s.disk_image-" % os.path.basename(dest))
    tmp = tmp_prefix + "tmp"
    converted = []
    # Loop devices, mounts and half-written images a killed run left behind.
    if os.path.isdir(own) and not os.path.islink(own):
        release_under(runner, own)
        shutil.rmtree(own)
    elif os.path.lexists(own):
        os.unlink(own)
    detach_loops_backed_by(runner, tmp_prefix)
    for name in os.listdir(dest_dir):
        if (os.path.join(dest_dir, name).startswith(tmp_prefix)
                and not os.path.isdir(os.path.join(dest_dir, name))):
            os.unlink(os.path.join(dest_dir, name))
    os.makedirs(own, mode=0o700)
    work = tempfile.mkdtemp(prefix="run-", dir=own)
    try:
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
            write_stamp(dest, "disk_image", inputs,
                        dict({c["path"]: c["sha256"] for c in converted}, **{dest: art["sha256"]}))
    except BaseException:
        release_under(runner, own)
        for leftover in [tmp] + [tmp + "." + f for f in outputs]:
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    finally:
        release_under(runner, own)
        detach_loops_backed_by(runner, tmp_prefix)
        shutil.rmtree(own, ignore_errors=True)
    result.update(changed=True, artifact=art, converted=converted)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

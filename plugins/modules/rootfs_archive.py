#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rootfs_archive
short_description: Pack an image root into a reproducible tarball, or unpack one into a directory
description:
  - O(state=packed) packs the directory O(src) into the tarball O(dest) with GNU tar, keeping numeric ownership,
    permissions, hard links, ACLs and extended attributes (file capabilities), with members sorted by name and
    mtimes clamped to O(source_date_epoch), compressed without a name or timestamp in the header, so the same
    tree always gives the same bytes. The tarball is streamed and hashed; it replaces O(dest) only when its sha256
    differs, so a second run reports no change. In check mode the tarball is hashed but not written.
  - O(state=unpacked) unpacks the tarball O(src) into the directory O(dest) (through a temporary directory beside it,
    renamed into place when complete), and records the tarball's sha256 in its record (V(rootfs_archive)) of the
    stamp C(<dest>.stamp.json); an unchanged tarball is not unpacked again unless O(force=true).
  - With O(trusted=false), for a tarball this build did not make, the tarball is checked before anything is
    written and unpacked without privileges it could bring onto the build host (see O(trusted)).
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  src:
    description: Directory to pack (O(state=packed)) or tarball to unpack (O(state=unpacked)).
    type: path
    required: true
  dest:
    description: Tarball to write (O(state=packed)) or directory to create (O(state=unpacked)).
    type: path
    required: true
  state:
    description: Direction.
    type: str
    choices: [packed, unpacked]
    default: packed
  compression:
    description: Compression of the tarball (O(state=packed)).
    type: str
    choices: [gzip, xz, zstd, none]
    default: gzip
  exclude:
    description: Paths relative to O(src) to leave out (O(state=packed)), for example C(./var/cache/apt/archives/*.deb).
    type: list
    elements: str
    default: []
  source_date_epoch:
    description: Clamp member mtimes to this UNIX time (O(state=packed)); unset keeps them as they are.
    type: int
  force:
    description: Unpack again even when the tarball did not change (O(state=unpacked)); a fresh root each run.
    type: bool
    default: false
  trusted:
    description:
      - With O(state=unpacked), whether the tarball comes from this build (the collection's own OS image or
        bootstrap tarballs), so that setuid files, device nodes and file capabilities are kept as they are.
      - V(false) is for a tarball from elsewhere (downloaded, handed over). It is read before anything is written
        and refused when a member has an absolute path or C(..), when a hard link points out of the tree, or when
        a member is written through a symlink of the same tarball. Unpacked, device nodes are left out, setuid and
        setgid bits are cleared, and only C(user.*) extended attributes are kept (no C(security.capability)
        file capabilities). What was left out is returned as RV(dropped).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Packing an image root needs root on the build host (it reads every file with its owner and modes); so does
    unpacking with O(trusted=true).
  - O(src) must have no mounts under it when it is packed; release them first with M(osimage.builder.release_mounts).
seealso:
  - module: osimage.builder.rootfs_bootstrap
  - module: osimage.builder.chroot_command
  - module: osimage.builder.disk_image
  - module: osimage.builder.stemcell_package
requirements:
  - tar (Debian package tar)
  - pigz (Debian package pigz) when present, else gzip (Debian package gzip), for gzip
  - xz (Debian package xz-utils) for xz, zstd (Debian package zstd) for zstd
"""

EXAMPLES = r"""
- name: Pack the OS image
  osimage.builder.rootfs_archive:
    src: /var/tmp/osimage/work/chroot
    dest: /var/tmp/osimage/out/debian-bookworm-os-image.tgz
    source_date_epoch: 1700000000

- name: Unpack an OS image into a fresh stemcell root
  osimage.builder.rootfs_archive:
    src: /var/tmp/osimage/out/debian-bookworm-os-image.tgz
    dest: /var/tmp/osimage/work/stemcell/chroot
    state: unpacked
    force: true

- name: Unpack a root filesystem someone else built, without its privileges
  osimage.builder.rootfs_archive:
    src: /var/tmp/osimage/inputs/vendor-rootfs.tar.xz
    dest: /var/tmp/osimage/work/vendor/chroot
    state: unpacked
    trusted: false
"""

RETURN = r"""
artifact:
  description: The tarball (O(state=packed)) or the source tarball (O(state=unpacked)) as path, size and sha256.
  returned: always
  type: dict
  sample:
    path: /var/tmp/osimage/output/debian-bookworm-os-image.tgz
    size: 212345678
    sha256: "0eb3e36bfb24dcd9bb1d1bece1531216b59539a8fde17ee80224af0653c92aa3"
dropped:
  description:
    - With O(trusted=false), the device nodes left out and the members whose setuid/setgid bits were cleared
      (or would be, in check mode), relative to O(dest).
  returned: O(state=unpacked) and O(trusted=false)
  type: dict
  sample: {"devices": ["dev/null"], "setid": ["usr/bin/passwd"]}
commands:
  description: The commands run (or that would run).
  returned: always
  type: list
  elements: str
  sample:
    - "tar --create --file=- --directory=/var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot
      --sort=name --numeric-owner --sparse
      --xattrs '--xattrs-include=*' --acls --one-file-system
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --mtime=@1700000000 --clamp-mtime .
      | pigz -n -6"
"""

import os
import shlex
import shutil
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._archive import (
    make_unprivileged,
    pick_compressor,
    read_members,
    stream_pack,
    summary,
    tar_create_argv,
    untrusted_member_problems,
)
from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    read_stamp,
    rebuild_reason,
    sha256_file,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._mounts import mounts_under, read_mountinfo, signals_raise
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


def pack(module, runner, p):
    src, dest = p["src"].rstrip("/"), p["dest"]
    if not os.path.isdir(src):
        module.fail_json(msg="src=%s is not a directory" % src)
    busy = mounts_under(src, read_mountinfo())
    if busy:
        module.fail_json(msg="src=%s still has mounts (%s); release them first with osimage.builder.release_mounts"
                             % (src, ", ".join(busy)))
    dest_dir = os.path.dirname(dest) or "."
    if not module.check_mode and not os.path.isdir(dest_dir):
        os.makedirs(dest_dir)
    if not module.check_mode and not os.access(dest_dir, os.W_OK):
        module.fail_json(msg="dest=%s: directory %s is not writable" % (dest, dest_dir))
    tar_argv = tar_create_argv(src, p["exclude"], p["source_date_epoch"])
    comp_argv = pick_compressor(module, p["compression"])
    old = sha256_file(dest) if os.path.isfile(dest) else None
    if module.check_mode:
        digest, size = stream_pack(runner, tar_argv, comp_argv, None)
        return digest != old, {"path": dest, "size": size, "sha256": digest}
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=dest_dir)
    os.close(fd)
    try:
        with signals_raise():
            digest, size = stream_pack(runner, tar_argv, comp_argv, tmp)
            if digest == old:
                os.unlink(tmp)
                return False, artifact(dest)
            module.atomic_move(tmp, dest)
            os.chmod(dest, 0o644)  # atomic_move applies the umask to a new file
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True, {"path": dest, "size": size, "sha256": digest}


def check_untrusted(module, src):
    """Read an untrusted tarball's members: refuse it before anything is
    written, or return what unpacking it will leave out."""
    try:
        members = read_members(src, CommandRunner(module))
    except (OSError, EOFError, tarfile.TarError) as exc:
        module.fail_json(msg="src=%s is not a readable tarball: %s" % (src, exc))
    problems, devices, setid = untrusted_member_problems(members)
    if problems:
        module.fail_json(msg="src=%s is refused with trusted=false: %s; unpack only a tarball whose members stay "
                             "inside the root" % (src, summary(problems)), problems=problems)
    return {"devices": _relative(devices), "setid": _relative(setid)}


def _relative(names):
    return sorted((n[2:] if n.startswith("./") else n).rstrip("/") for n in names)


def unpack(module, runner, p):
    src, dest = p["src"], p["dest"].rstrip("/")
    if not os.path.isfile(src):
        module.fail_json(msg="src=%s does not exist; build it first" % src)
    art = artifact(src)
    inputs = {"src_sha256": art["sha256"]}
    if not p["trusted"]:
        # Only when set, so that stamps of trusted unpacks stay valid.
        inputs["trusted"] = False
    dropped = check_untrusted(module, src) if not p["trusted"] else None
    stamp = read_stamp(dest, "rootfs_archive")
    reason = "force=true" if p["force"] else rebuild_reason(stamp, inputs, os.path.isdir(dest))
    if reason is None:
        return False, art, dropped
    argv = ["tar", "--extract", "--file=" + src, "--numeric-owner", "--same-permissions", "--same-owner",
            "--xattrs", "--xattrs-include=*", "--acls", "--directory=" + dest]
    if not p["trusted"]:
        # No file capabilities (security.capability) or other privileged
        # xattrs from a tarball of unknown origin; GNU tar's own rules
        # (no absolute names, no .., symlinks created last) stay on.
        argv[argv.index("--xattrs-include=*")] = "--xattrs-include=user.*"
    if module.check_mode:
        runner.commands.append(shlex.join(argv))
        return True, art, dropped
    busy = mounts_under(dest, read_mountinfo())
    if busy:
        module.fail_json(msg="dest=%s has mounts (%s); release them first with osimage.builder.release_mounts"
                             % (dest, ", ".join(busy)))
    parent = os.path.dirname(dest) or "."
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".%s.unpack-" % os.path.basename(dest), dir=parent)
    try:
        with signals_raise():
            argv[-1] = "--directory=" + work
            runner.run(argv, "unpack %s" % src)
            if not p["trusted"]:
                # Still inside mkdtemp's 0700 directory: nobody has reached
                # the device nodes or setuid files yet.
                devices, setid = make_unprivileged(work)
                dropped = {"devices": sorted(set(dropped["devices"]) | set(devices)),
                           "setid": sorted(set(dropped["setid"]) | set(setid))}
            os.chmod(work, 0o755)
            if os.path.lexists(dest):
                old = work + ".old"
                os.rename(dest, old)
                os.rename(work, dest)
                shutil.rmtree(old)
            else:
                os.rename(work, dest)
            write_stamp(dest, "rootfs_archive", inputs)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return True, art, dropped


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            state=dict(type="str", default="packed", choices=["packed", "unpacked"]),
            compression=dict(type="str", default="gzip", choices=["gzip", "xz", "zstd", "none"]),
            exclude=dict(type="list", elements="str", default=[]),
            source_date_epoch=dict(type="int"),
            force=dict(type="bool", default=False),
            trusted=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    runner = CommandRunner(module)
    runner.bin("tar", hint="install GNU tar on the build host")
    if module.params["state"] == "packed":
        changed, art = pack(module, runner, module.params)
        module.exit_json(changed=changed, artifact=art, commands=runner.commands)
    changed, art, dropped = unpack(module, runner, module.params)
    extra = {} if dropped is None else {"dropped": dropped}
    module.exit_json(changed=changed, artifact=art, commands=runner.commands, **extra)


if __name__ == "__main__":
    main()

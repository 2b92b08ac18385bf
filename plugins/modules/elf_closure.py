#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: elf_closure
short_description: Copy binaries and exactly the shared libraries they need from an image root into another tree
description:
  - Copies O(files) from the image root O(root) into O(dest) together with their ELF library closure, as KurmaOS
    builds its ACIs and initrd - each binary is run by the root's own glibc loader (its C(PT_INTERP)) with C(--list)
    (its C(LD_TRACE_LOADED_OBJECTS) mode, what C(ldd) runs) inside the root (C(chroot)), so the libraries are the
    ones the root's loader resolves, through its C(ld.so.cache) and symlinks; each lands in O(lib_dir) under the
    name the binary asks for (its soname), the file the symlink points at copied.
  - The NSS modules glibc dlopens (O(nss), for C(nsswitch.conf)) and further O(libraries) are added with their own
    closure. A library the loader cannot find is an error naming the binary and the library.
  - Writes C(etc/ld.so.conf) (O(lib_dir)) and C(etc/ld.so.cache) with the build host's C(ldconfig -r), and the
    C(lib64) link the x86-64 loader path needs.
  - Idempotent from what is there, file by file (content, mode); check mode runs the loader (a probe) and writes
    nothing.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  root:
    description: The image root the binaries and libraries come from (a glibc root filesystem).
    type: path
    required: true
  dest:
    description: The tree to fill (an ACI's rootfs, an initrd directory). Created when missing.
    type: path
    required: true
  files:
    description:
      - Files to copy, each C(src) (a path inside O(root)) and optional C(dest) (a path inside O(dest), default
        C(src)) and C(mode) (default the source's). Symlinks are followed inside the root.
    type: list
    elements: dict
    default: []
  libraries:
    description: Further libraries by file name (C(libresolv.so.2)), looked up in the root's library directories.
    type: list
    elements: str
    default: []
  nss:
    description: NSS services whose modules glibc dlopens (V(files), V(dns)); each adds C(libnss_<service>.so.2).
    type: list
    elements: str
    default: []
  lib_dir:
    description: The directory inside O(dest) the libraries go to.
    type: str
    default: /lib
  lib64_link:
    description: Make C(/lib64) a symlink to O(lib_dir) (the x86-64 loader's path C(/lib64/ld-linux-x86-64.so.2)).
    type: bool
    default: true
  ldconfig:
    description: Write C(etc/ld.so.conf) and C(etc/ld.so.cache) (C(ldconfig -r dest)).
    type: bool
    default: true
  loader:
    description: The loader inside O(root) that lists a library's own dependencies (a library has no C(PT_INTERP)).
    type: str
    default: /lib64/ld-linux-x86-64.so.2
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root on the build host (chroot).
seealso:
  - module: osimage.builder.chroot_command
  - module: osimage.builder.initramfs
  - module: osimage.builder.aci_image
requirements:
  - chroot (Debian package coreutils)
  - ldconfig (Debian package libc-bin) for the ld.so.cache
"""

EXAMPLES = r"""
- name: The ntp ACI's busybox and chronyd with their libraries and glibc's NSS modules
  osimage.builder.elf_closure:
    root: /var/tmp/osimage/work/kurma/stage4
    dest: /var/tmp/osimage/work/kurma/aci/ntp/rootfs
    files:
      - {src: /bin/busybox, dest: /busybox}
      - {src: /usr/sbin/chronyd, dest: /chronyd}
    nss: [files, dns]
"""

RETURN = r"""
libraries:
  description: The libraries copied (or found up to date), each name, source (in the root) and dest (in dest).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: libc.so.6, source: /lib/x86_64-linux-gnu/libc.so.6, dest: /lib/libc.so.6}
    - {name: libnss_dns.so.2, source: /lib/x86_64-linux-gnu/libnss_dns.so.2, dest: /lib/libnss_dns.so.2}
files:
  description: The files copied, each src, dest and whether it is an ELF with dependencies.
  returned: always
  type: list
  elements: dict
  sample:
    - {src: /bin/busybox, dest: /busybox, elf: true, dynamic: false}
    - {src: /usr/sbin/chronyd, dest: /chronyd, elf: true, dynamic: true}
commands:
  description: The loader commands run.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/sbin/chroot /var/tmp/osimage/work/kurma/stage4 /lib64/ld-linux-x86-64.so.2 --list /usr/sbin/chronyd
    - "/usr/sbin/ldconfig -X -r /var/tmp/osimage/work/kurma/aci/ntp/rootfs -C /etc/ld.so.cache.new -f /etc/ld.so.conf"
"""

import filecmp
import os
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._elf import (
    ElfError,
    elf_info,
    find_library,
    nss_library,
    parse_trace,
    resolve_in_root,
)
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


def trace(module, runner, root, path, interp):
    """The libraries the root's loader resolves for `path` (inside root)."""
    # The loader's --list is its LD_TRACE_LOADED_OBJECTS mode (what ldd runs); the variable itself cannot be
    # put in the environment here, chroot would be the program traced.
    argv = ["chroot", root, interp, "--list", path]
    rc, out, err = runner.run(argv, "listing the libraries of %s" % path, check=False)
    if rc != 0:
        runner.fail("listing the libraries of %s in root=%s" % (path, root), argv, rc, out, err,
                    hint="is %s a glibc binary of that root?" % path)
    try:
        return parse_trace(out)
    except ElfError as exc:
        module.fail_json(msg="%s in root=%s needs libraries its root lacks (%s); install them in the root"
                             % (path, root, exc), commands=runner.commands)


def same_file(src, dest, mode):
    if os.path.islink(dest) or not os.path.isfile(dest):
        return False
    return stat.S_IMODE(os.stat(dest).st_mode) == mode and filecmp.cmp(src, dest, shallow=False)


def install(module, src, dest, mode):
    d = os.path.dirname(dest)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=d)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, mode)
        if os.path.islink(dest) or os.path.isdir(dest):
            module.fail_json(msg="dest=%s: %s is a symlink or directory, not replacing it"
                                 % (module.params["dest"], dest))
        os.rename(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            files=dict(type="list", elements="dict", default=[]),
            libraries=dict(type="list", elements="str", default=[]),
            nss=dict(type="list", elements="str", default=[]),
            lib_dir=dict(type="str", default="/lib"),
            lib64_link=dict(type="bool", default=True),
            ldconfig=dict(type="bool", default=True),
            loader=dict(type="str", default="/lib64/ld-linux-x86-64.so.2"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = CommandRunner(module)
    root, dest = os.path.abspath(p["root"]), os.path.abspath(p["dest"])
    if not os.path.isdir(root):
        module.fail_json(msg="root=%s is not a directory" % root)
    if not p["lib_dir"].startswith("/") or ".." in p["lib_dir"].split("/"):
        module.fail_json(msg="lib_dir=%s must be an absolute path inside dest" % p["lib_dir"])
    runner.require("chroot", *(["ldconfig"] if p["ldconfig"] else []))

    # What goes where: dest path (inside dest) -> (host source path, mode).
    plan = {}
    files_out = []

    def add(target, source, mode, what):
        old = plan.get(target)
        if old and old[0] != source:
            module.fail_json(msg="%s: %s would be both %s and %s" % (what, target, old[0], source))
        plan[target] = (source, mode)

    to_trace = []
    for i, f in enumerate(p["files"]):
        src = f.get("src")
        if not isinstance(src, str) or not src.startswith("/"):
            module.fail_json(msg="files[%d].src must be an absolute path inside root: %r" % (i, f))
        target = f.get("dest") or src
        if not target.startswith("/") or ".." in target.split("/"):
            module.fail_json(msg="files[%d].dest must be an absolute path inside dest: %r" % (i, f))
        host = resolve_in_root(root, src)
        if not os.path.isfile(host):
            module.fail_json(msg="files[%d].src=%s is not a file in root=%s" % (i, src, root))
        mode = int(str(f["mode"]), 8) if f.get("mode") is not None else stat.S_IMODE(os.stat(host).st_mode)
        add(target, host, mode, "files[%d]" % i)
        is_elf, interp, dynamic = elf_info(host)
        files_out.append({"src": src, "dest": target, "elf": is_elf, "dynamic": bool(interp or dynamic)})
        if interp or dynamic:
            to_trace.append((src, interp or p["loader"]))
    try:
        extra = list(p["libraries"]) + [nss_library(s) for s in p["nss"]]
    except ElfError as exc:
        module.fail_json(msg="nss: %s" % exc)
    for name in extra:
        path = find_library(root, name)
        if path is None:
            module.fail_json(msg="libraries/nss: %s is not in root=%s; install the package that provides it" % (
                name, root))
        to_trace.append((path, p["loader"]))
        add(p["lib_dir"].rstrip("/") + "/" + name, resolve_in_root(root, path), None, "libraries")

    libraries = {}
    for path, interp in to_trace:
        for name, lib in trace(module, runner, root, path, interp):
            host = resolve_in_root(root, lib)
            if not os.path.isfile(host):
                module.fail_json(msg="%s: the loader resolved %s to %s, which is not a file in root=%s"
                                     % (path, name, lib, root))
            target = p["lib_dir"].rstrip("/") + "/" + name
            add(target, host, None, "library %s of %s" % (name, path))
            libraries[target] = {"name": name, "source": lib, "dest": target}
    for target, (source, mode) in list(plan.items()):
        if mode is None:
            plan[target] = (source, stat.S_IMODE(os.stat(source).st_mode))
    for name in extra:
        target = p["lib_dir"].rstrip("/") + "/" + name
        libraries.setdefault(target, {"name": name, "source": find_library(root, name), "dest": target})

    changed = False
    for target, (source, mode) in sorted(plan.items()):
        host_dest = dest + target
        if same_file(source, host_dest, mode):
            continue
        changed = True
        if not module.check_mode:
            install(module, source, host_dest, mode)

    lib_rel = p["lib_dir"].strip("/")
    if p["lib64_link"] and lib_rel != "lib64":
        link = os.path.join(dest, "lib64")
        if not (os.path.islink(link) and os.readlink(link) == lib_rel):
            if os.path.exists(link) and not os.path.islink(link):
                module.fail_json(msg="dest=%s: lib64 exists and is not a symlink" % dest)
            changed = True
            if not module.check_mode:
                os.makedirs(dest, exist_ok=True)
                if os.path.islink(link):
                    os.unlink(link)
                os.symlink(lib_rel, link)

    if p["ldconfig"]:
        conf = os.path.join(dest, "etc", "ld.so.conf")
        want = p["lib_dir"] + "\n"
        have = open(conf).read() if os.path.isfile(conf) else None
        if have != want:
            changed = True
            if not module.check_mode:
                os.makedirs(os.path.dirname(conf), exist_ok=True)
                with open(conf + ".tmp", "w") as fh:
                    fh.write(want)
                os.chmod(conf + ".tmp", 0o644)
                os.rename(conf + ".tmp", conf)
        cache = os.path.join(dest, "etc", "ld.so.cache")
        if module.check_mode:
            changed = changed or not os.path.isfile(cache)
        else:
            # kurmaos: ldconfig -r . -C etc/ld.so.cache -f etc/ld.so.conf; -X leaves the links alone (every
            # library already has its soname as its file name). Written to a new name, kept when equal.
            runner.run(["ldconfig", "-X", "-r", dest, "-C", "/etc/ld.so.cache.new", "-f", "/etc/ld.so.conf"],
                       "ldconfig for dest=%s" % dest)
            new = cache + ".new"
            if os.path.isfile(cache) and filecmp.cmp(new, cache, shallow=False):
                os.unlink(new)
            else:
                os.chmod(new, 0o644)
                os.rename(new, cache)
                changed = True

    module.exit_json(changed=changed, libraries=sorted(libraries.values(), key=lambda x: x["dest"]),
                     files=files_out, commands=runner.commands)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_mounts
short_description: Release every mount and loop device a build left under a work directory
description:
  - Unmounts everything mounted at or below O(path), deepest first (lazily when a mount is busy), and detaches loop
    devices whose backing file lives at or below O(path).
  - Pipelines call it first, so a build that was killed (SIGKILL, a lost SSH connection, a power cut of the
    controller) does not leave the next one stuck on stale mounts and loop devices.
  - Files a killed C(chroot_command) left inside image roots under O(path) (C(resolv.conf), C(policy-rc.d)) are
    restored too when O(roots) names them.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description:
      - The work directory.
      - Must be a directory made for the build, never C(/) or a directory of the build host's own system (C(/var),
        C(/var/tmp), C(/tmp), C(/home), C(/run), ...); releasing everything under those would unmount the host's own
        mounts, or another build's. Such a path is an error before anything is released.
    type: path
    required: true
  detach_loops:
    description: Also detach loop devices backed by files under O(path).
    type: bool
    default: true
  roots:
    description:
      - Image roots under O(path) whose temporary build files should be restored.
      - Paths inside each root are resolved as C(chroot) would, so a symlink in the image never leads the restore
        onto the host's files; a root outside O(path) is an error.
    type: list
    elements: path
    default: []
  partial_files:
    description:
      - Files whose interrupted writes to remove. A build killed while it wrote one of them leaves its temporary
        beside it, named C(.<name>.<random>) as the collection's modules write them (a file or a work directory)
        or C(.ansible_tmp<random><name>) as Ansible's own copy and template do; those are removed.
      - Only names derived from these files are touched, so another file of the directory, or a build writing
        other files into it, is never affected.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root on the build host.
seealso:
  - module: osimage.builder.chroot_command
  - module: osimage.builder.disk_image
  - module: osimage.builder.root_guard
requirements:
  - umount and losetup (Debian package mount)
  - partx (Debian package util-linux)
"""

EXAMPLES = r"""
- name: Clean up after a killed build
  osimage.builder.release_mounts:
    path: /var/tmp/osimage/work
    partial_files:
      - /var/tmp/osimage/output/debian-bookworm-os-image.tgz
"""

RETURN = r"""
unmounted:
  description: Mount points released (or that would be, in check mode), deepest first.
  returned: always
  type: list
  elements: str
  sample:
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/dev/pts
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/proc
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/sys
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/dev
detached:
  description: Loop devices detached.
  returned: always
  type: list
  elements: str
  sample: [/dev/loop3]
removed:
  description: Temporaries of interrupted writes removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/var/tmp/osimage/output/.debian-bookworm-os-image.tgz.k2j4h1x9]
restored:
  description: Files restored inside image roots.
  returned: always
  type: list
  elements: str
  sample:
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/etc/resolv.conf
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/usr/sbin/policy-rc.d
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._mounts import (
    host_dir_problem,
    is_under,
    release_under,
    restore_leftovers,
)
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            detach_loops=dict(type="bool", default=True),
            roots=dict(type="list", elements="path", default=[]),
            partial_files=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    path = os.path.realpath(module.params["path"])
    problem = host_dir_problem(path)
    if problem:
        module.fail_json(msg="path=%s would release every mount of the build host under it (%s); name the work "
                             "directory of the build, for example /var/tmp/osimage/work"
                             % (module.params["path"], problem))
    for root in module.params["roots"]:
        if not is_under(os.path.realpath(root), path):
            module.fail_json(msg="roots: %s is not under path=%s; name the image roots of this work directory"
                                 % (root, module.params["path"]))
    runner = CommandRunner(module)
    unmounted, detached = release_under(runner, path, detach_loops=module.params["detach_loops"],
                                        dry_run=module.check_mode)
    restored = []
    if not module.check_mode:
        for root in module.params["roots"]:
            if os.path.isdir(root):
                restored += restore_leftovers(root)
    removed = interrupted_writes(module.params["partial_files"])
    if not module.check_mode:
        for stale in removed:
            if os.path.isdir(stale) and not os.path.islink(stale):
                shutil.rmtree(stale)
            else:
                os.unlink(stale)
    module.exit_json(changed=bool(unmounted or detached or restored or removed), unmounted=unmounted,
                     detached=detached, restored=restored, removed=removed)


def interrupted_writes(files):
    """The temporaries a killed write of each file left beside it: the
    collection's `.<name>.<random>` (files and work directories) and
    Ansible's `.ansible_tmp<random><name>`."""
    found = []
    by_dir = {}
    for path in files:
        by_dir.setdefault(os.path.dirname(os.path.abspath(path)), set()).add(os.path.basename(path))
    for directory, names in sorted(by_dir.items()):
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in sorted(entries):
            if any(entry.startswith("." + name + ".") or (entry.startswith(".ansible_tmp") and entry.endswith(name))
                   for name in names):
                found.append(os.path.join(directory, entry))
    return found


if __name__ == "__main__":
    main()

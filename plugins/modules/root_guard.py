#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: root_guard
short_description: Refuse an image root whose symlinks would lead host-side writes onto the build host
description:
  - Roles configure an image with C(ansible.builtin.copy), C(template), C(lineinfile) and C(file) on paths under the
    image root, run on the build host. The build host's kernel follows every symlink on the way, and an absolute
    symlink placed in the image (by a package or an input tarball) points at the build host's own files. An image
    whose C(/etc/ssh) is a symlink to C(/etc/ssh) would have the role rewrite the build host's C(sshd_config).
  - This module looks at every path a role writes from the host, before the stage that writes it, and fails when a
    component would lead outside the root on the host. It changes nothing.
  - For each path in O(paths), every directory on the way must stay inside O(root) when resolved on the host; the
    last component, when it is a symlink, must too (C(lineinfile) writes through it), unless the path is in
    O(replaced) (written with C(file state=link) or another module that replaces the link itself). A path ending
    in C(/*) stands for every entry of that directory.
version_added: 0.2.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  root:
    description: The image root.
    type: path
    required: true
  paths:
    description: Absolute paths inside the image that the role writes from the build host.
    type: list
    elements: str
    required: true
  replaced:
    description: Paths of O(paths) whose last component is replaced, not followed, when it is a symlink.
    type: list
    elements: str
    default: []
  what:
    description: Who asks (a stage name), for the message.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    details: It only reads, so it does the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The collection's own modules resolve paths inside an image as C(chroot) would (see C(chroot_command)); this guard
    covers the stock modules a role uses on image paths.
seealso:
  - module: osimage.builder.chroot_command
  - module: osimage.builder.release_mounts
requirements:
  - Python 3 on the build host; the module runs no external program.
"""

EXAMPLES = r"""
- name: Refuse an image whose symlinks lead out of it
  osimage.builder.root_guard:
    root: /var/tmp/osimage/work/os_image/chroot
    paths: [/etc/ssh/sshd_config, /etc/pam.d/*, /etc/localtime]
    replaced: [/etc/localtime]
"""

RETURN = r"""
checked:
  description: How many existing paths were looked at.
  returned: always
  type: int
  sample: 57
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._mounts import is_under


def escape(root, path, follow_last):
    """The first component of `path` (inside `root`) that the host would
    follow out of `root`, as (component, where it leads), or None."""
    parts = [c for c in path.split("/") if c not in ("", ".")]
    current = root
    for i, comp in enumerate(parts):
        current = os.path.join(current, comp)
        last = i == len(parts) - 1
        if not os.path.lexists(current):
            return None
        if os.path.islink(current) and (follow_last or not last):
            target = os.path.realpath(current)
            if not is_under(target, root):
                return current[len(root):] or "/", os.readlink(current)
    return None


def expand(root, path):
    if not path.endswith("/*"):
        return [path]
    top = path[:-2]
    directory = os.path.join(root, top.lstrip("/"))
    if os.path.isdir(directory) and is_under(os.path.realpath(directory), root):
        return [top] + [top.rstrip("/") + "/" + n for n in sorted(os.listdir(directory))]
    return [top]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            paths=dict(type="list", elements="str", required=True),
            replaced=dict(type="list", elements="str", default=[]),
            what=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    root = os.path.realpath(p["root"])
    if root == "/":
        module.fail_json(msg="root=%s is the build host's own /, not an image root" % p["root"])
    if not os.path.isdir(root):
        # Nothing to write through yet (check mode before the root is made).
        module.exit_json(changed=False, checked=0, msg="root=%s does not exist yet" % p["root"])
    bad = [x for x in p["paths"] + p["replaced"] if not x.startswith("/") or ".." in x.split("/")]
    if bad:
        module.fail_json(msg="paths must be absolute paths inside the image without '..': %s" % ", ".join(bad))
    replaced = set(p["replaced"])
    escapes, checked = {}, 0
    for pattern in p["paths"]:
        for path in expand(root, pattern):
            checked += 1
            found = escape(root, path, follow_last=path not in replaced and pattern not in replaced)
            if found:
                escapes.setdefault(found, []).append(path)
    problems = ["%s is a symlink to %s, which leads out of the image on the build host (writing %s)"
                % (link, target, ", ".join(sorted(set(paths)))) for (link, target), paths in sorted(escapes.items())]
    if problems:
        module.fail_json(
            msg="%sthe image root %s is refused: %s. A package or input tarball placed these symlinks; writing "
                "through them would change the build host's own files"
                % ((p["what"] + ": ") if p["what"] else "", p["root"], "; ".join(problems)),
            problems=problems)
    module.exit_json(changed=False, checked=checked)


if __name__ == "__main__":
    main()

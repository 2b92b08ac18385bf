#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: build_dirs
short_description: Make a build's work, cache and output directories, private, refusing unsafe ones
description:
  - A build writes an image root holding C(/etc/shadow), tarballs and clean-up paths into its directories. The
    defaults live under the world-writable C(/var/tmp), where anyone could have made C(/var/tmp/osimage) first and
    then swap what the build writes there. This module checks each directory and its parents before anything is
    written, and makes the missing ones.
  - A directory itself must belong to root (the user running the build) and be writable by no one else; a parent
    must be writable by no one else unless it is sticky (like C(/var/tmp)); whatever sits in a sticky
    world-writable parent must belong to root; a symbolic link counts only when root made it.
  - Every problem is reported at once, each naming the variable the user set.
version_added: 0.2.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  dirs:
    description:
      - Variable name (as the user sets it, for the messages) to C(path) and C(mode) (octal string, the mode a
        missing directory is made with).
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    details: In check mode nothing is made; RV(created) lists what would be.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Parents that do not exist are made with mode C(0755).
seealso:
  - module: osimage.builder.build_stamp
  - module: osimage.builder.release_mounts
requirements:
  - Python 3 on the build host; the module runs no external program.
"""

EXAMPLES = r"""
- name: The OS image build's directories
  osimage.builder.build_dirs:
    dirs:
      os_image_work_dir: {path: /var/tmp/osimage/work, mode: "0700"}
      os_image_cache_dir: {path: /var/cache/osimage, mode: "0755"}
      os_image_output_dir: {path: /srv/images, mode: "0700"}
"""

RETURN = r"""
created:
  description: Directories made (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/var/tmp/osimage, /var/tmp/osimage/work, /var/cache/osimage, /srv/images]
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule


def chain(path):
    """/a, /a/b, /a/b/c for /a/b/c."""
    parts = [c for c in os.path.normpath(path).split("/") if c]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def problems_of(var, path, uid, lstat=os.lstat):
    """What makes `path` (set by the user as `var`) unsafe for a build run
    by `uid`; pure apart from lstat."""
    where = "%s=%s" % (var, path)
    found, sticky = [], False
    links = chain(path)
    for i, p in enumerate(links):
        own = i == len(links) - 1
        try:
            st = lstat(p)
        except FileNotFoundError:
            break
        link = stat.S_ISLNK(st.st_mode)
        if st.st_uid not in (0, uid) and (link or own or sticky):
            found.append("%s: %s belongs to uid %d, not root, who could swap what the build writes there; remove it, "
                         "or set %s to a directory of root" % (where, p, st.st_uid, var))
        elif not link and not stat.S_ISDIR(st.st_mode):
            found.append("%s: %s is not a directory" % (where, p))
        elif not link and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and (own or not st.st_mode & stat.S_ISVTX):
            found.append("%s: %s is writable by group or others (mode %04o); chmod go-w it, or set %s elsewhere"
                         % (where, p, stat.S_IMODE(st.st_mode), var))
        sticky = not link and bool(st.st_mode & stat.S_IWOTH) and bool(st.st_mode & stat.S_ISVTX)
    return found


def main():
    module = AnsibleModule(argument_spec=dict(dirs=dict(type="dict", required=True)), supports_check_mode=True)
    uid = os.geteuid()
    wanted, problems = [], []
    for var, spec in module.params["dirs"].items():
        spec = spec if isinstance(spec, dict) else {"path": spec}
        path = str(spec.get("path") or "")
        try:
            mode = int(str(spec.get("mode", "0700")), 8)
        except ValueError:
            module.fail_json(msg="dirs.%s.mode=%s is not an octal mode" % (var, spec.get("mode")))
        if not path.startswith("/"):
            problems.append("%s=%s must be an absolute path" % (var, path))
            continue
        problems += problems_of(var, path, uid)
        wanted.append((os.path.normpath(path), mode))
    if problems:
        module.fail_json(msg="; ".join(problems), problems=problems)
    created = []
    for path, mode in wanted:
        for p in chain(path):
            if not os.path.lexists(p) and p not in created:
                created.append(p)
                if not module.check_mode:
                    os.mkdir(p, mode if p == path else 0o755)
                    os.chmod(p, mode if p == path else 0o755)
    module.exit_json(changed=bool(created), created=created)


if __name__ == "__main__":
    main()

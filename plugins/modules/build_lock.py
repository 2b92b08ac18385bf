#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: build_lock
short_description: Hold a work directory's lock for a whole build, across its tasks
description:
  - Two builds on one build host with the same work directory would interleave their stages and release each
    other's mounts. With O(state=present) the build takes the exclusive lock of O(path) (C(flock) on
    C(<path>/.osimage.lock), the lock M(osimage.builder.kernel_build) takes on its C(build_dir)) and keeps it until
    O(state=absent) releases it; the pipeline runner (C(osimage.builder.pipeline)) takes it in its plan and releases
    it in its summary or its rescue.
  - A second build waits for the lock up to O(timeout) seconds, then fails naming the directory and the build that
    holds it (its pid, start time and command line, and the holder's pid).
  - Each task is its own process, so the lock is kept by a small holder process started here, detached from the
    task. It ends when released, or by itself when the build that took it is gone (within a second), so a killed
    build (SIGKILL, a lost connection) never leaves a held lock; the kernel releases a flock when its holder exits.
  - The build is the topmost C(ansible-playbook) (or C(ansible)) ancestor of the task on a local connection, the
    nearest C(sshd) session process over SSH, else the session leader, or O(owner_pid), together with every process
    it started (Ansible runs its workers in sessions of their own, so a task left running after only the controller
    was killed is followed through the process tree and keeps the lock until it ends). Over SSH the lock lives as
    long as the SSH connection that took it; with OpenSSH's C(ControlPersist) (the C(ssh) connection plugin's
    default) that is the whole play, and a killed controller frees it when the master connection ends. With a
    connection per task (C(paramiko)) the lock ends with the task that took it, so it guards nothing later; use the
    C(ssh) connection for builds that share a build host. A task still running on the build host after its SSH
    connection was lost keeps the lock while it runs (it was started by the sshd session).
version_added: 0.2.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description:
      - The directory to lock, the build's work directory. It must exist (the runner makes it first).
    type: path
    required: true
  state:
    description:
      - V(present) takes the lock for this build (a no-op when this build holds it already); V(absent) releases this
        build's lock (a no-op when it holds none; another build's lock is never touched).
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description:
      - Seconds to wait for another build's lock before failing.
      - Default the environment variable C(OSIMAGE_LOCK_TIMEOUT) of the module, else 3 hours.
    type: float
  what:
    description: The directory's name for people in the error message (V(OS image work directory)).
    type: str
    default: directory
  owner_pid:
    description:
      - The process whose life is the build's, when the module's own guess (see the description) is wrong, for
        example a wrapper that runs C(ansible-playbook) per stage. The lock ends when it ends.
    type: int
attributes:
  check_mode:
    support: full
    details: Check mode takes no lock and creates no lock file; it says whether the lock is free now (RV(free)).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The lock is advisory, between builds that take it (the pipelines and M(osimage.builder.kernel_build)).
  - The holder is found by the pid and start time recorded in the lock file, so a reused pid is never stopped.
seealso:
  - module: osimage.builder.kernel_build
  - module: osimage.builder.release_mounts
requirements:
  - Linux (flock(2), /proc); runs no program
"""

EXAMPLES = r"""
- name: Lock the work directory for this build
  osimage.builder.build_lock:
    path: /var/tmp/osimage/work
    what: OS image work directory
    timeout: 600

- name: Release it at the end
  osimage.builder.build_lock:
    path: /var/tmp/osimage/work
    state: absent
"""

RETURN = r"""
lock_file:
  description: The lock file.
  returned: always
  type: str
  sample: /var/tmp/osimage/work/.osimage.lock
held:
  description: Whether this build holds the lock after the task (in check mode, whether it would).
  returned: always
  type: bool
  sample: true
free:
  description: Whether the lock was free when the task started (check mode's prediction for O(state=present)).
  returned: always
  type: bool
  sample: true
holder:
  description: The record of the build holding the lock (this one's after O(state=present)), empty when none.
  returned: always
  type: dict
  sample:
    pid: 41230
    pid_start: 881234
    owner: ansible controller
    build: python3 ansible-playbook playbooks/build-os-image.yml
    started: "2026-12-01T16:30:00Z"
    locked: "2026-12-01T16:30:04Z"
    holder_pid: 41311
    holder_start: 881390
    directory: /var/tmp/osimage/work
waited:
  description: Seconds spent waiting for another build's lock.
  returned: always
  type: float
  sample: 0.0
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._lock import (
    TIMEOUT_ENV,
    build_owner,
    held_by,
    hold_for_build,
    holder_info,
    is_free,
    lock_path,
    release_build_lock,
    timeout_from_env,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            timeout=dict(type="float"),
            what=dict(type="str", default="directory"),
            owner_pid=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = os.path.realpath(p["path"])
    result = dict(changed=False, lock_file=lock_path(path), held=False, free=True, holder={}, waited=0.0)
    if p["timeout"] is not None and p["timeout"] < 0:
        module.fail_json(msg="timeout=%s: give the seconds to wait, 0 or more" % p["timeout"], **result)
    owner = build_owner(p["owner_pid"])
    if owner is None:
        module.fail_json(msg="owner_pid=%s is no running process; name the process whose life is the build's"
                             % p["owner_pid"] if p["owner_pid"] else
                             "found no process of the build to tie the lock of %s to (no ansible-playbook or sshd "
                             "ancestor, no session leader); give owner_pid" % path, **result)
    exists = os.path.isdir(path)
    if not exists and not (module.check_mode or p["state"] == "absent"):
        module.fail_json(msg="path=%s is not a directory; create the work directory first" % p["path"], **result)
    result["free"] = is_free(path) if exists else True
    mine = held_by(path, owner) if exists else None

    if p["state"] == "absent":
        result["holder"] = mine or {}
        if mine:
            result["changed"] = True
            if not module.check_mode and not release_build_lock(mine):
                module.fail_json(msg="the lock of %s was not released: its holder pid %s did not end"
                                     % (path, mine["holder_pid"]), **result)
        module.exit_json(**result)

    if mine:
        result.update(held=True, holder=mine)
        module.exit_json(**result)
    if module.check_mode:
        result.update(changed=True, held=True, holder={} if result["free"] else holder_info(path))
        module.exit_json(**result)
    timeout = p["timeout"] if p["timeout"] is not None else timeout_from_env()
    began = time.monotonic()
    record = hold_for_build(path, owner, timeout=timeout, what=p["what"],
                            fail=lambda **kw: module.fail_json(**dict(result, **kw)),
                            hint="the task's timeout=<seconds>, else %s, sets the wait" % TIMEOUT_ENV)
    result.update(changed=True, held=True, holder=record, waited=round(time.monotonic() - began, 1))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroot_command
short_description: Run a command or manage packages inside an image root
description:
  - Runs a command inside an image root (chroot) with C(/proc), C(/sys), C(/dev), C(/dev/pts) and the build host's
    C(resolv.conf) provided, and with daemons kept from starting (a C(policy-rc.d) that exits 101).
  - Everything it sets up is torn down afterwards, deepest mount first, also when the command fails, when the module
    is interrupted (SIGINT, SIGTERM, SIGHUP) and when a previous run was killed (left-over mounts under the root are
    released before anything else).
  - With O(packages), installs or purges Debian packages with apt inside the root; only what is missing (or present,
    for purge) is touched, so a second run reports no change.
  - The build host is never at risk from what the image holds. Every path the module touches inside the root (the
    mount points, C(resolv.conf), C(policy-rc.d), the apt cache mount, O(creates), O(removes), the dpkg status) is
    resolved the way C(chroot) resolves it, so a symlink in the image such as C(/etc -> /etc) or C(/proc -> /)
    stays inside the root and never leads a write or a mount onto the host's own files.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - osimage.builder.progress
options:
  root:
    description:
      - The image root directory.
      - Must not be C(/) or a directory of the build host's own system (C(/var), C(/var/tmp), C(/tmp), C(/home), ...),
        because everything mounted under the root is released before and after the command.
    type: path
    required: true
  cmd:
    description: Shell command line, run with C(/bin/sh -c) inside the root. Mutually exclusive with O(argv).
    type: str
  argv:
    description: Command as a list of arguments. Mutually exclusive with O(cmd).
    type: list
    elements: str
  stdin:
    description: Data passed to the command on standard input.
    type: str
  creates:
    description:
      - A path inside the root; when it exists the command is not run.
      - Resolved inside the root as C(chroot) would (symlinks in the image stay in the image); a path that climbs
        out of the root with C(..) is an error.
    type: str
  removes:
    description:
      - A path inside the root; when it does not exist the command is not run.
      - Resolved like O(creates).
    type: str
  chdir:
    description: Working directory inside the root.
    type: str
    default: /
  environment:
    description: Extra environment variables for the command.
    type: dict
    default: {}
  packages:
    description: Debian packages to install (O(state=present)) or purge (O(state=absent)) with apt inside the root.
    type: list
    elements: str
    default: []
  state:
    description: With O(packages), whether they should be installed or purged.
    type: str
    choices: [present, absent]
    default: present
  install_recommends:
    description: With O(packages), whether apt installs recommended packages.
    type: bool
    default: false
  apt_cache_dir:
    description:
      - A build-host directory bind-mounted on the root's C(/var/cache/apt/archives) while apt runs, so that
        downloaded packages are kept and reused between builds.
    type: path
  update_cache:
    description: Run C(apt-get update) before installing (only when something has to be installed).
    type: bool
    default: true
  mount_proc:
    description: Mount C(/proc), C(/sys), C(/dev) and C(/dev/pts) inside the root.
    type: bool
    default: true
  resolv_conf:
    description: Put the build host's C(/etc/resolv.conf) in the root for the command, and restore the root's own after.
    type: bool
    default: true
  policy_rc_d:
    description: Keep daemons from starting (C(/usr/sbin/policy-rc.d) exiting 101) while the command runs.
    type: bool
    default: true
attributes:
  check_mode:
    support: partial
    details:
      - With O(packages), check mode reports exactly which packages would change.
      - What a command changes cannot be predicted without running it. With a command, check mode runs nothing,
        reports a change unless O(creates) or O(removes) say it would be skipped, and returns the chroot command
        line that would run as RV(commands).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root on the build host.
  - Packages are installed with the image's own apt-get inside the root, never with the build host's.
seealso:
  - module: osimage.builder.rootfs_bootstrap
  - module: osimage.builder.rootfs_archive
  - module: osimage.builder.release_mounts
  - module: osimage.builder.root_guard
requirements:
  - chroot (Debian package coreutils)
  - mount and umount (Debian package mount)
  - for O(packages), apt-get inside the image root (Debian package apt, in every Debian or Ubuntu root), never the
    build host's
"""

EXAMPLES = r"""
- name: Install OpenSSH and rsyslog inside the image, reusing downloaded packages
  osimage.builder.chroot_command:
    root: /var/tmp/osimage/chroot
    packages: [openssh-server, rsyslog]
    apt_cache_dir: /var/cache/osimage/debs/debian-bookworm-amd64

- name: Create the vcap user once
  osimage.builder.chroot_command:
    root: /var/tmp/osimage/chroot
    cmd: useradd -m --uid 1000 vcap
    creates: /home/vcap

- name: Read the package list without changing anything
  osimage.builder.chroot_command:
    root: /var/tmp/osimage/chroot
    argv: [dpkg-query, -W]
  changed_when: false
"""

RETURN = r"""
rc:
  description: Exit status of the command (0 for a package operation).
  returned: always
  type: int
  sample: 0
stdout:
  description: Standard output of the command.
  returned: always
  type: str
  sample: "Reading package lists...\nBuilding dependency tree...\nSetting up openssh-server (1:9.2p1-2+deb12u3) ...\n"
stderr:
  description: Standard error of the command.
  returned: always
  type: str
  sample: "debconf: delaying package configuration, since apt-utils is not installed\n"
skipped_reason:
  description: Why the command was not run (O(creates) exists, O(removes) missing, packages already in state).
  returned: when nothing ran
  type: str
  sample: creates=/home/vcap exists in the root
packages_changed:
  description: The packages installed or purged.
  returned: with O(packages)
  type: list
  elements: str
  sample: [openssh-server, rsyslog]
released:
  description: Mounts left over from an earlier, killed run that were released first.
  returned: always
  type: list
  elements: str
  sample:
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/dev/pts
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/dev
    - /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot/etc/resolv.conf
commands:
  description: The commands run, or in check mode the ones that would run.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/sbin/chroot /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot apt-get update -q
    - "/usr/sbin/chroot /var/tmp/osimage/work/os_image/debian-bookworm-amd64/chroot apt-get install -y -q
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends
      openssh-server rsyslog"
"""

import os
import shlex

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._debian import (
    installed_names,
    invalid_packages,
    parse_dpkg_status,
)
from ansible_collections.osimage.builder.plugins.module_utils._lock import cache_lock
from ansible_collections.osimage.builder.plugins.module_utils._mounts import (
    Interrupted,
    chroot_mounts,
    host_dir_problem,
    release_under,
    resolve_in_root,
    restore_leftovers,
    signals_raise,
)
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}


def inside(root, path):
    """The host path of `path` in the image, resolved as chroot would."""
    return resolve_in_root(root, path)


def installed_in(root):
    try:
        with open(inside(root, "/var/lib/dpkg/status")) as f:
            return installed_names(parse_dpkg_status(f.read()))
    except OSError:
        return set()


def package_plan(wanted, installed, state):
    """The packages apt must act on: missing ones to install, present ones to purge."""
    bare = [(w, w.split("=")[0].split(":")[0]) for w in wanted]
    if state == "present":
        return [w for w, name in bare if name not in installed]
    return [name for _w, name in bare if name in installed]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            progress_log=dict(type="path"),
            root=dict(type="path", required=True),
            cmd=dict(type="str"),
            argv=dict(type="list", elements="str"),
            stdin=dict(type="str"),
            creates=dict(type="str"),
            removes=dict(type="str"),
            chdir=dict(type="str", default="/"),
            environment=dict(type="dict", default={}),
            packages=dict(type="list", elements="str", default=[]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            install_recommends=dict(type="bool", default=False),
            apt_cache_dir=dict(type="path"),
            update_cache=dict(type="bool", default=True),
            mount_proc=dict(type="bool", default=True),
            resolv_conf=dict(type="bool", default=True),
            policy_rc_d=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("cmd", "argv"), ("cmd", "packages"), ("argv", "packages")],
        required_one_of=[("cmd", "argv", "packages")],
        supports_check_mode=True,
    )
    p = module.params
    root = os.path.realpath(p["root"])
    runner = CommandRunner(module)
    result = dict(changed=False, rc=0, stdout="", stderr="", released=[], commands=runner.commands)

    # Before anything is released: sweeping the mounts under / or /var/tmp
    # would take the host's own mounts, or another build's, with it.
    problem = host_dir_problem(root)
    if problem:
        module.fail_json(msg="root=%s cannot be an image root: %s; name the image root directory, for example "
                             "/var/tmp/osimage/work/chroot" % (p["root"], problem))
    if not os.path.isdir(root) or not os.path.exists(inside(root, "/bin/sh")):
        module.fail_json(msg="root=%s is not an image root (no /bin/sh inside); bootstrap it first "
                             "with osimage.builder.rootfs_bootstrap" % p["root"])
    tests = {}
    for key in ("creates", "removes"):
        if p[key]:
            try:
                tests[key] = resolve_in_root(root, p[key], follow_last=False, strict=True)
            except ValueError as exc:
                module.fail_json(msg="%s=%s: %s; name a path inside the root" % (key, p[key], exc))
    if p["packages"]:
        bad = invalid_packages(p["packages"])
        if bad:
            module.fail_json(msg="packages holds invalid package names: %s" % ", ".join(bad))

    # Leftovers of a killed run come first: they are the reason mounts leak.
    if not module.check_mode:
        released, _loops = release_under(runner, root, detach_loops=False)
        result["released"] = released + restore_leftovers(root)

    if p["creates"] and os.path.lexists(tests["creates"]):
        result["skipped_reason"] = "creates=%s exists in the root" % p["creates"]
        module.exit_json(**result)
    if p["removes"] and not os.path.lexists(tests["removes"]):
        result["skipped_reason"] = "removes=%s does not exist in the root" % p["removes"]
        module.exit_json(**result)

    commands = []
    env = dict(APT_ENV)
    env.update({k: str(v) for k, v in p["environment"].items()})
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    chroot = ["chroot", root]
    if p["packages"]:
        todo = package_plan(p["packages"], installed_in(root), p["state"])
        result["packages_changed"] = todo
        if not todo:
            result["skipped_reason"] = "packages already %s" % ("installed" if p["state"] == "present" else "absent")
            module.exit_json(**result)
        if p["state"] == "present":
            if p["update_cache"]:
                commands.append(chroot + ["apt-get", "update", "-q"])
            install = ["apt-get", "install", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef",
                       "-o", "Dpkg::Options::=--force-confold"]
            if not p["install_recommends"]:
                install.append("--no-install-recommends")
            commands.append(chroot + install + todo)
        else:
            commands.append(chroot + ["apt-get", "purge", "-y", "-q"] + todo)
            commands.append(chroot + ["apt-get", "autoremove", "--purge", "-y", "-q"])
        if not p["apt_cache_dir"]:
            # With a cache dir the .debs live outside the image; without one, keep the image small.
            commands.append(chroot + ["apt-get", "clean"])
    elif p["cmd"] is not None:
        commands.append(chroot + ["/bin/sh", "-c", "cd %s && %s" % (shlex.quote(p["chdir"]), p["cmd"])])
    else:
        commands.append(chroot + ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", p["chdir"]] + p["argv"])

    if module.check_mode:
        runner.commands.extend(shlex.join(c) for c in commands)
        result["changed"] = True
        module.exit_json(**result)

    binds = {}
    if p["packages"] and p["apt_cache_dir"]:
        binds[p["apt_cache_dir"]] = "/var/cache/apt/archives"
    what = "apt %s inside %s" % ("install" if p["state"] == "present" else "purge", root) \
        if p["packages"] else "command inside %s" % root
    try:
        # Builds sharing apt_cache_dir take turns: apt writes the .debs into it.
        with signals_raise(), cache_lock(binds and p["apt_cache_dir"], "apt_cache_dir", module.fail_json):
            with chroot_mounts(runner, root, proc=p["mount_proc"], sys=p["mount_proc"], dev=p["mount_proc"],
                               resolv_conf=p["resolv_conf"], policy_rc_d=p["policy_rc_d"], binds=binds):
                for argv in commands:
                    rc, out, err = runner.run(argv, what, env=env, data=p["stdin"], check=False)
                    result.update(rc=rc, stdout=out, stderr=err)
                    if rc != 0:
                        break
    except Interrupted as exc:
        module.fail_json(msg="%s was interrupted (%s); all mounts were released" % (what, exc), **result)
    except ValueError as exc:
        # resolve_in_root: a symlink loop, or a path swapped while it was set up.
        module.fail_json(msg="setting up root=%s failed: %s; all mounts were released" % (p["root"], exc), **result)
    if result["rc"] != 0:
        hint = "check that the package names exist in the root's apt sources" if p["packages"] else None
        runner.fail(what, argv, result["rc"], result["stdout"], result["stderr"], hint=hint,
                    released=result["released"])
    result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rootfs_bootstrap
short_description: Bootstrap a Debian or Ubuntu root filesystem with mmdebstrap or debootstrap
description:
  - Builds a root filesystem for a Debian or Ubuntu suite into a directory or a tarball.
  - Uses C(mmdebstrap) when present (the fast path) and C(debootstrap) otherwise or on request.
  - Signature checking is always enforced against O(keyring).
  - The build is keyed on a hash of its inputs, kept in its record (V(rootfs_bootstrap)) of the stamp
    C(<dest>.stamp.json) with the tarball's sha256 and the installed packages; the same inputs do nothing, changed
    inputs rebuild and the result says which input changed.
  - The artifact is built under a temporary name in the destination directory and moved into place only when complete.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - osimage.builder.progress
options:
  dest:
    description:
      - Where the root filesystem goes. A path ending in C(.tar), C(.tar.gz), C(.tgz), C(.tar.zst) or C(.tar.xz) is a
        tarball, anything else a directory (see O(format)).
    type: path
    required: true
  format:
    description: Output format. V(auto) decides from the extension of O(dest).
    type: str
    choices: [auto, directory, tar]
    default: auto
  suite:
    description: Suite codename, for example V(bookworm) or V(jammy).
    type: str
    required: true
  variant:
    description: Bootstrap variant (V(minbase), V(buildd), V(important), V(standard), ...).
    type: str
    default: minbase
  architecture:
    description: Debian architecture of the root filesystem.
    type: str
    default: amd64
  components:
    description: Archive components.
    type: list
    elements: str
    default: [main]
  include:
    description: Extra packages to install.
    type: list
    elements: str
    default: []
  exclude:
    description:
      - Packages not to have in the result. debootstrap leaves them out (C(--exclude)); with mmdebstrap they are purged
        in a customize hook, since mmdebstrap has no exclude option.
    type: list
    elements: str
    default: []
  mirror:
    description:
      - Archive URL. Default for a Debian suite is the build host's own Debian mirror from its apt sources; otherwise
        the bootstrap tool's own default.
    type: str
  keyring:
    description:
      - OpenPGP keyring the archive's Release file is checked against. Default is the distribution's archive keyring
        under C(/usr/share/keyrings). A missing keyring is an error; signature checking cannot be turned off.
    type: path
  tool:
    description: Bootstrap tool.
    type: str
    choices: [auto, mmdebstrap, debootstrap]
    default: auto
  package_cache_dir:
    description: Directory where downloaded .deb files are kept and reused between builds.
    type: path
  check_mirror:
    description: Fetch C(dists/<suite>/Release) from the mirror before building, to fail early with a clear message.
    type: bool
    default: true
  force:
    description: Rebuild even when the inputs did not change.
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
  - Needs root on the build host.
  - Downloaded packages are kept in the package cache and reused by later builds; the bootstrap itself is keyed
    on its inputs.
seealso:
  - module: osimage.builder.chroot_command
  - module: osimage.builder.rootfs_archive
  - module: osimage.builder.archive_keyring
  - module: osimage.builder.release_mounts
requirements:
  - mmdebstrap (Debian package mmdebstrap), the fast path, or debootstrap (Debian package debootstrap)
  - gpgv (Debian package gpgv) for the signature checks, dpkg (Debian package dpkg)
  - tar (Debian package tar) for a tarball made with debootstrap
  - the keyring of the suite, from Debian package debian-archive-keyring or made by
    M(osimage.builder.archive_keyring)
"""

EXAMPLES = r"""
- name: Bootstrap a minimal Debian bookworm into a cached tarball
  osimage.builder.rootfs_bootstrap:
    dest: /var/cache/osimage/rootfs/debian-bookworm-minbase.tar
    suite: bookworm
    include: [systemd-sysv, openssh-server]
    package_cache_dir: /var/cache/osimage/debs/debian-bookworm-amd64

- name: Ubuntu jammy into a directory, with Ubuntu's keyring taken from its package
  osimage.builder.rootfs_bootstrap:
    dest: /var/tmp/osimage/ubuntu-jammy
    suite: jammy
    components: [main, universe]
    keyring: /var/cache/osimage/keyrings/ubuntu-archive-keyring.gpg
"""

RETURN = r"""
path:
  description: The root filesystem directory or tarball.
  returned: always
  type: str
  sample: /var/cache/osimage/rootfs/debian-bookworm-amd64-minbase.tar
artifact:
  description: The tarball as path, size and sha256 (for a directory, path and the size of its files).
  returned: success and not check mode
  type: dict
  sample:
    path: /var/cache/osimage/rootfs/debian-bookworm-amd64-minbase.tar
    size: 197527040
    sha256: "333c04dd151a2a6831c039cb9a651df29198be8a04e16ce861d4b6a34a11c954"
packages:
  description: Installed packages.
  returned: success and not check mode
  type: list
  elements: dict
  sample: [{"name": "apt", "version": "2.6.1", "architecture": "amd64"}]
inputs_digest:
  description: The stamp record's digest (sha256 of the canonical JSON of the inputs and versions).
  returned: always
  type: str
  sample: "487716dc57942df25ce85ea1a2e848af37352bf73ceec992bdf9b8d81229ef3c"
rebuild_reason:
  description: Why the root filesystem was (or in check mode would be) built; null when it was up to date.
  returned: always
  type: str
  sample: "inputs changed: include"
mirror:
  description: The mirror used (null when left to the tool's default).
  returned: always
  type: str
  sample: http://deb.example.org/debian
tool:
  description: The bootstrap tool used.
  returned: always
  type: str
  sample: mmdebstrap
commands:
  description: The commands run, or in check mode the ones that would run.
  returned: always
  type: list
  elements: str
  sample:
    - "/usr/bin/mmdebstrap --mode=root --variant=minbase --architectures=amd64 --components=main
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg --include=systemd-sysv,openssh-server
      --skip=download/empty --skip=essential/unlink '--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/'
      '--setup-hook=sync-in /var/cache/osimage/debs/debian-bookworm-amd64 /var/cache/apt/archives/'
      '--customize-hook=sync-out /var/cache/apt/archives /var/cache/osimage/debs/debian-bookworm-amd64'
      '--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb'
      '--customize-hook=copy-out /var/lib/dpkg/status
      /var/cache/osimage/rootfs/.debian-bookworm-amd64-minbase.tar.build-q8r2m4xz/meta'
      bookworm
      /var/cache/osimage/rootfs/.debian-bookworm-amd64-minbase.tar.build-q8r2m4xz/debian-bookworm-amd64-minbase.tar
      http://deb.example.org/debian"
"""

import os
import shlex
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.osimage.builder.plugins.module_utils._debian import (
    DEFAULT_KEYRINGS,
    distribution_of,
    host_mirror,
    invalid_packages,
    known_suites,
    parse_dpkg_status,
    read_host_sources,
)
from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    read_stamp,
    rebuild_reason,
    record_digest,
    sha256_file,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._lock import cache_lock
from ansible_collections.osimage.builder.plugins.module_utils._mounts import release_under, signals_raise
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz")


def output_format(dest, fmt):
    if fmt != "auto":
        return fmt
    return "tar" if dest.endswith(TAR_SUFFIXES) else "directory"


def mmdebstrap_argv(p, target, mirror, status_out):
    argv = ["mmdebstrap", "--mode=root", "--variant=" + p["variant"], "--architectures=" + p["architecture"],
            "--components=" + ",".join(p["components"]), "--keyring=" + p["keyring"]]
    if p["include"]:
        argv.append("--include=" + ",".join(p["include"]))
    if p["exclude"]:
        # mmdebstrap has no --exclude: purge after the fact, failing if a name is unknown.
        argv.append("--customize-hook=chroot \"$1\" env DEBIAN_FRONTEND=noninteractive apt-get -y purge "
                    + " ".join(shlex.quote(x) for x in p["exclude"]))
    cache = p["package_cache_dir"]
    if cache:
        # mmdebstrap(1) "keep the downloaded packages" recipe.
        argv += ["--skip=download/empty", "--skip=essential/unlink",
                 "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
                 "--setup-hook=sync-in " + shlex.quote(cache) + " /var/cache/apt/archives/",
                 "--customize-hook=sync-out /var/cache/apt/archives " + shlex.quote(cache),
                 # The image keeps no .deb: they live in the cache now.
                 "--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb"]
    argv.append("--customize-hook=copy-out /var/lib/dpkg/status " + shlex.quote(os.path.dirname(status_out)))
    argv += [p["suite"], target]
    if mirror:
        argv.append(mirror)
    return argv


def debootstrap_argv(p, target, mirror):
    argv = ["debootstrap", "--variant=" + p["variant"], "--arch=" + p["architecture"],
            "--components=" + ",".join(p["components"]), "--keyring=" + p["keyring"],
            "--force-check-gpg"]
    if p["include"]:
        argv.append("--include=" + ",".join(p["include"]))
    if p["exclude"]:
        argv.append("--exclude=" + ",".join(p["exclude"]))
    if p["package_cache_dir"]:
        argv.append("--cache-dir=" + p["package_cache_dir"])
    argv += [p["suite"], target]
    if mirror:
        argv.append(mirror)
    return argv


def probe_mirror(module, mirror, suite):
    url = "%s/dists/%s/Release" % (mirror.rstrip("/"), suite)
    try:
        open_url(url, timeout=20, validate_certs=True).read(1)
    except Exception as exc:  # any failure here means the build would fail later
        module.fail_json(msg="mirror=%s is not usable for suite=%s: fetching %s failed: %s. "
                             "Set mirror= to an archive the build host can reach." % (mirror, suite, url, exc))


def tree_size(path):
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def main():
    module = AnsibleModule(
        argument_spec=dict(
            progress_log=dict(type="path"),
            dest=dict(type="path", required=True),
            format=dict(type="str", default="auto", choices=["auto", "directory", "tar"]),
            suite=dict(type="str", required=True),
            variant=dict(type="str", default="minbase"),
            architecture=dict(type="str", default="amd64"),
            components=dict(type="list", elements="str", default=["main"]),
            include=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            mirror=dict(type="str"),
            keyring=dict(type="path", no_log=False),
            tool=dict(type="str", default="auto", choices=["auto", "mmdebstrap", "debootstrap"]),
            package_cache_dir=dict(type="path"),
            check_mirror=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = dict(module.params)
    dest = p["dest"].rstrip("/")
    fmt = output_format(dest, p["format"])
    runner = CommandRunner(module)

    distribution = distribution_of(p["suite"])
    if distribution is None:
        module.fail_json(msg="suite=%s is not a known Debian or Ubuntu suite; known suites: %s"
                             % (p["suite"], ", ".join(known_suites())))
    bad = invalid_packages(p["include"] + p["exclude"])
    if bad:
        module.fail_json(msg="include/exclude hold invalid package names: %s" % ", ".join(bad))
    if fmt == "tar" and not dest.endswith(TAR_SUFFIXES):
        module.fail_json(msg="dest=%s: a tar output must end in one of %s" % (dest, ", ".join(TAR_SUFFIXES)))

    p["keyring"] = p["keyring"] or DEFAULT_KEYRINGS[distribution]
    if not os.path.isfile(p["keyring"]):
        module.fail_json(msg="keyring=%s does not exist; install the distribution's archive keyring "
                             "(debian-archive-keyring) or pass keyring= the path of a verified keyring"
                         % p["keyring"])

    tool = p["tool"]
    if tool == "auto":
        tool = "mmdebstrap" if module.get_bin_path("mmdebstrap") else "debootstrap"
    mirror = p["mirror"]
    if not mirror and distribution == "debian":
        mirror = host_mirror(read_host_sources(), "debian")

    dest_dir = os.path.dirname(dest) or "."
    inputs = {
        "suite": p["suite"], "variant": p["variant"], "architecture": p["architecture"],
        "components": p["components"], "include": sorted(p["include"]), "exclude": sorted(p["exclude"]),
        "mirror": mirror, "keyring_sha256": sha256_file(p["keyring"]), "tool": tool, "format": fmt,
    }
    record = read_stamp(dest, "rootfs_bootstrap")
    reason = "force=true" if p["force"] else rebuild_reason(record, inputs, os.path.exists(dest))
    sha = sha256_file(dest) if reason is None and fmt == "tar" else None
    if reason is None and fmt == "tar" and record["outputs"].get(dest) != sha:
        reason = "artifact changed on disk since it was built"
    result = dict(changed=False, path=dest, inputs_digest=record_digest(inputs), rebuild_reason=reason,
                  mirror=mirror, tool=tool, commands=runner.commands)

    if reason is None:
        result["artifact"] = ({"path": dest, "size": os.stat(dest).st_size, "sha256": sha} if fmt == "tar"
                              else {"path": dest, "size": tree_size(dest)})
        result["packages"] = record.get("facts", {}).get("packages", [])
        module.exit_json(**result)

    if not os.path.isdir(dest_dir):
        if module.check_mode:
            result["changed"] = True
            module.exit_json(**result)
        try:
            os.makedirs(dest_dir)
        except OSError as exc:
            module.fail_json(msg="dest=%s: cannot create its directory: %s" % (dest, exc))
    if not os.access(dest_dir, os.W_OK):
        module.fail_json(msg="dest=%s: directory %s is not writable" % (dest, dest_dir))
    if p["check_mirror"] and mirror:
        probe_mirror(module, mirror, p["suite"])
    runner.bin(tool, hint="install the %s package on the build host" % tool)
    if p["package_cache_dir"] and not module.check_mode:
        os.makedirs(p["package_cache_dir"], exist_ok=True)

    work = tempfile.mkdtemp(prefix=".%s.build-" % os.path.basename(dest), dir=dest_dir) \
        if not module.check_mode else os.path.join(dest_dir, ".%s.build-XXXX" % os.path.basename(dest))
    meta = os.path.join(work, "meta")
    status_out = os.path.join(meta, "status")
    if fmt == "tar":
        target = os.path.join(work, os.path.basename(dest))
    else:
        target = os.path.join(work, "root")
    if tool == "mmdebstrap":
        argv = mmdebstrap_argv(p, target, mirror, status_out)
    else:
        argv = debootstrap_argv(p, target, mirror)

    if module.check_mode:
        runner.commands.append(shlex.join(argv))
        result["changed"] = True
        module.exit_json(**result)

    try:
        os.makedirs(meta)
        # Two builds sharing package_cache_dir take turns: mmdebstrap's
        # sync-out writes the .debs into it in place.
        with signals_raise(), cache_lock(p["package_cache_dir"], "package_cache_dir", module.fail_json):
            runner.run(argv, "rootfs bootstrap",
                       hint="check suite=, mirror=, keyring= and the include= package names")
            if tool == "debootstrap":
                shutil.copy(os.path.join(target, "var", "lib", "dpkg", "status"), status_out)
                if fmt == "tar":
                    root = target
                    target = os.path.join(work, os.path.basename(dest))
                    runner.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
                                "--sort=name", "-caf", target, "-C", root, "."], "pack root filesystem")
                    shutil.rmtree(root)
            with open(status_out) as f:
                packages = parse_dpkg_status(f.read())
            if fmt == "tar":
                art = artifact(target)
                module.atomic_move(target, dest)
                art["path"] = dest
            else:
                if os.path.lexists(dest):
                    old = dest + ".old-" + os.path.basename(work)
                    os.rename(dest, old)
                    os.rename(target, dest)
                    shutil.rmtree(old)
                else:
                    os.rename(target, dest)
                art = {"path": dest, "size": tree_size(dest)}
            write_stamp(dest, "rootfs_bootstrap", inputs, {dest: art["sha256"]} if fmt == "tar" else {},
                        facts={"packages": packages})
    except BaseException as exc:
        release_under(runner, work)
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, SystemExit):
            raise
        module.fail_json(msg="rootfs bootstrap of suite=%s failed: %s" % (p["suite"], exc),
                         commands=runner.commands)
    shutil.rmtree(work, ignore_errors=True)
    result.update(changed=True, artifact=art, packages=packages)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

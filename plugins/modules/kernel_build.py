#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_build
short_description: Build a Linux kernel from a source tarball or tree, configured from a base and fragments
description:
  - Builds C(bzImage) (and C(vmlinux) on request) from O(source), a C(.tar.xz)/C(.tar.gz) on the build host with
    its O(source_sha256), or an unpacked tree (Debian's C(linux-source-6.1) ships the tarball under C(/usr/src)).
  - It builds, it does not download. A kernel.org tarball is brought onto the build host first, verified, with
    M(osimage.builder.input_file) (its sha256 is required) or M(ansible.builtin.get_url) with C(checksum); a URL
    in O(source) is an error that says so.
  - Configuration starts from O(config) (V(defconfig), V(tinyconfig) or a config file), merges O(config_fragments)
    and O(config_options) the kernel's own way (C(scripts/kconfig/merge_config.sh), then C(olddefconfig)), and is
    checked afterwards; an option that was asked for but did not stick (misspelt, missing dependency) is an error
    naming it.
  - O(patches) are applied exactly once, to a fresh copy of the source keyed on the tarball and the patches, so
    re-runs never fail or apply twice; a patch that does not apply is an error and leaves nothing behind.
  - O(localversion), an embedded initramfs (C(CONFIG_INITRAMFS_SOURCE)), parallel jobs, ccache when present, and
    reproducible build variables (C(KBUILD_BUILD_TIMESTAMP), C(KBUILD_BUILD_USER), C(KBUILD_BUILD_HOST)).
  - The object tree is kept in O(build_dir), so a changed configuration rebuilds only what it must. The inputs
    are recorded in its record (V(kernel_build)) of the stamp C(<dest_dir>/bzImage.stamp.json) with the sha256
    of the published files; the same inputs do nothing, changed ones rebuild and the
    result says which input changed. Outputs are written under temporary names and moved into place when complete.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - osimage.builder.progress
options:
  source:
    description:
      - Kernel source tarball on the build host, or an unpacked source tree.
      - A URL (C(https://), C(file://), ...) is refused; fetch it first with M(osimage.builder.input_file) or
        M(ansible.builtin.get_url) with C(checksum) and pass the local path (see the examples).
    type: str
    required: true
  source_sha256:
    description:
      - sha256 of the tarball, unused for a tree. A given checksum is always verified against the tarball before
        anything is written (also in check mode); a mismatch is an error and nothing is unpacked or built.
      - It may be left out for a file a package manager already verified, such as Debian's
        C(/usr/src/linux-source-6.1.tar.xz); the build then goes on with a warning and RV(source_verified=false).
        Never pass a checksum computed from the file itself, it verifies nothing.
    type: str
  build_dir:
    description: Where the source is unpacked and the objects are kept between builds.
    type: path
    required: true
  dest_dir:
    description: Where C(bzImage), C(config), C(kernel.release) and the optional outputs go.
    type: path
    required: true
  config:
    description: Base configuration, V(defconfig), V(tinyconfig) or the path of a config file.
    type: str
    default: defconfig
  config_fragments:
    description: Config fragment files merged over the base, in order.
    type: list
    elements: path
    default: []
  config_options:
    description: "Options merged last, as C({CONFIG_X: y|m|n|value})."
    type: dict
    default: {}
  localversion:
    description: CONFIG_LOCALVERSION, appended to the kernel release.
    type: str
    default: ""
  patches:
    description: Patch files (-p1) applied once to the source.
    type: list
    elements: path
    default: []
  initramfs_source:
    description: A cpio archive or directory built into the kernel (CONFIG_INITRAMFS_SOURCE).
    type: path
  jobs:
    description: Parallel make jobs (default the number of CPUs).
    type: int
  ccache:
    description: Compile through ccache (V(auto) when it is installed).
    type: str
    choices: [auto, "yes", "no"]
    default: auto
  ccache_dir:
    description: ccache's directory (default C(<build_dir>/ccache)).
    type: path
  vmlinux:
    description: Also publish the uncompressed C(vmlinux).
    type: bool
    default: false
  headers:
    description: Publish the userspace API headers (C(make headers_install)) as C(<dest_dir>/headers).
    type: bool
    default: false
  source_include:
    description: Publish the kernel's own C(include/) tree as C(<dest_dir>/source/include).
    type: bool
    default: false
  source_date_epoch:
    description: The build timestamp baked into the kernel.
    type: int
    default: 1700000000
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
  - A cold build takes minutes (a tinyconfig) to an hour (a distribution config) on two cores; objects are kept in
    O(build_dir) and ccache is used when present, so later builds are much shorter.
seealso:
  - module: osimage.builder.initramfs
  - module: osimage.builder.boot_test
  - module: osimage.builder.input_file
  - module: ansible.builtin.get_url
  - module: osimage.builder.aci_image
requirements:
  - make (Debian package make), gcc (Debian package gcc), bc (Debian package bc), flex (Debian package flex),
    bison (Debian package bison)
  - patch (Debian package patch) and tar (Debian package tar), with xz (Debian package xz-utils) for a .tar.xz
    source
  - the kernel's build libraries, Debian packages build-essential, libelf-dev and libssl-dev
  - ccache (Debian package ccache), optional
  - for the default source of the roles, Debian package linux-source-6.1
"""

EXAMPLES = r"""
- name: A KVM guest kernel from Debian's linux-source-6.1
  osimage.builder.kernel_build:
    source: /usr/src/linux-source-6.1.tar.xz
    source_sha256: "{{ linux_source_sha256 }}"
    build_dir: /var/cache/osimage/kernel
    dest_dir: /var/tmp/osimage/out/kernel
    config: defconfig
    config_fragments: [/path/to/kvm-guest.config]
    config_options: {CONFIG_9P_FS: y, CONFIG_NET_9P_VIRTIO: y}
    localversion: -stage1
    headers: true

- name: Fetch a kernel.org tarball first, verified against its published sha256
  osimage.builder.input_file:
    src: "{{ linux_6_1_119_url }}"  # the tarball's URL on kernel.org or a mirror of it
    sha256: "{{ linux_6_1_119_sha256 }}"
    dest: "/var/cache/osimage/sources/{{ linux_6_1_119_sha256 }}/linux-6.1.119.tar.xz"
  register: linux_tarball

- name: Then build from the local, verified copy
  osimage.builder.kernel_build:
    source: "{{ linux_tarball.path }}"
    source_sha256: "{{ linux_6_1_119_sha256 }}"
    build_dir: /var/cache/osimage/kernel
    dest_dir: /var/tmp/osimage/out/kernel
    config: tinyconfig
    config_fragments: [/path/to/kvm-guest.config]
"""

RETURN = r"""
bzimage:
  description: The kernel image as path, size and sha256.
  returned: success and not check mode
  type: dict
  sample:
    path: /var/tmp/osimage/work/rkt_stage1/linux-6.1/kernel/bzImage
    size: 8212480
    sha256: "1985827a8fde819c685b0c756aba1e5bc1a85eebf1cf6bc806d8d748b965722e"
vmlinux:
  description: The uncompressed kernel as path, size and sha256 (with O(vmlinux)).
  returned: when requested
  type: dict
  sample:
    path: /var/tmp/osimage/work/rkt_stage1/linux-6.1/kernel/vmlinux
    size: 52481696
    sha256: "bda53947e9ee31b2381cad6b07dc756f83c688f16dce16bd23ac1386099b36b3"
config_file:
  description: The final configuration as path, size and sha256.
  returned: success and not check mode
  type: dict
  sample:
    path: /var/tmp/osimage/work/rkt_stage1/linux-6.1/kernel/config
    size: 143187
    sha256: "b79606fb3afea5bd1609ed40b622142f1c98125abcfe89a76a661b0e8e343910"
release:
  description: The kernel release string (C(make kernelrelease)).
  returned: success and not check mode
  type: str
  sample: 6.1.119-osimage-v1
headers_dir:
  description: Installed API headers (with O(headers)).
  returned: when requested
  type: str
  sample: /var/tmp/osimage/work/rkt_stage1/linux-6.1/kernel/headers
source_include_dir:
  description: The kernel's include tree (with O(source_include)).
  returned: when requested
  type: str
  sample: /var/tmp/osimage/work/rkt_stage1/linux-6.1/kernel/source/include
source_verified:
  description:
    - Whether the tarball was checked against O(source_sha256); V(false) for a local tarball given without one.
    - Always V(true) for a source tree (nothing to verify; its content is part of the inputs).
  returned: always
  type: bool
  sample: true
source_sha256:
  description: The sha256 of the tarball as read (null for a tree).
  returned: always
  type: str
  sample: "b45a22b5e5c8973321857e539144cba801336def8d527286e4963d0288ea824f"
rebuild_reason:
  description: Why the kernel was (or would be) built; null when up to date.
  returned: always
  type: str
  sample: "inputs changed: config_fragments"
ccache:
  description: Whether ccache was used.
  returned: always
  type: bool
  sample: false
commands:
  description: Commands run.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/bin/tar -xf /usr/src/linux-source-6.1.tar.xz --strip-components=1 -C /var/cache/osimage/kernel/.src-k2w9d1fz
    - "/usr/bin/patch -p1 --forward --batch -d /var/cache/osimage/kernel/.src-k2w9d1fz
      -i /var/tmp/osimage/work/rkt_stage1/linux-6.1/inputs/0001-reboot.patch"
    - "/usr/bin/make -C /var/cache/osimage/kernel/src-3f2a9c41d7e8b605
      O=/var/cache/osimage/kernel/obj-3f2a9c41d7e8b605 olddefconfig"
    - "/usr/bin/make -C /var/cache/osimage/kernel/src-3f2a9c41d7e8b605
      O=/var/cache/osimage/kernel/obj-3f2a9c41d7e8b605 -j2 bzImage"
    - "/usr/bin/make -C /var/cache/osimage/kernel/src-3f2a9c41d7e8b605
      O=/var/cache/osimage/kernel/obj-3f2a9c41d7e8b605 -s kernelrelease"
"""

import hashlib
import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    read_stamp,
    rebuild_reason,
    recorded_artifact,
    sha256_file,
    tree_digest,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._fetch import SHA256, mismatch_message
from ansible_collections.osimage.builder.plugins.module_utils._kconfig import (
    build_env,
    fragment_from_options,
    invalid_options,
    missing_options,
    parse_config,
)
from ansible_collections.osimage.builder.plugins.module_utils._lock import build_dir_lock
from ansible_collections.osimage.builder.plugins.module_utils._mounts import signals_raise
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner

BASES = ("defconfig", "tinyconfig", "allnoconfig", "kvm_guest.config")


# Any scheme:// is a URL (https, file, ftp, ...): this module builds, it
# does not fetch.
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def url_refusal(src):
    return ("source=%s is a URL; kernel_build builds from a tarball or tree on the build host and does not "
            "download. Fetch it first, verified, with osimage.builder.input_file (src: the URL, sha256: its "
            "published sha256, dest: a local path) or ansible.builtin.get_url with checksum: sha256:..., then "
            "pass the local path as source (and the sha256 as source_sha256)" % src)


def verify_tarball(module, p):
    """(its sha256, verified) of the local tarball `source`. A given
    source_sha256 is always checked, before anything is written (also in
    check mode); without one the tarball is built unverified, with a
    warning."""
    src = p["source"]
    want = (p["source_sha256"] or "").strip().lower()
    if want and not SHA256.match(want):
        module.fail_json(msg="source_sha256=%s is not a sha256 (64 hex digits)" % p["source_sha256"])
    got = sha256_file(src)
    if not want:
        module.warn("source=%s has no source_sha256: building it unverified (sha256 %s); pass source_sha256 "
                    "to pin it" % (src, got))
        return got, False
    if got != want:
        module.fail_json(msg=mismatch_message("source", src, got, "source_sha256", want, "build it"))
    return got, True


def prepare_source(module, runner, p, tarball, key):
    """Unpack and patch once into build_dir/src-<key>; a tree with no
    patches is used where it is."""
    if tarball is None and not p["patches"]:
        return p["source"]
    src = os.path.join(p["build_dir"], "src-" + key)
    if os.path.isfile(os.path.join(src, ".osimage-source-ready")):
        return src
    work = tempfile.mkdtemp(prefix=".src-", dir=p["build_dir"])
    try:
        if tarball:
            runner.run(["tar", "-xf", tarball, "--strip-components=1", "-C", work], "unpack %s" % p["source"])
        else:
            runner.run(["cp", "-a", p["source"].rstrip("/") + "/.", work], "copy the source tree")
        for patch in p["patches"]:
            runner.run(["patch", "-p1", "--forward", "--batch", "-d", work, "-i", patch],
                       "apply patch %s" % patch, hint="the patch does not apply to this kernel source")
        open(os.path.join(work, ".osimage-source-ready"), "w").close()
        if os.path.isdir(src):
            shutil.rmtree(src)
        os.rename(work, src)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return src


def configure(module, runner, p, src, obj, env, make):
    base = p["config"]
    if base in BASES:
        runner.run(make + [base], "make %s" % base, env=env)
    else:
        shutil.copyfile(base, os.path.join(obj, ".config"))
        runner.run(make + ["olddefconfig"], "make olddefconfig", env=env)
    options = dict(p["config_options"])
    options["CONFIG_LOCALVERSION"] = '"%s"' % p["localversion"]
    options["CONFIG_LOCALVERSION_AUTO"] = "n"
    if p["initramfs_source"]:
        options["CONFIG_BLK_DEV_INITRD"] = "y"
        options["CONFIG_INITRAMFS_SOURCE"] = '"%s"' % p["initramfs_source"]
    inline = os.path.join(obj, "osimage-options.config")
    with open(inline, "w") as f:
        f.write(fragment_from_options(options))
    fragments = list(p["config_fragments"]) + [inline]
    runner.run([os.path.join(src, "scripts/kconfig/merge_config.sh"), "-m", "-O", obj,
                os.path.join(obj, ".config")] + fragments, "merge the config fragments", env=env)
    runner.run(make + ["olddefconfig"], "make olddefconfig", env=env)
    requested = {}
    for frag in fragments:
        with open(frag) as f:
            requested.update(parse_config(f.read()))
    with open(os.path.join(obj, ".config")) as f:
        final = parse_config(f.read())
    problems = missing_options(requested, final)
    if problems:
        module.fail_json(msg="config options asked for did not stick (unknown, misspelt or missing a dependency): "
                             "%s" % ", ".join(problems), commands=runner.commands)


def publish_file(module, src, dest):
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=os.path.dirname(dest))
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o644)
    os.rename(tmp, dest)
    return artifact(dest)


def publish_dir(src_dir, dest):
    tmp = tempfile.mkdtemp(prefix=".%s." % os.path.basename(dest), dir=os.path.dirname(dest))
    shutil.rmtree(tmp)
    shutil.copytree(src_dir, tmp, symlinks=True)
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.rename(tmp, dest)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            progress_log=dict(type="path"),
            source=dict(type="str", required=True),
            source_sha256=dict(type="str"),
            build_dir=dict(type="path", required=True),
            dest_dir=dict(type="path", required=True),
            config=dict(type="str", default="defconfig"),
            config_fragments=dict(type="list", elements="path", default=[]),
            config_options=dict(type="dict", default={}),
            localversion=dict(type="str", default=""),
            patches=dict(type="list", elements="path", default=[]),
            initramfs_source=dict(type="path"),
            jobs=dict(type="int"),
            ccache=dict(type="str", default="auto", choices=["auto", "yes", "no"]),
            ccache_dir=dict(type="path"),
            vmlinux=dict(type="bool", default=False),
            headers=dict(type="bool", default=False),
            source_include=dict(type="bool", default=False),
            source_date_epoch=dict(type="int", default=1700000000),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = dict(module.params)
    runner = CommandRunner(module)
    if re.search(r"\s", p["localversion"]) or '"' in p["localversion"]:
        module.fail_json(msg="localversion=%r may not hold spaces or quotes" % p["localversion"])
    bad = invalid_options(p["config_options"])
    if bad:
        module.fail_json(msg="config_options: %s: a value is y, m, n, a number or a double-quoted string without "
                             "newlines or inner quotes, a name is letters, digits and _" % ", ".join(bad))
    if p["config"] not in BASES and not os.path.isfile(p["config"]):
        module.fail_json(msg="config=%s is neither one of %s nor an existing config file"
                             % (p["config"], ", ".join(BASES)))
    for key in ("config_fragments", "patches"):
        for path in p[key]:
            if not os.path.isfile(path):
                module.fail_json(msg="%s: %s does not exist" % (key, path))
    if p["initramfs_source"] and not os.path.exists(p["initramfs_source"]):
        module.fail_json(msg="initramfs_source=%s does not exist" % p["initramfs_source"])

    if URL.match(p["source"]):
        module.fail_json(msg=url_refusal(p["source"]))
    is_tree = os.path.isdir(p["source"])
    if not is_tree and not os.path.isfile(p["source"]):
        module.fail_json(msg="source=%s is neither a source tree nor a tarball that exists" % p["source"])
    # Verified before anything is written: a wrong checksum leaves build_dir
    # and dest_dir as they were.
    tarball, source_sha, verified = None, None, True
    if not is_tree:
        tarball = p["source"]
        source_sha, verified = verify_tarball(module, p)
    source_id = ("tree:" + p["source"]) if is_tree else source_sha
    patch_ids = [sha256_file(x) for x in p["patches"]]
    key = hashlib.sha256(("%s|%s" % (source_id, ",".join(patch_ids))).encode()).hexdigest()[:16]

    def content(path):
        return sha256_file(path) if path and os.path.isfile(path) else (tree_digest([path]) if path else None)

    inputs = {
        "source": source_id, "patches": patch_ids,
        "config": p["config"] if p["config"] in BASES else sha256_file(p["config"]),
        "config_fragments": [sha256_file(x) for x in p["config_fragments"]],
        "config_options": {k: str(v) for k, v in p["config_options"].items()},
        "localversion": p["localversion"], "initramfs_source": content(p["initramfs_source"]),
        "vmlinux": p["vmlinux"], "headers": p["headers"], "source_include": p["source_include"],
        "source_date_epoch": p["source_date_epoch"],
    }
    dest_dir = p["dest_dir"]
    bz = os.path.join(dest_dir, "bzImage")
    outputs_present = os.path.isfile(bz) and os.path.isfile(os.path.join(dest_dir, "config"))
    stamp = read_stamp(bz, "kernel_build")
    reason = "force=true" if p["force"] else rebuild_reason(stamp, inputs, outputs_present)
    if reason is None and stamp["outputs"].get(bz) != sha256_file(bz):
        reason = "bzImage changed on disk since it was built"
    if reason is None and not all(os.path.isfile(f) for f in stamp["outputs"]):
        reason = "missing: " + ", ".join(sorted(f for f in stamp["outputs"] if not os.path.isfile(f)))
    use_ccache = p["ccache"] == "yes" or (p["ccache"] == "auto" and module.get_bin_path("ccache") is not None)
    result = dict(changed=False, rebuild_reason=reason, ccache=use_ccache, commands=runner.commands,
                  source_verified=verified, source_sha256=source_sha)
    if reason is None:
        # The published files as recorded, under the names a build returns them by.
        result.update(stamp.get("facts", {}))
        result.update({name: recorded_artifact(stamp, os.path.join(dest_dir, f)) for name, f in
                       (("bzimage", "bzImage"), ("config_file", "config"), ("vmlinux", "vmlinux"))
                       if os.path.join(dest_dir, f) in stamp["outputs"]})
        module.exit_json(**result)
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)

    for prog in ("make", "gcc", "bc", "flex", "bison", "patch"):
        runner.bin(prog, hint="install build-essential bc flex bison libelf-dev libssl-dev on the build host")
    os.makedirs(p["build_dir"], exist_ok=True)
    # Two builds into one build_dir share its source and object trees: the
    # second waits for the first (bounded), never writes into a tree the
    # first is writing.
    with signals_raise(), build_dir_lock(p["build_dir"], what="kernel build_dir", fail=module.fail_json):
        src = prepare_source(module, runner, p, tarball, key)
        obj = os.path.join(p["build_dir"], "obj-" + key)
        os.makedirs(obj, exist_ok=True)
        env = build_env(p["source_date_epoch"])
        make = ["make", "-C", src, "O=" + obj]
        if use_ccache:
            env["CCACHE_DIR"] = p["ccache_dir"] or os.path.join(p["build_dir"], "ccache")
            env["CCACHE_BASEDIR"] = p["build_dir"]
            make.append("CC=ccache gcc")
        configure(module, runner, p, src, obj, env, make)
        jobs = p["jobs"] or os.cpu_count() or 1
        runner.run(make + ["-j%d" % jobs, "bzImage"], "build the kernel", env=env)
        _rc, release, _err = runner.run(make + ["-s", "kernelrelease"], "read the kernel release", env=env)
        release = release.strip().splitlines()[-1]
        os.makedirs(dest_dir, exist_ok=True)
        outputs = {"release": release}
        outputs["config_file"] = publish_file(module, os.path.join(obj, ".config"), os.path.join(dest_dir, "config"))
        if p["vmlinux"]:
            outputs["vmlinux"] = publish_file(module, os.path.join(obj, "vmlinux"), os.path.join(dest_dir, "vmlinux"))
        if p["headers"]:
            staging = tempfile.mkdtemp(prefix=".headers-", dir=p["build_dir"])
            try:
                runner.run(make + ["headers_install", "INSTALL_HDR_PATH=" + staging], "install the API headers",
                           env=env)
                publish_dir(staging, os.path.join(dest_dir, "headers"))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            outputs["headers_dir"] = os.path.join(dest_dir, "headers")
        if p["source_include"]:
            os.makedirs(os.path.join(dest_dir, "source"), exist_ok=True)
            publish_dir(os.path.join(src, "include"), os.path.join(dest_dir, "source", "include"))
            outputs["source_include_dir"] = os.path.join(dest_dir, "source", "include")
        with open(os.path.join(dest_dir, "kernel.release.tmp"), "w") as f:
            f.write(release + "\n")
        os.rename(os.path.join(dest_dir, "kernel.release.tmp"), os.path.join(dest_dir, "kernel.release"))
        # bzImage last: its presence with a matching stamp means the whole set is complete.
        outputs["bzimage"] = publish_file(module, os.path.join(obj, "arch/x86/boot/bzImage"), bz)
        # The files (path -> sha256) as the stamp's outputs, the rest (release, directories) as its facts.
        write_stamp(bz, "kernel_build", inputs,
                    {a["path"]: a["sha256"] for a in outputs.values() if isinstance(a, dict)},
                    facts={k: v for k, v in outputs.items() if not isinstance(v, dict)})
    result.update(changed=True, **outputs)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stemcell_package
short_description: Package a BOSH stemcell tarball exactly as BOSH lays it out
description:
  - Writes C(bosh-stemcell-<version>-<infrastructure>-<hypervisor>-<os>-go_agent[-<format>].tgz) holding exactly
    C(image), C(stemcell.MF), C(packages.txt), C(dev_tools_file_list.txt) and C(sbom.spdx.json).
  - C(image) is a tgz of C(root.img) for the disk formats (raw, qcow2) and a tgz of the image root for
    V(files) (warden). C(stemcell.MF) carries name, version, bosh_protocol, api_version, the sha1 of C(image),
    operating_system, stemcell_formats and the cloud_properties BOSH's CPIs read. The SBOM is SPDX 2.3 JSON made
    from the image's dpkg database.
  - Only combinations BOSH builds are accepted (openstack/kvm raw or qcow2, aws/xen-hvm raw, warden/boshlite files).
  - Reproducible (sorted members, numeric owners, clamped mtimes) and keyed on its inputs, in its record
    (V(stemcell_package)) of the stamp C(<stemcell>.stamp.json), which the stemcell pipeline's record shares; the
    tarball is built under a temporary name, its member list checked, and only then moved into place.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  dest_dir:
    description: Directory the stemcell is written to.
    type: path
    required: true
  version:
    description: Stemcell version.
    type: str
    required: true
  infrastructure:
    description: IaaS.
    type: str
    required: true
  hypervisor:
    description: Hypervisor (V(xen) is taken as BOSH's V(xen-hvm) for aws).
    type: str
    required: true
  disk_format:
    description: V(raw), V(qcow2) or V(files).
    type: str
    required: true
  os_name:
    description: BOSH operating system name, for example V(debian-bookworm).
    type: str
    required: true
  os_distro:
    description: Distribution (cloud_properties.os_distro).
    type: str
    required: true
  image:
    description: The disk image (raw or qcow2), or for V(files) the image root directory.
    type: path
    required: true
  disk_mb:
    description: Root disk size in MiB (cloud_properties.disk).
    type: int
    required: true
  root:
    description: The image root the packages, dev tools list and SBOM are read from.
    type: path
    required: true
  architecture:
    description: cloud_properties.architecture.
    type: str
    default: x86_64
  api_version:
    description: Stemcell API version.
    type: int
    default: 3
  cloud_properties:
    description: Extra cloud_properties, merged over the infrastructure's own.
    type: dict
    default: {}
  source_date_epoch:
    description: mtimes clamped to this UNIX time, and the SBOM's creation time.
    type: int
    default: 1700000000
  force:
    description: Repackage although the inputs did not change.
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
  - Only the combinations BOSH builds are accepted; any other is an error that lists them.
seealso:
  - module: osimage.builder.disk_image
  - module: osimage.builder.boot_test
  - module: osimage.builder.rootfs_archive
requirements:
  - dpkg (Debian package dpkg) for the package list and the SBOM
  - sha1sum (Debian package coreutils)
  - tar (Debian package tar), pigz (Debian package pigz) or gzip (Debian package gzip)
"""

EXAMPLES = r"""
- name: Package the OpenStack raw stemcell
  osimage.builder.stemcell_package:
    dest_dir: /var/tmp/osimage/output
    version: "1.0"
    infrastructure: openstack
    hypervisor: kvm
    disk_format: raw
    os_name: debian-bookworm
    os_distro: debian
    image: /var/tmp/osimage/work/stemcell/root.img
    disk_mb: 5120
    root: /var/tmp/osimage/work/stemcell/chroot
"""

RETURN = r"""
artifact:
  description: The stemcell tarball as path, size and sha256.
  returned: success and not check mode
  type: dict
  sample:
    path: /var/tmp/osimage/output/bosh-stemcell-1.0-openstack-kvm-debian-bookworm-go_agent-raw.tgz
    size: 498073600
    sha256: "17934690e966c11bad06391a9056e3558ebf346d9dff99d89413185242ce453d"
filename:
  description: BOSH's file name of the stemcell.
  returned: always
  type: str
  sample: bosh-stemcell-1.0-openstack-kvm-debian-bookworm-go_agent-raw.tgz
manifest:
  description: The stemcell.MF content.
  returned: success and not check mode
  type: dict
  sample:
    name: bosh-openstack-kvm-debian-bookworm-go_agent
    version: "1.0"
    bosh_protocol: "1"
    api_version: 3
    sha1: "978ea7af39ad5fefb6bfbc82a1c5023494bdade2"
    operating_system: debian-bookworm
    stemcell_formats: [openstack-raw]
    cloud_properties:
      name: bosh-openstack-kvm-debian-bookworm-go_agent
      version: "1.0"
      infrastructure: openstack
      hypervisor: kvm
      disk: 5120
      disk_format: raw
      container_format: bare
      os_type: linux
      os_distro: debian
      architecture: x86_64
      auto_disk_config: true
image_sha1:
  description: sha1 of the C(image) member.
  returned: success and not check mode
  type: str
  sample: "978ea7af39ad5fefb6bfbc82a1c5023494bdade2"
members:
  description: The members of the tarball, in order.
  returned: success and not check mode
  type: list
  elements: str
  sample: [image, stemcell.MF, packages.txt, dev_tools_file_list.txt, sbom.spdx.json]
"""

import datetime
import hashlib
import json
import os
import shutil
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._archive import (
    pick_compressor,
    stream_pack,
    tar_create_argv,
)
from ansible_collections.osimage.builder.plugins.module_utils._debian import parse_dpkg_status
from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    read_stamp,
    rebuild_reason,
    recorded_artifact,
    sha256_file,
    write_stamp,
)
from ansible_collections.osimage.builder.plugins.module_utils._disk import tree_fingerprint
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner
from ansible_collections.osimage.builder.plugins.module_utils._space import disk_full_is_an_error
from ansible_collections.osimage.builder.plugins.module_utils._stemcell import (
    MEMBERS,
    VERSION_RE,
    manifest,
    member_problems,
    resolve,
    spdx_sbom,
    stemcell_filename,
    to_yaml,
)


def packages_txt(runner, root):
    """`dpkg -l` of the image, as BOSH's packages.txt."""
    _rc, out, _err = runner.run(["dpkg", "--root=" + root, "-l"], "list the image's packages",
                                env={"COLUMNS": "200"}, record=False)
    return out


def dev_tools(root):
    path = os.path.join(root, "var/vcap/bosh/etc/dev_tools_file_list")
    if os.path.isfile(path):
        with open(path) as f:
            return f.read()
    return ""


def pack_image(module, runner, p, work):
    """The `image` member: a tgz of root.img, or of the root for warden."""
    comp = pick_compressor(module, "gzip")
    out = os.path.join(work, "image")
    if p["disk_format"] == "files":
        argv = tar_create_argv(p["image"], [], p["source_date_epoch"])
    else:
        staging = os.path.join(work, "image-staging")
        os.makedirs(staging)
        # A copy, not a hard link: the member's mtime is set without touching the disk image.
        shutil.copyfile(p["image"], os.path.join(staging, "root.img"))
        os.utime(os.path.join(staging, "root.img"), (p["source_date_epoch"],) * 2)
        argv = tar_create_argv(staging, [], p["source_date_epoch"], members=["root.img"])
    stream_pack(runner, argv, comp, out)
    _rc, sha1, _err = runner.run(["sha1sum", out], "sha1 of the image", record=False)
    return out, sha1.split()[0]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest_dir=dict(type="path", required=True),
            version=dict(type="str", required=True),
            infrastructure=dict(type="str", required=True),
            hypervisor=dict(type="str", required=True),
            disk_format=dict(type="str", required=True),
            os_name=dict(type="str", required=True),
            os_distro=dict(type="str", required=True),
            image=dict(type="path", required=True),
            disk_mb=dict(type="int", required=True),
            root=dict(type="path", required=True),
            architecture=dict(type="str", default="x86_64"),
            api_version=dict(type="int", default=3),
            cloud_properties=dict(type="dict", default={}),
            source_date_epoch=dict(type="int", default=1700000000),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = CommandRunner(module)
    hyp, err = resolve(p["infrastructure"], p["hypervisor"], p["disk_format"])
    if err:
        module.fail_json(msg=err)
    if not VERSION_RE.match(p["version"]):
        module.fail_json(msg="version=%s is not a stemcell version (letters, digits, . + _ -)" % p["version"])
    if p["disk_format"] == "files":
        if not os.path.isdir(p["image"]):
            module.fail_json(msg="image=%s must be the image root directory for disk_format=files" % p["image"])
    elif not os.path.isfile(p["image"]):
        module.fail_json(msg="image=%s does not exist" % p["image"])
    status = os.path.join(p["root"], "var/lib/dpkg/status")
    if not os.path.isfile(status):
        module.fail_json(msg="root=%s has no dpkg database (var/lib/dpkg/status)" % p["root"])
    filename = stemcell_filename(p["version"], p["infrastructure"], hyp, p["os_name"], p["disk_format"])
    dest = os.path.join(p["dest_dir"], filename)
    image_digest = tree_fingerprint(p["image"]) if p["disk_format"] == "files" else sha256_file(p["image"])
    inputs = {k: p[k] for k in ("version", "infrastructure", "disk_format", "os_name", "os_distro", "disk_mb",
                                "architecture", "api_version", "cloud_properties", "source_date_epoch")}
    inputs.update(hypervisor=hyp, image=image_digest, dpkg_status=sha256_file(status),
                  dev_tools_sha256=hashlib.sha256(dev_tools(p["root"]).encode()).hexdigest())
    record = read_stamp(dest, "stemcell_package")
    reason = "force=true" if p["force"] else rebuild_reason(record, inputs, os.path.isfile(dest))
    if reason is None and record["outputs"].get(dest) != sha256_file(dest):
        reason = "stemcell changed on disk since it was packaged"
    result = dict(changed=False, filename=filename, rebuild_reason=reason, commands=runner.commands)
    if reason is None:
        art = recorded_artifact(record, dest)
        result.update(record.get("facts", {}), artifact=art, sha256=art["sha256"])
        module.exit_json(**result)
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)

    os.makedirs(p["dest_dir"], exist_ok=True)
    if not os.access(p["dest_dir"], os.W_OK):
        module.fail_json(msg="dest_dir=%s is not writable" % p["dest_dir"])
    work = tempfile.mkdtemp(prefix=".%s." % filename, dir=p["dest_dir"])
    tmp = os.path.join(work, filename)
    try:
        # A full dest_dir while the stemcell is staged there: a clear error
        # naming the directory (the work directory goes, as after any failure).
        with disk_full_is_an_error(module.fail_json, p["dest_dir"], "staging the stemcell", param="dest_dir"):
            image, sha1 = pack_image(module, runner, p, work)
            mf = manifest(p["version"], p["infrastructure"], hyp, p["os_name"], p["os_distro"], p["disk_format"],
                          sha1, p["disk_mb"], p["architecture"], p["api_version"], p["cloud_properties"])
            stage = os.path.join(work, "stemcell")
            os.makedirs(stage)
            os.rename(image, os.path.join(stage, "image"))
            with open(os.path.join(stage, "stemcell.MF"), "w") as f:
                f.write(to_yaml(mf) + "\n")
            with open(os.path.join(stage, "packages.txt"), "w") as f:
                f.write(packages_txt(runner, p["root"]))
            with open(os.path.join(stage, "dev_tools_file_list.txt"), "w") as f:
                f.write(dev_tools(p["root"]))
            with open(status) as f:
                packages = parse_dpkg_status(f.read())
            for pkg in packages:
                pkg["distro"] = p["os_distro"]
            created = datetime.datetime.fromtimestamp(p["source_date_epoch"], datetime.timezone.utc)
            with open(os.path.join(stage, "sbom.spdx.json"), "w") as f:
                json.dump(spdx_sbom(mf["name"] + "-" + p["version"], packages, created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                    filename), f, indent=2, sort_keys=True)
            for name in MEMBERS:
                os.chmod(os.path.join(stage, name), 0o644)
            stream_pack(runner, tar_create_argv(stage, [], p["source_date_epoch"], members=MEMBERS),
                        pick_compressor(module, "gzip"), tmp)
            with tarfile.open(tmp) as tar:
                members = tar.getnames()
            problems = member_problems(members)
            if problems:
                module.fail_json(msg="the stemcell tarball is not BOSH's layout: %s" % "; ".join(problems))
            art = artifact(tmp)
            module.atomic_move(tmp, dest)
            os.chmod(dest, 0o644)
            art["path"] = dest
            facts = {"manifest": mf, "image_sha1": sha1, "members": members}
            write_stamp(dest, "stemcell_package", inputs, {dest: art["sha256"]}, facts=facts)
            outputs = dict(facts, artifact=art, sha256=art["sha256"], filename=filename)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.update(changed=True, **outputs)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aci_image
short_description: Build or validate an App Container Image (appc ACI)
description:
  - O(state=present) writes an ACI from O(rootfs) and O(manifest) (acKind, acVersion, name, labels, app,
    annotations, dependencies). The manifest is validated against the appc spec first (AC Identifier and AC Name
    rules, valid os/arch pairs, unique labels, the reserved label C(name), app user/group, absolute exec path and
    working directory, port ranges, dependency image ids), with an error naming the field; nothing is written
    for an invalid manifest.
  - The tarball holds only C(manifest) and C(rootfs/), sorted, with numeric owners and mtimes clamped to
    O(source_date_epoch), so the same inputs give the same bytes; it is compressed with gzip (no name or time in
    the header), xz, or not at all, and replaces O(dest) only when its sha256 changes.
  - Returns the image id, C(sha512-) and the hex sha512 of the uncompressed tar (appc spec).
  - O(state=validated) checks an existing .aci (gzip, xz or plain) instead - duplicate entries, extra top-level
    entries, path traversal, member types (C(manifest) a regular file, C(rootfs) a directory, no device nodes),
    link targets (no symlink whose relative target climbs out of C(rootfs/), hard links only to an earlier member
    of C(rootfs/), no member written through a symlink), and the manifest rules - and reports its image id.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  dest:
    description: The .aci file to write (O(state=present)) or to check (O(state=validated)).
    type: path
    required: true
  state:
    description: Build or validate.
    type: str
    choices: [present, validated]
    default: present
  rootfs:
    description: Directory that becomes C(rootfs/) (O(state=present)).
    type: path
  manifest:
    description: The image manifest (O(state=present)).
    type: dict
  compression:
    description: Compression of the .aci.
    type: str
    choices: [gzip, xz, none]
    default: gzip
  source_date_epoch:
    description: Upper bound for member mtimes.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - O(state=validated) only reads the .aci (an untrusted one too); it never unpacks it.
seealso:
  - module: osimage.builder.kernel_build
  - module: osimage.builder.rootfs_archive
  - module: osimage.builder.initramfs
requirements:
  - Python 3 on the build host; the module runs no external program.
  - gzip and xz compression come from Python's own gzip and lzma modules.
"""

EXAMPLES = r"""
- name: A stage1 image
  osimage.builder.aci_image:
    dest: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci
    rootfs: /var/tmp/osimage/work/stage1/rootfs
    manifest:
      acKind: ImageManifest
      acVersion: 0.8.11
      name: coreos.com/rkt/stage1-kvm
      labels:
        - {name: arch, value: amd64}
        - {name: os, value: linux}
        - {name: version, value: 1.30.0}

- name: Check an ACI someone gave us
  osimage.builder.aci_image:
    dest: /tmp/some.aci
    state: validated
"""

RETURN = r"""
image_id:
  description: sha512-<hex> of the uncompressed tar (appc spec image ID).
  returned: success
  type: str
  sample: "sha512-79c35ea2c8d2c131df26b97701fdfcffa88239168ea390a310e3aa55e2443a15f728bfd62ea2eff7e96c67fc\
    1915eb6cabb4d6482d47ddfab3a12ed84e09850b"
artifact:
  description: The .aci as path, size and sha256.
  returned: success
  type: dict
  sample:
    path: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci
    size: 14783529
    sha256: "9f10f645170216d32bff57fe46f386ad5a3f46e30db179411561bfbbcdb279fe"
manifest:
  description: The manifest (as written, or as read from the image).
  returned: success
  type: dict
  sample:
    acKind: ImageManifest
    acVersion: "0.8.11"
    name: coreos.com/rkt/stage1-kvm
    labels:
      - {name: arch, value: amd64}
      - {name: os, value: linux}
      - {name: version, value: 1.30.0}
    annotations:
      - {name: coreos.com/rkt/stage1/run, value: /init}
      - {name: coreos.com/rkt/stage1/enter, value: /enter_kvm}
"""

import gzip
import json
import lzma
import os
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._aci import (
    build_tar,
    check_member_types,
    check_members,
    validate_manifest,
)
from ansible_collections.osimage.builder.plugins.module_utils._compress import open_compressor
from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    DigestReader,
    DigestWriter,
    artifact,
    sha256_file,
)


def pack(p, out):
    """Write the ACI of O(rootfs) and O(manifest) to the binary file `out`
    (None: only digest it, as check mode does). Returns (image id, sha256,
    size): the appc image id is the sha512 of the uncompressed tar, taken as
    the tar streams into the compressor."""
    packed = DigestWriter("sha256", out)
    with open_compressor(packed, p["compression"]) as compressed:
        plain = DigestWriter("sha512", compressed)
        build_tar(plain, p["rootfs"], p["manifest"], p["source_date_epoch"])
    return "sha512-" + plain.hexdigest(), packed.hexdigest(), packed.size


def open_uncompressed(path):
    with open(path, "rb") as f:
        magic = f.read(6)
    opener = gzip.open if magic[:2] == b"\x1f\x8b" else (lzma.open if magic == b"\xfd7zXZ\x00" else open)
    return opener(path, "rb")


def validate(module, dest):
    """Check an existing .aci, read once as a stream: nothing is written."""
    if not os.path.isfile(dest):
        module.fail_json(msg="dest=%s does not exist" % dest)
    members, manifest_data = [], None
    try:
        with open_uncompressed(dest) as fin:
            plain = DigestReader(fin, "sha512")
            with tarfile.open(fileobj=plain, mode="r|") as tar:
                for m in tar:
                    members.append(m)
                    if manifest_data is None and m.name.lstrip("./") == "manifest" and m.isfile():
                        manifest_data = tar.extractfile(m).read()
            plain.drain()
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError) as exc:
        module.fail_json(msg="dest=%s is not a readable ACI: %s" % (dest, exc))
    names = [m.name for m in members]
    problems = check_members(names)
    problems += [p for p in check_member_types(members) if p not in problems]
    manifest = None
    if not problems:
        try:
            manifest = json.loads(manifest_data)
        except ValueError as exc:
            problems.append("manifest is not JSON: %s" % exc)
        else:
            problems += ["manifest: " + e for e in validate_manifest(manifest)]
    if problems:
        module.fail_json(msg="dest=%s is not a valid ACI: %s" % (dest, "; ".join(problems)), problems=problems)
    module.exit_json(changed=False, image_id="sha512-" + plain.hexdigest(), artifact=artifact(dest),
                     manifest=manifest)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "validated"]),
            rootfs=dict(type="path"),
            manifest=dict(type="dict"),
            compression=dict(type="str", default="gzip", choices=["gzip", "xz", "none"]),
            source_date_epoch=dict(type="int", default=0),
        ),
        required_if=[("state", "present", ("rootfs", "manifest"))],
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "validated":
        validate(module, p["dest"])
    errors = validate_manifest(p["manifest"])
    if errors:
        module.fail_json(msg="manifest is not a valid appc ImageManifest: %s" % "; ".join(errors), errors=errors)
    if not os.path.isdir(p["rootfs"]):
        module.fail_json(msg="rootfs=%s is not a directory" % p["rootfs"])
    dest = p["dest"]
    if module.check_mode:
        # Packed as a stream into digests only: check mode writes nothing.
        ident, digest, size = pack(p, None)
        if os.path.isfile(dest) and sha256_file(dest) == digest:
            module.exit_json(changed=False, image_id=ident, artifact=artifact(dest), manifest=p["manifest"])
        module.exit_json(changed=True, image_id=ident, manifest=p["manifest"],
                         artifact={"path": dest, "size": size, "sha256": digest})
    dest_dir = os.path.dirname(dest) or "."
    os.makedirs(dest_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            ident, digest, _size = pack(p, out)
        if os.path.isfile(dest) and sha256_file(dest) == digest:
            module.exit_json(changed=False, image_id=ident, artifact=artifact(dest), manifest=p["manifest"])
        module.atomic_move(tmp, dest)
        os.chmod(dest, 0o644)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.exit_json(changed=True, image_id=ident, artifact=artifact(dest), manifest=p["manifest"])


if __name__ == "__main__":
    main()

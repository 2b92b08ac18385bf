#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: initramfs
short_description: Pack a directory into a reproducible initramfs (newc cpio)
description:
  - Writes the newc cpio archive the kernel unpacks as its initramfs, from O(src), compressed with gzip, xz (with
    the CRC32 check the kernel's decompressor needs), zstd, or not at all.
  - Deterministic, so two runs give identical bytes; entries sorted by path, owner 0:0, mtimes clamped to
    O(source_date_epoch), inode numbers assigned in order, no name or time in the gzip header.
  - Device nodes the archive needs (C(/dev/console)) can be added with O(device_nodes) without creating them in
    O(src).
  - The archive is written to a temporary file beside O(dest) and replaces it only when its sha256 differs, so a
    second run reports no change; check mode computes the archive and writes nothing.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  src:
    description: Directory to pack.
    type: path
    required: true
  dest:
    description: The initramfs file.
    type: path
    required: true
  compression:
    description: Compression.
    type: str
    choices: [gzip, xz, zstd, none]
    default: gzip
  source_date_epoch:
    description: Upper bound for member mtimes (UNIX time).
    type: int
    default: 0
  device_nodes:
    description: Device nodes to add, each with path, type (c or b), major, minor and mode.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Device nodes of O(device_nodes) are only written into the archive, never created on the build host.
seealso:
  - module: osimage.builder.kernel_build
  - module: osimage.builder.boot_test
  - module: osimage.builder.aci_image
requirements:
  - zstd (Debian package zstd) for O(compression=zstd); gzip and xz come from Python's own gzip and lzma.
"""

EXAMPLES = r"""
- name: A test initramfs with busybox as init
  osimage.builder.initramfs:
    src: /var/tmp/osimage/work/test-initramfs
    dest: /var/tmp/osimage/work/test-initramfs.cpio.gz
    device_nodes:
      - {path: /dev/console, type: c, major: 5, minor: 1, mode: "0600"}
"""

RETURN = r"""
artifact:
  description: The initramfs as path, size and sha256.
  returned: always
  type: dict
  sample:
    path: /var/tmp/osimage/work/test-initramfs.cpio.gz
    size: 1104583
    sha256: "9752c38a9065f7646ffaac3621d1fa2f7dbe726c7e12e511eac7fdb14d4e2a24"
entries:
  description: Number of archive members.
  returned: always
  type: int
  sample: 14
"""

import hashlib
import io
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._compress import compress_bytes
from ansible_collections.osimage.builder.plugins.module_utils._cpio import entries, write_newc
from ansible_collections.osimage.builder.plugins.module_utils._digest import artifact, sha256_file
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            compression=dict(type="str", default="gzip", choices=["gzip", "xz", "zstd", "none"]),
            source_date_epoch=dict(type="int", default=0),
            device_nodes=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not os.path.isdir(p["src"]):
        module.fail_json(msg="src=%s is not a directory" % p["src"])
    nodes = []
    for i, n in enumerate(p["device_nodes"]):
        try:
            kind = n["type"]
            if kind not in ("c", "b") or not str(n["path"]).startswith("/"):
                raise ValueError
            nodes.append((n["path"], kind, int(n["major"]), int(n["minor"]), int(str(n.get("mode", "0600")), 8)))
        except (KeyError, ValueError, TypeError):
            module.fail_json(msg="device_nodes[%d] needs an absolute path, type c or b, major, minor and mode: %s"
                                 % (i, n))
    buf = io.BytesIO()
    write_newc(buf, p["src"], p["source_date_epoch"], nodes)
    # The kernel's xz decompressor knows CRC32 only.
    data = compress_bytes(buf.getvalue(), p["compression"], runner=CommandRunner(module), xz_check="crc32")
    count = len(entries(p["src"], nodes))
    digest = hashlib.sha256(data).hexdigest()
    dest = p["dest"]
    if os.path.isfile(dest) and sha256_file(dest) == digest:
        module.exit_json(changed=False, artifact=artifact(dest), entries=count)
    if module.check_mode:
        module.exit_json(changed=True, artifact={"path": dest, "size": len(data), "sha256": digest}, entries=count)
    dest_dir = os.path.dirname(dest) or "."
    os.makedirs(dest_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        module.atomic_move(tmp, dest)
        os.chmod(dest, 0o644)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.exit_json(changed=True, artifact=artifact(dest), entries=count)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: build_stamp
short_description: Decide whether a pipeline's artifact is up to date, and record it when it is built
description:
  - Keeps the writer's record in the stamp C(<artifact>.stamp.json) beside an artifact (its inputs, its versions,
    the sha256 of their canonical JSON and the sha256 of every output file; osbuild's stage id; mkosi's cache
    manifest). The schema is the collection's one stamp (README.md, "The stamp"); a module that stamps the same
    artifact keeps its own record of the same file, which this module leaves as it is.
  - A stamp of the older layouts (C(<artifact>.inputs.json), C(<artifact>.pipeline.json)) is not trusted; the
    artifact counts as not built (C(no stamp beside the artifact)), and the old file is removed when the record is
    written.
  - With O(state=query) it only reads, and says whether the artifact is up to date and if not why (which inputs
    changed, which output is missing or was modified). It never reports a change.
  - With O(state=present) it records the inputs and the outputs' digests after a build.
  - With O(state=key) it keys secrets for the inputs. A stamp is a world-readable file that travels with its
    artifact, so a password must never enter it as a plain digest (fast offline guessing). O(state=key) returns
    each of O(secrets) as an HMAC-SHA256 keyed with the build host's stamp key O(key_file), which is created on
    first use (32 random bytes, mode 0600, in a directory of mode 0700) and never leaves the build host; and a
    crypt(3) salt keyed over O(inputs), the same for the same inputs, different for another image or host.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  artifact:
    description: The main artifact of the pipeline. Required unless O(state=key).
    type: path
  inputs:
    description:
      - Everything the artifact is made from (variables, digests of task files, upstream artifacts' sha256).
        Required unless O(state=key).
      - With O(state=key), the image's identity the crypt salt is made from (no secrets).
    type: dict
  versions:
    description:
      - Versions or digests of the code and tools that shape the artifact; part of the record's digest like
        O(inputs), and a change is named as C(versions (<entry>, ...)).
    type: dict
    default: {}
  outputs:
    description: Further files that belong to the artifact (package lists, manifests); they must exist too.
    type: list
    elements: path
    default: []
  writer:
    description:
      - Whose record of the stamp this is; each writer owns one record of the one stamp file. The pipeline runner
        uses C(pipeline:<role>), the collection's modules their short names (V(rootfs_archive)). Required unless
        O(state=key).
    type: str
  notes:
    description:
      - With O(state=present), sentences recorded in the stamp for whoever reads it (such as a default
        password in the image). They are not inputs.
    type: list
    elements: str
    default: []
  key_file:
    description: The build host's stamp key (O(state=key)). Refused when it or its directory is a symbolic link,
      belongs to another user, or is readable or writable by group or others.
    type: path
  secrets:
    description: Name to secret value (O(state=key)); only their keyed digests are returned.
    type: dict
    default: {}
  state:
    description: V(query) to ask, V(present) to record, V(key) to key secrets with the stamp key.
    type: str
    choices: [query, present, key]
    default: query
attributes:
  check_mode:
    support: full
    details: With O(state=key), a missing stamp key is not created in check mode; C(hmac) and C(crypt_salt) are
      then null.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The stamp key O(key_file) is a secret of the build host; back it up with the host, never with the artifacts.
seealso:
  - module: osimage.builder.build_report
  - module: osimage.builder.build_dirs
requirements:
  - Python 3 on the build host; the module runs no external program.
"""

EXAMPLES = r"""
- name: Is the OS image up to date?
  osimage.builder.build_stamp:
    artifact: /var/tmp/osimage/out/debian-bookworm-os-image.tgz
    inputs: "{{ __os_image_inputs }}"
    versions: "{{ __os_image_versions }}"
    writer: pipeline:os_image
  register: __os_image_stamp

- name: Record the OS image
  osimage.builder.build_stamp:
    artifact: /var/tmp/osimage/out/debian-bookworm-os-image.tgz
    outputs: [/var/tmp/osimage/out/debian-bookworm-os-image-packages.txt]
    inputs: "{{ __os_image_inputs }}"
    versions: "{{ __os_image_versions }}"
    writer: pipeline:os_image
    state: present

- name: Key the image's password with the build host's stamp key
  osimage.builder.build_stamp:
    state: key
    key_file: /var/cache/osimage/keys/stamp.key
    secrets:
      users_password: "{{ vault_os_image_users_password }}"
    inputs: {name: debian-bookworm, architecture: amd64}
  register: __os_image_keyed
  no_log: true
"""

RETURN = r"""
uptodate:
  description: Whether the artifact exists, its outputs are unchanged and the inputs match the recorded ones.
  returned: unless O(state=key)
  type: bool
  sample: false
reason:
  description: Why the artifact is not up to date (null when it is).
  returned: unless O(state=key)
  type: str
  sample: "inputs changed: os_image_packages"
inputs_digest:
  description: The record's digest, sha256 of the canonical JSON of O(inputs) and O(versions).
  returned: unless O(state=key)
  type: str
  sample: "008461c36bff6e833143f403cb646783d7bb19f806ed6e84dafa3bd5fac64a59"
artifacts:
  description: The artifact and the outputs, each as path, size and sha256.
  returned: when the artifact exists
  type: list
  elements: dict
  sample:
    - path: /var/tmp/osimage/output/debian-bookworm-os-image.tgz
      size: 212345678
      sha256: "2932289bf0acb10f0fbd5a1c256a728823b8f47d97bee2b3f727e6c4e00b2258"
    - path: /var/tmp/osimage/output/debian-bookworm-os-image-packages.txt
      size: 48213
      sha256: "486e2fadc86e7b05ad39b726bd35fb8a14950605da57c63b462a0b82c7f3313c"
hmac:
  description: Name to HMAC-SHA256 (hex) of each of O(secrets), keyed with the stamp key.
  returned: O(state=key)
  type: dict
  sample: {users_password: "f9ccd92bb6af4cb45e43113867e61dab39a4e7a2a0a88980a940250637773199"}
crypt_salt:
  description: 16 characters of crypt(3)'s salt alphabet, keyed with the stamp key over O(inputs).
  returned: O(state=key)
  type: str
  sample: ewDS36OKzKssuQH0
key_file:
  description: The stamp key's path.
  returned: O(state=key)
  type: str
  sample: /var/cache/osimage/keys/stamp.key
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    crypt_salt,
    keyed_digest,
    read_stamp,
    rebuild_reason,
    record_digest,
    stamp_key,
    write_stamp,
)


def key_secrets(module):
    p = module.params
    if not p["key_file"]:
        module.fail_json(msg="state=key needs key_file (the build host's stamp key)")
    try:
        key, created, problem = stamp_key(p["key_file"], create=not module.check_mode)
    except OSError as exc:
        module.fail_json(msg="cannot create the stamp key %s: %s" % (p["key_file"], exc))
    if problem:
        module.fail_json(msg=problem)
    if key is None:  # check mode, no key yet
        module.exit_json(changed=True, key_file=p["key_file"], hmac=None, crypt_salt=None)
    module.exit_json(changed=created, key_file=p["key_file"],
                     hmac={name: keyed_digest(key, name, value) for name, value in sorted(p["secrets"].items())},
                     crypt_salt=crypt_salt(key, p["inputs"] or {}))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            artifact=dict(type="path"),
            inputs=dict(type="dict"),
            versions=dict(type="dict", default={}),
            outputs=dict(type="list", elements="path", default=[]),
            writer=dict(type="str"),
            notes=dict(type="list", elements="str", default=[]),
            key_file=dict(type="path", no_log=False),
            secrets=dict(type="dict", default={}, no_log=True),
            state=dict(type="str", default="query", choices=["query", "present", "key"]),
        ),
        required_if=[("state", "query", ["artifact", "inputs", "writer"]),
                     ("state", "present", ["artifact", "inputs", "writer"])],
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "key":
        key_secrets(module)
    files = [p["artifact"]] + p["outputs"]
    missing = [f for f in files if not os.path.isfile(f)]
    if not p["writer"].strip():
        module.fail_json(msg="writer= must name whose record this is (pipeline:<role>, a module's name)")
    record = read_stamp(p["artifact"], p["writer"])
    reason = rebuild_reason(record, p["inputs"], not missing, p["versions"])
    if missing and p["state"] == "present":
        module.fail_json(msg="cannot record a build whose outputs are missing: %s" % ", ".join(missing))
    if missing:
        reason = "missing: " + ", ".join(missing)
    arts = [artifact(f) for f in files if f not in missing]
    if reason is None:
        recorded = record.get("outputs", {})
        modified = [a["path"] for a in arts if recorded.get(a["path"]) != a["sha256"]]
        if modified:
            reason = "modified since built: " + ", ".join(modified)
    result = dict(changed=False, uptodate=reason is None, reason=reason,
                  inputs_digest=record_digest(p["inputs"], p["versions"]), artifacts=arts)
    if p["state"] == "present" and reason is not None:
        result["changed"] = True
        if not module.check_mode:
            write_stamp(p["artifact"], p["writer"], p["inputs"], {a["path"]: a["sha256"] for a in arts},
                        versions=p["versions"], notes=p["notes"])
        result.update(uptodate=True, reason=None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

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
  - Keeps C(<artifact>.inputs.json) beside an artifact, holding the sha256 of the sorted JSON of the pipeline's
    inputs and the sha256 of every output file (osbuild's stage id; mkosi's cache manifest).
  - With O(state=query) it only reads, and says whether the artifact is up to date and if not why (which inputs
    changed, which output is missing or was modified). It never reports a change.
  - With O(state=present) it records the inputs and the outputs' digests after a build.
version_added: 0.1.0
author: osimage.builder contributors
options:
  artifact:
    description: The main artifact of the pipeline.
    type: path
    required: true
  inputs:
    description: Everything the artifact is made from (variables, digests of task files, upstream artifacts' sha256).
    type: dict
    required: true
  outputs:
    description: Further files that belong to the artifact (package lists, manifests); they must exist too.
    type: list
    elements: path
    default: []
  suffix:
    description:
      - Suffix of the stamp file beside the artifact. A pipeline whose last module keeps its own
        C(.inputs.json) beside the same artifact uses another one.
    type: str
    default: .inputs.json
  state:
    description: V(query) to ask, V(present) to record.
    type: str
    choices: [query, present]
    default: query
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Is the OS image up to date?
  osimage.builder.build_stamp:
    artifact: /var/tmp/osimage/out/debian-bookworm-os-image.tgz
    inputs: "{{ __os_image_inputs }}"
  register: __os_image_stamp

- name: Record the OS image
  osimage.builder.build_stamp:
    artifact: /var/tmp/osimage/out/debian-bookworm-os-image.tgz
    outputs: [/var/tmp/osimage/out/debian-bookworm-os-image-packages.txt]
    inputs: "{{ __os_image_inputs }}"
    state: present
"""

RETURN = r"""
uptodate:
  description: Whether the artifact exists, its outputs are unchanged and the inputs match the recorded ones.
  returned: always
  type: bool
reason:
  description: Why the artifact is not up to date (null when it is).
  returned: always
  type: str
  sample: "inputs changed: os_image_packages"
inputs_digest:
  description: sha256 of the sorted JSON of O(inputs).
  returned: always
  type: str
artifacts:
  description: The artifact and the outputs, each as path, size and sha256.
  returned: when the artifact exists
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import (
    artifact,
    inputs_digest,
    read_stamp,
    rebuild_reason,
    write_stamp,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            artifact=dict(type="path", required=True),
            inputs=dict(type="dict", required=True),
            outputs=dict(type="list", elements="path", default=[]),
            suffix=dict(type="str", default=".inputs.json"),
            state=dict(type="str", default="query", choices=["query", "present"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    files = [p["artifact"]] + p["outputs"]
    missing = [f for f in files if not os.path.isfile(f)]
    if not p["suffix"].startswith(".") or "/" in p["suffix"]:
        module.fail_json(msg="suffix=%s must start with a dot and name no directory" % p["suffix"])
    stamp = read_stamp(p["artifact"], p["suffix"])
    reason = rebuild_reason(stamp, p["inputs"], not missing)
    if missing and p["state"] == "present":
        module.fail_json(msg="cannot record a build whose outputs are missing: %s" % ", ".join(missing))
    if missing:
        reason = "missing: " + ", ".join(missing)
    arts = [artifact(f) for f in files if f not in missing]
    if reason is None:
        recorded = stamp.get("outputs", {}).get("sha256", {})
        modified = [a["path"] for a in arts if recorded.get(a["path"]) != a["sha256"]]
        if modified:
            reason = "modified since built: " + ", ".join(modified)
    result = dict(changed=False, uptodate=reason is None, reason=reason,
                  inputs_digest=inputs_digest(p["inputs"]), artifacts=arts)
    if p["state"] == "present" and reason is not None:
        result["changed"] = True
        if not module.check_mode:
            write_stamp(p["artifact"], p["inputs"], {"sha256": {a["path"]: a["sha256"] for a in arts}},
                        suffix=p["suffix"])
        result.update(uptodate=True, reason=None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: build_report
short_description: Write a pipeline's build report beside its artifact, or read it back
description:
  - With O(state=present) writes C(<path>.report.json) and its Markdown rendering C(<path>.report.md) beside the
    artifact O(path) - the pipeline, its stages (status V(built), V(resumed) or V(up-to-date), and seconds), the
    artifacts as path, size and sha256 (read from the files), the inputs, the build host (hostname, kernel,
    distribution, read on the build host), the tool versions and the start and finish times (UTC).
  - Both files are written under a temporary name in the artifact's directory and renamed into place.
  - Idempotent apart from timestamps. When the report already says the same (the same pipeline, stages and
    statuses, artifacts and their digests, inputs, details, notes, build host and versions) the files are left as
    they are, times and seconds included, and the result is C(changed=false).
  - The report travels with the artifact and is world-readable, so no secret belongs in it. An input whose name
    says it is a secret or a digest of one (password, passphrase, secret, token, hmac, private_key) is an error;
    keep such values in the stamp only (M(osimage.builder.build_stamp)).
  - With O(state=read) returns the report that is there (a no-op run of a pipeline hands on what its last build
    recorded) and never writes.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The pipeline's main artifact; the report files are named after it.
    type: path
    required: true
  state:
    description: V(present) to write the report, V(read) to read it back.
    type: str
    choices: [present, read]
    default: present
  pipeline:
    description: The pipeline's name (its role prefix, such as V(rkt_stage1)). Required with O(state=present).
    type: str
  title:
    description: The pipeline's name for people (such as V(Stage1-kvm)); default O(pipeline).
    type: str
  stages:
    description: The stages in order, each C({stage, status, seconds}); status one of V(built), V(resumed),
      V(up-to-date).
    type: list
    elements: dict
    default: []
  artifacts:
    description: The files the build produced; default O(path) alone. Each is reported with its size and sha256.
    type: list
    elements: path
  inputs:
    description: What shapes the artifact, as the pipeline's stamp has it (without secrets).
    type: dict
    default: {}
  details:
    description: Facts about the artifact worth keeping (an image id, a kernel release).
    type: dict
    default: {}
  notes:
    description: Sentences for whoever reads the report.
    type: list
    elements: str
    default: []
  versions:
    description: Tool name to version (ansible-core, the collection, the code that shapes the artifact).
    type: dict
    default: {}
  started:
    description: When the run started (ISO 8601, UTC).
    type: str
  finished:
    description: When the run finished (ISO 8601, UTC); default now.
    type: str
attributes:
  check_mode:
    support: full
    details: Nothing is written; RV(report) is the report that would be written (artifacts that do not exist yet
      are left out of it).
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: osimage.builder.build_stamp
requirements:
  - Python 3 on the build host; the module runs no external program.
"""

EXAMPLES = r"""
- name: Write the build report of the stage1 image
  osimage.builder.build_report:
    path: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci
    pipeline: rkt_stage1
    title: Stage1-kvm
    stages:
      - {stage: config, status: built, seconds: 0.4}
      - {stage: kernel, status: built, seconds: 212.0}
      - {stage: rootfs, status: built, seconds: 3.1}
      - {stage: aci, status: built, seconds: 5.6}
    inputs: {kernel_version: "6.1", upstream_version: 1.30.0}
    versions: {ansible-core: "{{ ansible_version.full }}"}
    started: "2026-12-01T08:00:00Z"

- name: Read what the last build recorded
  osimage.builder.build_report:
    path: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci
    state: read
  register: __stage1_report
"""

RETURN = r"""
report:
  description: The report (as written, as it already was, or as read).
  returned: success
  type: dict
  sample:
    schema: 1
    pipeline: rkt_stage1
    title: Stage1-kvm
    stages:
      - {stage: config, status: built, seconds: 0.4}
      - {stage: kernel, status: built, seconds: 212.0}
      - {stage: rootfs, status: built, seconds: 3.1}
      - {stage: aci, status: built, seconds: 5.6}
    artifacts:
      - path: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci
        size: 14783529
        sha256: "9f10f645170216d32bff57fe46f386ad5a3f46e30db179411561bfbbcdb279fe"
    inputs: {kernel_version: "6.1", upstream_version: 1.30.0}
    details: {kernel_release: 6.1.119-osimage-v1}
    notes: []
    build_host: {hostname: build01, kernel: 6.1.0-28-amd64, distribution: Debian GNU/Linux 12 (bookworm)}
    versions: {ansible-core: 2.17.5, osimage.builder: 0.1.0}
    started: "2026-12-01T08:00:00Z"
    finished: "2026-12-01T08:03:41Z"
json_path:
  description: The path of C(<path>.report.json).
  returned: success
  type: str
  sample: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci.report.json
markdown_path:
  description: The path of C(<path>.report.md).
  returned: success
  type: str
  sample: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci.report.md
artifacts:
  description: The report's artifacts as path, size and sha256.
  returned: success
  type: list
  elements: dict
  sample:
    - path: /var/tmp/osimage/output/stage1-kvm-1.30.0-linux-6.1.aci
      size: 14783529
      sha256: "9f10f645170216d32bff57fe46f386ad5a3f46e30db179411561bfbbcdb279fe"
"""

import datetime
import json
import os
import platform
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import artifact, write_text_atomically
from ansible_collections.osimage.builder.plugins.module_utils._report import (
    build_record,
    os_release_name,
    render_markdown,
    report_paths,
    secret_names,
    stable_part,
    stage_problems,
    to_json,
)


def build_host():
    try:
        with open("/etc/os-release") as f:
            distribution = os_release_name(f.read())
    except OSError:
        distribution = "unknown"
    return {"hostname": socket.gethostname(), "kernel": platform.release(), "distribution": distribution}


def read_report(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "read"]),
            pipeline=dict(type="str"),
            title=dict(type="str"),
            stages=dict(type="list", elements="dict", default=[]),
            artifacts=dict(type="list", elements="path"),
            inputs=dict(type="dict", default={}),
            details=dict(type="dict", default={}),
            notes=dict(type="list", elements="str", default=[]),
            versions=dict(type="dict", default={}),
            started=dict(type="str"),
            finished=dict(type="str"),
        ),
        required_if=[("state", "present", ["pipeline"])],
        supports_check_mode=True,
    )
    p = module.params
    json_path, md_path = report_paths(p["path"])
    result = dict(changed=False, json_path=json_path, markdown_path=md_path)
    old = read_report(json_path)
    if p["state"] == "read":
        if old is None:
            module.fail_json(msg="no build report at %s (or it is not JSON); build the artifact first, or force a "
                                 "rebuild to write it" % json_path, **result)
        module.exit_json(report=old, artifacts=old.get("artifacts", []), **result)

    problems = stage_problems(p["stages"])
    if problems:
        module.fail_json(msg="stages: " + "; ".join(problems), **result)
    secrets = secret_names(p["inputs"]) + ["details." + n for n in secret_names(p["details"])]
    if secrets:
        module.fail_json(msg="inputs that look like secrets do not belong in a build report (it is world-readable "
                             "and travels with the artifact): %s; keep them in the stamp only "
                             "(the pipeline runner's pipeline_secret_inputs)" % ", ".join(secrets), **result)
    files = p["artifacts"] if p["artifacts"] is not None else [p["path"]]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing and not module.check_mode:
        module.fail_json(msg="cannot report artifacts that do not exist: %s" % ", ".join(missing), **result)
    arts = [artifact(f) for f in files if f not in missing]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = build_record(p["pipeline"], p["title"], p["stages"], arts, p["inputs"], build_host(), p["versions"],
                          p["started"] or now, p["finished"] or now, details=p["details"], notes=p["notes"])
    if old is not None and stable_part(old) == stable_part(record) and os.path.isfile(md_path):
        module.exit_json(report=old, artifacts=old["artifacts"], **result)
    result["changed"] = True
    if not module.check_mode:
        try:
            write_text_atomically(md_path, render_markdown(record))
            write_text_atomically(json_path, to_json(record))
        except OSError as exc:
            module.fail_json(msg="cannot write the build report %s: %s" % (json_path, exc), **result)
    module.exit_json(report=record, artifacts=record["artifacts"], **result)


if __name__ == "__main__":
    main()

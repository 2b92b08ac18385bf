# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build report a pipeline leaves beside its artifact:
`<artifact>.report.json` (the record) and `<artifact>.report.md` (the same,
for people). Pure functions: the record, what of it is volatile, the check
that keeps secrets out, the Markdown rendering (mkosi's and osbuild's build
logs outlive the terminal; BOSH prints the stage table at the end)."""

from __future__ import annotations

import json
import re

SCHEMA = 1
STATUSES = ("built", "resumed", "up-to-date")
JSON_SUFFIX = ".report.json"
MD_SUFFIX = ".report.md"
# The report is a world-readable file that travels with the artifact: an
# input whose name says it is a secret, or a digest of one, does not belong
# in it (the runner's pipeline_secret_inputs go into the stamp only).
SECRET_NAME_RE = re.compile(r"password|passphrase|secret|token|hmac|private_key", re.IGNORECASE)


def report_paths(artifact_path):
    base = artifact_path.rstrip("/")
    return base + JSON_SUFFIX, base + MD_SUFFIX


def secret_names(value, prefix=""):
    """Dotted names of the keys of a (nested) input dict that look like a
    secret or a digest of one, sorted."""
    found = []
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            name = "%s%s" % (prefix, key)
            if SECRET_NAME_RE.search(str(key)):
                found.append(name)
            found += secret_names(value[key], name + ".")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += secret_names(item, "%s%d." % (prefix, i))
    return found


def stage_problems(stages):
    """What is wrong with a stage list ([] when nothing): each a dict with
    a name, a status of STATUSES and non-negative seconds."""
    problems = []
    for i, st in enumerate(stages):
        if not isinstance(st, dict) or not st.get("stage"):
            problems.append("stages[%d] has no stage name" % i)
            continue
        if st.get("status") not in STATUSES:
            problems.append("stages[%d] (%s): status=%r is not one of %s"
                            % (i, st["stage"], st.get("status"), ", ".join(STATUSES)))
        try:
            if float(st.get("seconds", 0)) < 0:
                raise ValueError
        except (TypeError, ValueError):
            problems.append("stages[%d] (%s): seconds=%r is not a non-negative number"
                            % (i, st["stage"], st.get("seconds")))
    return problems


def build_record(pipeline, title, stages, artifacts, inputs, build_host, versions, started, finished,
                 details=None, notes=None):
    """The report as it is written to `<artifact>.report.json`."""
    return {
        "schema": SCHEMA,
        "pipeline": pipeline,
        "title": title or pipeline,
        "stages": [{"stage": s["stage"], "status": s["status"], "seconds": round(float(s.get("seconds", 0)), 1)}
                   for s in stages],
        "artifacts": [{"path": a["path"], "size": int(a["size"]), "sha256": a["sha256"]} for a in artifacts],
        "inputs": inputs,
        "details": details or {},
        "notes": list(notes or []),
        "build_host": build_host,
        "versions": {str(k): str(v) for k, v in (versions or {}).items()},
        "started": started,
        "finished": finished,
    }


def stable_part(record):
    """The record without what changes on every run (the times), so that a
    rebuild with the same inputs, stages and artifacts leaves the report as
    it is: idempotent apart from timestamps."""
    if not isinstance(record, dict):
        return None
    stable = {k: v for k, v in record.items() if k not in ("started", "finished")}
    stable["stages"] = [{k: v for k, v in s.items() if k != "seconds"} for s in record.get("stages", [])
                        if isinstance(s, dict)]
    return json.loads(json.dumps(stable, sort_keys=True, default=str))


def to_json(record):
    return json.dumps(record, sort_keys=True, indent=2, default=str) + "\n"


def _md_cell(value):
    return str(value).replace("|", "\\|").replace("\n", " ")


def _size(size):
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return "%d B" % size if unit == "B" else "%.1f %s" % (size, unit)
        size /= 1024
    return "%.1f GiB" % size


def render_markdown(record):
    """The report for people: the stage table, the artifacts with their
    digests, inputs, build host and versions."""
    stages = record.get("stages", [])
    built = [s for s in stages if s.get("status") == "built"]
    out = ["# %s build report" % _md_cell(record.get("title") or record.get("pipeline")), ""]
    out += ["- pipeline: `%s`" % record.get("pipeline"),
            "- started: %s" % record.get("started"),
            "- finished: %s" % record.get("finished"),
            "", "## Stages", "", "| stage | status | seconds |", "|---|---|---:|"]
    for s in stages:
        secs = "%.1f" % float(s.get("seconds", 0)) if s.get("status") == "built" else ""
        out.append("| %s | %s | %s |" % (_md_cell(s.get("stage")), _md_cell(s.get("status")), secs))
    out.append("| total | | %.1f |" % sum(float(s.get("seconds", 0)) for s in built))
    out += ["", "## Artifacts", "", "| path | size | sha256 |", "|---|---:|---|"]
    for a in record.get("artifacts", []):
        out.append("| `%s` | %s | `%s` |" % (_md_cell(a["path"]), _size(a["size"]), a["sha256"]))
    if record.get("details"):
        out += ["", "## Details", ""]
        out += ["- %s: `%s`" % (_md_cell(k), _md_cell(v)) for k, v in sorted(record["details"].items())]
    if record.get("notes"):
        out += ["", "## Notes", ""] + ["- %s" % _md_cell(n) for n in record["notes"]]
    inputs = json.dumps(record.get("inputs", {}), sort_keys=True, indent=2, default=str)
    out += ["", "## Inputs", "", "```json", inputs, "```"]
    host = record.get("build_host", {})
    out += ["", "## Build host", ""] + ["- %s: %s" % (k, _md_cell(v)) for k, v in sorted(host.items())]
    out += ["", "## Versions", ""] + ["- %s: %s" % (_md_cell(k), _md_cell(v))
                                      for k, v in sorted(record.get("versions", {}).items())]
    return "\n".join(out) + "\n"


def os_release_name(text):
    """PRETTY_NAME (else NAME VERSION_ID) of an os-release file's text."""
    values = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z_]+)=(.*)$", line.strip())
        if m:
            values[m.group(1)] = m.group(2).strip().strip("\"'")
    return values.get("PRETTY_NAME") or " ".join(x for x in (values.get("NAME"), values.get("VERSION_ID")) if x) \
        or "unknown"

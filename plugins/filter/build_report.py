# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that format a pipeline's stage timing table and artifact lines,
as BOSH's stemcell builder prints them at the end of a build."""

from __future__ import annotations

from ansible_collections.osimage.builder.plugins.module_utils._build_host import missing_message

# Each filter is documented in plugins/filter/<name>.yml (ansible-doc -t filter osimage.builder.<name>).


def stage_row(timing, width=32):
    """One row: seconds for a stage that ran, else its status (the pipeline
    runner's C(status) built/resumed/up-to-date, or the older C(skipped))."""
    status = timing.get("status") or ("resumed" if timing.get("skipped") else "built")
    if status == "resumed":
        return "%-*s %9s" % (width, timing["stage"], "resumed")
    if status == "up-to-date":
        return "%-*s %10s" % (width, timing["stage"], "up to date")
    return "%-*s %7.1f s" % (width, timing["stage"], float(timing["seconds"]))


def stages_with_status(names, status):
    """The stage table's entries for stages that did not run: each name
    with a status (up-to-date on a no-op run) and no seconds."""
    return [{"stage": name, "status": status, "seconds": 0.0} for name in names]


def failure_message(result):
    """The message of a failed task result as one sentence without its
    closing full stop, for "<Pipeline> stage <name> failed: <msg>. ...": a
    loop's first failed item's message rather than "One or more items
    failed", an included file's or a module's own message otherwise."""
    if not isinstance(result, dict):
        return str(result).strip().rstrip(".").strip()
    msg = result.get("msg")
    items = [r for r in result.get("results", []) or [] if isinstance(r, dict) and r.get("failed")]
    if items and (not msg or "items failed" in str(msg)):
        msg = failure_message(items[0])
    if not msg:
        msg = result.get("stderr") or result.get("reason") or "the task failed without a message"
    msg = " ".join(str(msg).split())
    # ansible-core 2.19 prefixes a failed task's message; the runner says which stage failed.
    if msg.startswith("Task failed: "):
        msg = msg[len("Task failed: "):]
    return msg.rstrip(".").strip()


def human_size(size):
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return "%.1f %s" % (size, unit) if unit != "B" else "%d B" % size
        size /= 1024
    return "%.1f GiB" % size


def artifact_row(art):
    return "%s  %s  sha256:%s" % (art["path"], human_size(art["size"]), art["sha256"])


def format_missing(program):
    """The modules' own wording of a missing program, for a program name."""
    return missing_message(program["name"] if isinstance(program, dict) else program)


class FilterModule:
    def filters(self):
        return {"stage_row": stage_row, "artifact_row": artifact_row, "human_size": human_size,
                "format_missing": format_missing, "failure_message": failure_message,
                "stages_with_status": stages_with_status}

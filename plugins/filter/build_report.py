# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that format a pipeline's stage timing table and artifact lines,
as BOSH's stemcell builder prints them at the end of a build."""

from __future__ import annotations

DOCUMENTATION = r"""
name: stage_row
short_description: Format one stage timing as a table row
description: Turns C({stage, seconds, skipped}) into a fixed-width row of a stage timing table.
options:
  _input:
    description: The stage timing.
    type: dict
    required: true
"""


def stage_row(timing, width=32):
    if timing.get("skipped"):
        return "%-*s %9s" % (width, timing["stage"], "resumed")
    return "%-*s %7.1f s" % (width, timing["stage"], float(timing["seconds"]))


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
    """'qemu-img (install qemu-utils)' for a {name, package} entry."""
    return "%s not found (install %s)" % (program["name"], program["package"])


class FilterModule:
    def filters(self):
        return {"stage_row": stage_row, "artifact_row": artifact_row, "human_size": human_size,
                "format_missing": format_missing}

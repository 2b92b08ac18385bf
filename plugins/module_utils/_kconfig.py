# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel configuration as pure functions: parse .config and fragment
lines, find requested options that did not stick after merging, and the
reproducible-build environment of a kernel build."""

from __future__ import annotations

import re

SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_config(text):
    """{CONFIG_NAME: value} with 'n' for '# CONFIG_X is not set'."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        m = SET_RE.match(line)
        if m:
            out[m.group(1)] = m.group(2)
            continue
        m = UNSET_RE.match(line)
        if m:
            out[m.group(1)] = "n"
    return out


# Kconfig symbol names, and the values a .config line may hold: a tristate or
# bool, a decimal or hex number, or a double-quoted string with no newline and
# no unescaped quote (scripts/kconfig/confdata.c).
SYMBOL_RE = re.compile(r"^(CONFIG_)?[A-Za-z0-9_]+\Z")
VALUE_RE = re.compile(r'^(y|m|n|-?[0-9]+|0x[0-9a-fA-F]+|"([^"\\\n]|\\.)*")\Z')


def invalid_options(options):
    """'NAME=value' for each option a .config line cannot hold as given: a
    newline or a stray quote would write lines of its own into the fragment."""
    bad = []
    for name, value in sorted(options.items()):
        text = {True: "y", False: "n"}.get(value, value) if isinstance(value, bool) else str(value)
        if not SYMBOL_RE.match(str(name)) or not VALUE_RE.match(text):
            bad.append("%s=%r" % (name, value))
    return bad


def fragment_from_options(options):
    """A config fragment from {CONFIG_X: y|m|n|"string"|123}; names may omit CONFIG_."""
    lines = []
    for name, value in sorted(options.items()):
        key = name if name.startswith("CONFIG_") else "CONFIG_" + name
        if value is True:
            value = "y"
        elif value is False:
            value = "n"
        value = str(value)
        lines.append("# %s is not set" % key if value == "n" else "%s=%s" % (key, value))
    return "\n".join(lines) + ("\n" if lines else "")


def missing_options(requested, final):
    """Requested options whose value is not in the final .config, as
    'CONFIG_X=want (got have)'; an option the kernel does not know ends up
    absent and is reported too."""
    problems = []
    for name, want in sorted(requested.items()):
        have = final.get(name, "n" if want == "n" else None)
        if have != want:
            problems.append("%s=%s (got %s)" % (name, want, "not set" if have in (None, "n") else have))
    return problems


def build_env(source_date_epoch, user="osimage", host="builder"):
    """KBUILD_BUILD_TIMESTAMP/USER/HOST for a reproducible kernel."""
    import datetime
    stamp = datetime.datetime.fromtimestamp(source_date_epoch, datetime.timezone.utc)
    return {"KBUILD_BUILD_TIMESTAMP": stamp.strftime("%a %b %d %H:%M:%S UTC %Y"),
            "KBUILD_BUILD_USER": user, "KBUILD_BUILD_HOST": host, "SOURCE_DATE_EPOCH": str(source_date_epoch)}

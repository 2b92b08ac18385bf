# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian/Ubuntu facts as pure functions: which distribution a suite belongs
to, the build host's own mirror from its apt sources, and the installed
package list from a dpkg status database."""

from __future__ import annotations

import os
import re

DEBIAN_SUITES = (
    "buster", "bullseye", "bookworm", "trixie", "forky", "sid",
    "oldoldstable", "oldstable", "stable", "testing", "unstable",
)
UBUNTU_SUITES = ("focal", "jammy", "noble", "oracular", "plucky", "questing")
# The suites the os_image role builds (it has their package lists); the
# role's argument_specs choices are checked against this by the unit tests.
OS_IMAGE_SUITES = ("bullseye", "bookworm", "trixie", "jammy", "noble")

DEFAULT_KEYRINGS = {
    "debian": "/usr/share/keyrings/debian-archive-keyring.gpg",
    "ubuntu": "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
}

# A package name per Debian policy 5.6.1 (an optional :arch qualifier and an
# optional =version pin are allowed in include lists).
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$")


def distribution_of(suite):
    """'debian' or 'ubuntu' for a known suite codename, else None."""
    base = suite.split("-")[0]
    if base in DEBIAN_SUITES:
        return "debian"
    if base in UBUNTU_SUITES:
        return "ubuntu"
    return None


def known_suites():
    return sorted(DEBIAN_SUITES + UBUNTU_SUITES)


def invalid_packages(names):
    return [n for n in names if not PACKAGE_RE.match(n)]


def parse_one_line_sources(text):
    """Entries of a one-line sources.list."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if parts[0] not in ("deb", "deb-src"):
            continue
        options = {}
        rest = parts[1:]
        if rest and rest[0].startswith("["):
            opt = []
            while rest:
                word = rest.pop(0)
                opt.append(word)
                if word.endswith("]"):
                    break
            for item in " ".join(opt).strip("[]").split():
                if "=" in item:
                    k, v = item.split("=", 1)
                    options[k] = v
        if len(rest) < 2:
            continue
        entries.append({
            "types": [parts[0]], "uris": [rest[0]], "suites": [rest[1]],
            "components": rest[2:], "signed_by": options.get("signed-by", ""),
        })
    return entries


def parse_deb822_sources(text):
    """Entries of a deb822 .sources file."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:
                fields[key] += "\n" + raw.strip()
                continue
            if ":" in raw:
                key, value = raw.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if not fields.get("uris") or fields.get("enabled", "yes").lower() == "no":
            continue
        entries.append({
            "types": fields.get("types", "deb").split(),
            "uris": fields["uris"].split(),
            "suites": fields.get("suites", "").split(),
            "components": fields.get("components", "").split(),
            "signed_by": fields.get("signed-by", ""),
        })
    return entries


def read_host_sources(etc="/etc/apt"):
    entries = []
    files = [os.path.join(etc, "sources.list")]
    d = os.path.join(etc, "sources.list.d")
    if os.path.isdir(d):
        files += [os.path.join(d, n) for n in sorted(os.listdir(d))]
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            entries += parse_deb822_sources(text)
        elif path.endswith(".list"):
            entries += parse_one_line_sources(text)
    return entries


def host_mirror(entries, distribution):
    """The build host's own archive mirror for a distribution: the URI of the
    first binary entry whose suites are that distribution's (not its security
    archive, which carries only updates). None when the host has none."""
    for entry in entries:
        if "deb" not in entry["types"]:
            continue
        suites = [s for s in entry["suites"] if not s.endswith("-security") and not s.endswith("/updates")]
        if not suites or any(distribution_of(s) != distribution for s in suites):
            continue
        for uri in entry["uris"]:
            if uri.startswith(("http://", "https://", "file:/")):
                return uri.rstrip("/")
    return None


def control_stanzas(text):
    """The stanzas of a Debian control-format file (dpkg status, Packages
    index) as dicts of their single-line fields; continuation lines are
    skipped."""
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
        yield fields


def parse_dpkg_status(text):
    """Installed packages in a dpkg status file: [{name, version,
    architecture}], sorted by name then architecture."""
    packages = []
    for fields in control_stanzas(text):
        if fields.get("Package") and fields.get("Status", "").endswith(" installed") \
                and fields.get("Status", "").startswith("install "):
            packages.append({
                "name": fields["Package"],
                "version": fields.get("Version", ""),
                "architecture": fields.get("Architecture", ""),
            })
    return sorted(packages, key=lambda p: (p["name"], p["architecture"]))


def installed_names(packages):
    return {p["name"] for p in packages}


def debootstrap_default_mirror(script_text, architecture):
    """The archive debootstrap itself would use for a suite: the
    `default_mirror` of its suite script, taking the current-release branch
    (not old-releases) and the ports archive for non-x86 architectures."""
    mirrors = re.findall(r"default_mirror\s+(\S+)", script_text)
    current = [m for m in mirrors if "old-releases" not in m]
    if architecture in ("amd64", "i386"):
        picks = [m for m in current if "ports" not in m]
    else:
        picks = [m for m in current if "ports" in m]
    return (picks or current or mirrors or [None])[0]


def release_sha256(release_text, path):
    """sha256 of `path` (for example main/binary-amd64/Packages.gz) in a
    Release/InRelease file, or None."""
    in_sha256 = False
    for line in release_text.splitlines():
        if line.startswith("SHA256:"):
            in_sha256 = True
            continue
        if in_sha256:
            if not line.startswith(" "):
                in_sha256 = False
                continue
            parts = line.split()
            if len(parts) == 3 and parts[2] == path:
                return parts[0]
    return None


def package_stanza(packages_text, name):
    """Fields of a package's stanza in a Packages index (highest version
    first is not needed: an archive suite has one per architecture)."""
    for fields in control_stanzas(packages_text):
        if fields.get("Package") == name:
            return fields
    return None


def validsig_fingerprints(status_text):
    """Primary-key fingerprints of good signatures in gpgv --status-fd output."""
    fprs = []
    for line in status_text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "[GNUPG:]" and parts[1] == "VALIDSIG":
            fprs.append(parts[-1].upper())
    return fprs

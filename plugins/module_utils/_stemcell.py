# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BOSH stemcell layout as pure functions: the infrastructures BOSH builds
for (bosh-stemcell/lib/bosh/stemcell/infrastructure.rb), stemcell names and
file names, stemcell.MF, the SPDX SBOM and the tarball's member list."""

from __future__ import annotations

import re
import uuid

# infrastructure -> hypervisor, disk formats (the first is the default and
# gets no suffix in the file name), stemcell format per disk format, extra
# cloud_properties.
INFRASTRUCTURES = {
    "openstack": {"hypervisor": "kvm", "disk_formats": ["qcow2", "raw"],
                  "stemcell_formats": {"qcow2": "openstack-qcow2", "raw": "openstack-raw"},
                  "container_format": "bare", "extra": {"auto_disk_config": True}},
    "aws": {"hypervisor": "xen-hvm", "disk_formats": ["raw"], "stemcell_formats": {"raw": "aws-raw"},
            "container_format": "bare",
            "extra": {"root_device_name": "/dev/sda1", "virtualization_type": "hvm"}},
    "warden": {"hypervisor": "boshlite", "disk_formats": ["files"], "stemcell_formats": {"files": "warden-tar"},
               "container_format": "bare", "extra": {}},
}
HYPERVISOR_ALIASES = {("aws", "xen"): "xen-hvm"}
MEMBERS = ["image", "stemcell.MF", "packages.txt", "dev_tools_file_list.txt", "sbom.spdx.json"]
# BOSH stemcell versions (semi_semantic: dot-separated segments of letters,
# digits, _ and -, with + and - for post/pre releases): "1.0", "621.125",
# "0000", "1.0.0-dev.1". No space, no "/", no empty segment (so no ".."): the
# version becomes part of file names. The roles' plans check the same rule.
# \Z, not $: $ also matches before a final newline.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_+-]*(\.[0-9A-Za-z_+-]+)*\Z")
# BOSH operating system names ("ubuntu-jammy", "debian-bookworm"): they name
# files and directories.
OS_NAME_RE = VERSION_RE


def resolve(infrastructure, hypervisor, disk_format):
    """(hypervisor, error): the BOSH hypervisor name for the combination, or
    why BOSH has no such stemcell."""
    if infrastructure not in INFRASTRUCTURES:
        return None, "infrastructure=%s is not one BOSH builds stemcells for here; known: %s" % (
            infrastructure, ", ".join(sorted(INFRASTRUCTURES)))
    info = INFRASTRUCTURES[infrastructure]
    hyp = HYPERVISOR_ALIASES.get((infrastructure, hypervisor), hypervisor)
    if hyp != info["hypervisor"]:
        return None, "BOSH has no %s stemcell for hypervisor=%s; %s uses %s" % (
            infrastructure, hypervisor, infrastructure, info["hypervisor"])
    if disk_format not in info["disk_formats"]:
        return None, "BOSH has no %s/%s stemcell in disk_format=%s; formats: %s" % (
            infrastructure, hyp, disk_format, ", ".join(info["disk_formats"]))
    return hyp, None


def stemcell_name(infrastructure, hypervisor, os_name, agent="go_agent"):
    return "bosh-%s-%s-%s-%s" % (infrastructure, hypervisor, os_name, agent)


def stemcell_filename(version, infrastructure, hypervisor, os_name, disk_format, agent="go_agent"):
    """BOSH's file name: bosh-stemcell-<version>-<infra>-<hypervisor>-<os>-go_agent[-<format>].tgz,
    the format suffix only for a format that is not the infrastructure's default."""
    default = INFRASTRUCTURES[infrastructure]["disk_formats"][0]
    suffix = "" if disk_format == default else "-" + disk_format
    return "bosh-stemcell-%s-%s-%s-%s-%s%s.tgz" % (version, infrastructure, hypervisor, os_name, agent, suffix)


def manifest(version, infrastructure, hypervisor, os_name, os_distro, disk_format, image_sha1, disk_mb,
             architecture="x86_64", api_version=3, extra=None):
    info = INFRASTRUCTURES[infrastructure]
    name = stemcell_name(infrastructure, hypervisor, os_name)
    cloud = {"name": name, "version": str(version), "infrastructure": infrastructure,
             "hypervisor": hypervisor.split("-")[0] if infrastructure == "aws" else hypervisor,
             "disk": disk_mb, "disk_format": disk_format, "container_format": info["container_format"],
             "os_type": "linux", "os_distro": os_distro, "architecture": architecture}
    cloud.update(info["extra"])
    cloud.update(extra or {})
    return {"name": name, "version": str(version), "bosh_protocol": "1", "api_version": api_version,
            "sha1": image_sha1, "operating_system": os_name,
            "stemcell_formats": [info["stemcell_formats"][disk_format]], "cloud_properties": cloud}


def spdx_sbom(name, packages, created, namespace_seed):
    """An SPDX 2.3 JSON document listing the image's Debian packages with
    purls (what BOSH gets from syft, made here from the package database)."""
    doc_ns = "https://osimage.builder/spdx/%s-%s" % (name, uuid.uuid5(uuid.NAMESPACE_URL, namespace_seed))
    pkgs = []
    for p in packages:
        ident = "SPDXRef-Package-deb-%s-%s" % (
            re.sub(r"[^A-Za-z0-9.-]", "-", p["name"]), re.sub(r"[^A-Za-z0-9.-]", "-", p["architecture"]))
        pkgs.append({
            "SPDXID": ident, "name": p["name"], "versionInfo": p["version"], "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False, "supplier": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": "pkg:deb/%s/%s@%s?arch=%s" % (
                                  p.get("distro", "debian"), p["name"], p["version"], p["architecture"])}],
        })
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": name,
        "documentNamespace": doc_ns,
        "creationInfo": {"created": created, "creators": ["Tool: osimage.builder-stemcell_package"]},
        "packages": pkgs,
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                           "relatedSpdxElement": x["SPDXID"]} for x in pkgs],
    }


def member_problems(names):
    """What is wrong with a stemcell tarball's member list (missing, extra,
    duplicate members), [] when it is exactly BOSH's."""
    clean = [n[2:] if n.startswith("./") else n for n in names if n not in (".", "./")]
    problems = []
    missing = sorted(set(MEMBERS) - set(clean))
    extra = sorted(set(clean) - set(MEMBERS))
    dups = sorted({n for n in clean if clean.count(n) > 1})
    if missing:
        problems.append("missing members: " + ", ".join(missing))
    if extra:
        problems.append("extra members: " + ", ".join(extra))
    if dups:
        problems.append("duplicate members: " + ", ".join(dups))
    return problems


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    # Double-quoted YAML scalars are JSON strings.
    import json
    return json.dumps(str(value))


def to_yaml(value, indent=0):
    """Block-style YAML for dicts, lists and scalars (what stemcell.MF holds)."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, dict):
                lines.append("%s%s: {}" % (pad, k))
            elif isinstance(v, list):
                lines.append("%s%s: []" % (pad, k))
            else:
                lines.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, dict):
                inner = to_yaml(v, indent + 2).lstrip()
                lines.append("%s- %s" % (pad, inner))
            else:
                lines.append("%s- %s" % (pad, _scalar(v)))
    return "\n".join(lines)

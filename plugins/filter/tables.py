# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's tables, read by the roles: suite -> distribution
(plugins/module_utils/_debian.py) and BOSH's infrastructures
(plugins/module_utils/_stemcell.py). They live once, in Python; the roles
never restate them in Jinja."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.osimage.builder.plugins.module_utils import _debian, _disk, _stemcell

# Each filter is documented in plugins/filter/<name>.yml (ansible-doc -t filter osimage.builder.<name>).


def suite_distribution(suite, supported="any"):
    if supported == "os_image" and suite not in _debian.OS_IMAGE_SUITES:
        return "unknown"
    return _debian.distribution_of(str(suite)) or "unknown"


def os_image_suites(_ignored=None):
    """The suites the os_image role builds, per distribution."""
    out = {"debian": [], "ubuntu": []}
    for suite in _debian.OS_IMAGE_SUITES:
        out[_debian.distribution_of(suite)].append(suite)
    return out


def stemcell_infrastructures(_ignored=None):
    """BOSH's infrastructures as the stemcell role checks them:
    {infrastructure: {hypervisor, hypervisors (with the accepted aliases),
    formats (the first is the default), stemcell_formats}}."""
    table = {}
    for name, info in _stemcell.INFRASTRUCTURES.items():
        aliases = [alias for (infra, alias), target in _stemcell.HYPERVISOR_ALIASES.items() if infra == name]
        table[name] = {"hypervisor": info["hypervisor"], "hypervisors": aliases + [info["hypervisor"]],
                       "formats": list(info["disk_formats"]), "stemcell_formats": dict(info["stemcell_formats"])}
    return table


def stemcell_hypervisor(infrastructure, hypervisor):
    """The BOSH hypervisor name of a checked combination (aws: xen -> xen-hvm)."""
    return _stemcell.HYPERVISOR_ALIASES.get((infrastructure, hypervisor), hypervisor)


def stemcell_filename(version, infrastructure, hypervisor, os_name, disk_format):
    """BOSH's stemcell file name (the format suffix only for a format that is
    not the infrastructure's default)."""
    if infrastructure not in _stemcell.INFRASTRUCTURES:
        raise AnsibleFilterError("stemcell_filename: unknown infrastructure %r" % infrastructure)
    return _stemcell.stemcell_filename(version, infrastructure, stemcell_hypervisor(infrastructure, hypervisor),
                                       os_name, disk_format)


def min_disk_mb(content_bytes, inodes=0, partition_table="msdos", bootloader="grub-i386-pc"):
    """The smallest disk (MiB) disk_image accepts for that much content."""
    return _disk.min_disk_mb(int(content_bytes), int(inodes), partition_table, bootloader)


class FilterModule:
    def filters(self):
        return {
            "suite_distribution": suite_distribution,
            "os_image_suites": os_image_suites,
            "stemcell_infrastructures": stemcell_infrastructures,
            "stemcell_hypervisor": stemcell_hypervisor,
            "stemcell_filename": stemcell_filename,
            "min_disk_mb": min_disk_mb,
        }

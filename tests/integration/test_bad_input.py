"""Bad input, systematically (issue 11): one table of wrong values for every
public variable of every role (meta/argument_specs.yml), each refused with a
message naming the variable, a non-zero exit, nothing in its output directory
and nothing mounted; every case fails in the plan, before the first stage,
unless the table says at which later stage and why.

The whole table is ONE ansible-playbook run: one inventory host per case (all
local), each with its own variables and its own work, cache and output
directories, so every host fails on its own. A sentinel hook on the first
stage (the stage after the detecting one for a later case) fails any host
that got past the check, so a missed check costs a failed case, never a
build. The inputs a case needs to reach its check (an OS image tarball, an
agent, a kernel source) are small files made here; nothing is built."""
import collections
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest
import yaml

from tests.conftest import BIN, REPO, ansible_env, loops_under, mounts_under, needs_root

pytestmark = [needs_root]

ROLES = ["os_image", "stemcell", "rkt_stage1", "kurma", "guest_image", "build_host"]
# The first stage of each pipeline, where the sentinel hook waits.
FIRST_STAGE = {"os_image": "base_debootstrap", "stemcell": "untar_base_os_image", "rkt_stage1": "config",
               "kurma": "stage4", "guest_image": "rootfs"}
SHA0 = "0" * 64
# A relative directory would land under the playbook's working directory (the checkout).
RELATIVE = "bad-input-relative"


class Case(collections.namedtuple("Case", "pipeline variable value fragment stage extra")):
    """pipeline (the role), the variable, its bad value, a fragment of the
    message expected, where it is detected ("plan", or "<stage>: why it can
    only be detected there"), and other variables the case needs to reach its
    check. "{case}" in a string value is the case's own directory."""

    def __new__(cls, pipeline, variable, value, fragment, stage="plan", extra=None):
        return super().__new__(cls, pipeline, variable, value, fragment, stage, extra or {})

    @property
    def later_stage(self):
        return None if self.stage == "plan" else self.stage.split(":", 1)[0]


BOOL = "unable to convert to bool"
INT = "unable to convert to int"
HOOK = "{case}/../hook-sentinel.yml"

CASES = [
    # ------------------------------------------------------------------ os_image
    Case("os_image", "os_image_suite", "buster-nonsense",
         "value of os_image_suite must be one of: bullseye, bookworm, trixie, jammy, noble, got: buster-nonsense"),
    Case("os_image", "os_image_architecture", "i386", "value of os_image_architecture must be one of: amd64, arm64"),
    Case("os_image", "os_image_mirror", "ftp://mirror.invalid/debian",
         "os_image_mirror must be an http://, https:// or file:// URL"),
    Case("os_image", "os_image_mirror", "http://127.0.0.1:9/debian",
         "os_image_mirror=http://127.0.0.1:9/debian is not usable for os_image_suite=trixie",
         "base_debootstrap: whether a mirror answers is asked by the bootstrap, the first stage, before it writes"
         " anything; a probe in the plan would make an up-to-date re-run fail whenever the mirror is away",
         {"os_image_suite": "trixie"}),
    Case("os_image", "os_image_security_mirror", "security archive", "os_image_security_mirror must be an http://"),
    Case("os_image", "os_image_keyring", "/nonexistent/archive-keyring.gpg",
         "os_image_keyring=/nonexistent/archive-keyring.gpg is not a file on the build host"),
    Case("os_image", "os_image_ubuntu_keyring_fingerprints", ["not-a-fingerprint"],
         "os_image_ubuntu_keyring_fingerprints must be hexadecimal fingerprints"),
    Case("os_image", "os_image_bootstrap_tool", "cdebootstrap",
         "value of os_image_bootstrap_tool must be one of: auto, mmdebstrap, debootstrap"),
    Case("os_image", "os_image_work_dir", RELATIVE + "/os-work", "os_image_work_dir must be an absolute path"),
    Case("os_image", "os_image_cache_dir", RELATIVE + "/os-cache", "os_image_cache_dir must be an absolute path"),
    Case("os_image", "os_image_output_dir", RELATIVE + "/os-output", "os_image_output_dir must be an absolute path"),
    Case("os_image", "os_image_extra_packages", ["Not_A_Package"], "are not Debian package names"),
    Case("os_image", "os_image_build_essential", "maybe", BOOL),
    Case("os_image", "os_image_users_password", "line\nbreak",
         "os_image_users_password must not be empty or hold a newline"),
    Case("os_image", "os_image_resume_from", "base_nothing",
         "value of os_image_resume_from must be one of: , base_debootstrap, base_ubuntu_firstboot,"),
    Case("os_image", "os_image_force", "maybe", BOOL),
    Case("os_image", "os_image_source_date_epoch", "yesterday", INT),
    Case("os_image", "os_image_pre_stage_hooks", {"no_such_stage": HOOK, "base_debootstrap": HOOK},
         "are not stages of the OS image"),
    Case("os_image", "os_image_post_stage_hooks", {"no_such_stage": HOOK}, "are not stages of the OS image"),
    # ------------------------------------------------------------------ stemcell
    Case("stemcell", "stemcell_version", "1.0/../x", "is not a BOSH stemcell version"),
    Case("stemcell", "stemcell_infrastructure", "vsphere",
         "value of stemcell_infrastructure must be one of: openstack, aws, warden, got: vsphere"),
    Case("stemcell", "stemcell_hypervisor", "xen", "BOSH has no openstack/xen stemcell in disk format raw"),
    Case("stemcell", "stemcell_disk_format", "qcow2", "BOSH has no aws/xen stemcell in disk format qcow2",
         extra={"stemcell_infrastructure": "aws", "stemcell_hypervisor": "xen"}),
    Case("stemcell", "stemcell_disk_size_mb", 1, "stemcell_disk_size_mb=1 is too small: the OS image alone unpacks to"),
    Case("stemcell", "stemcell_filesystem", "btrfs", "value of stemcell_filesystem must be one of: ext4, xfs"),
    Case("stemcell", "stemcell_os_image", "/nonexistent/debian-bookworm-os-image.tgz",
         "stemcell_os_image=/nonexistent/debian-bookworm-os-image.tgz: no OS image there"),
    Case("stemcell", "stemcell_os_image", "{case}/../not-gzip.tgz", "is not a gzip-compressed OS image tarball"),
    Case("stemcell", "stemcell_os_image_sha256", "xyz", "stemcell_os_image_sha256 must be a sha256 (64 hex digits)"),
    Case("stemcell", "stemcell_os_image_sha256", SHA0, "stemcell_os_image_sha256=%s does not match" % SHA0),
    Case("stemcell", "stemcell_os_image_trusted", "maybe", BOOL),
    Case("stemcell", "stemcell_os_name", "debian/../bookworm", "is not a BOSH operating system name"),
    Case("stemcell", "stemcell_kernel_packages", ["Linux Image"], "are not Debian package names"),
    Case("stemcell", "stemcell_kernel_cmdline", "quiet; reboot", "stemcell_kernel_cmdline may hold only letters"),
    Case("stemcell", "stemcell_grub_superuser", "vc ap", "stemcell_grub_superuser may hold only letters"),
    Case("stemcell", "stemcell_grub_password", "a\nb", "stemcell_grub_password must not contain a newline"),
    Case("stemcell", "stemcell_agent_src", "/nonexistent/bosh-agent",
         "stemcell_agent_src=/nonexistent/bosh-agent is not a file on the build host",
         extra={"stemcell_agent_sha256": SHA0}),
    Case("stemcell", "stemcell_agent_src", "ftp://agent.invalid/bosh-agent",
         "stemcell_agent_src must be a path or an http://, https:// or file:// URL",
         extra={"stemcell_agent_sha256": SHA0}),
    Case("stemcell", "stemcell_agent_sha256", SHA0,
         "stemcell_agent_sha256=%s does not match stemcell_agent_src=" % SHA0,
         extra={"stemcell_agent_src": "{case}/../agent"}),
    Case("stemcell", "stemcell_agent_sha256", "abc", "stemcell_agent_sha256 must be its sha256 (64 hex digits)",
         extra={"stemcell_agent_src": "{case}/../agent"}),
    Case("stemcell", "stemcell_boot_test", "maybe", BOOL),
    Case("stemcell", "stemcell_boot_timeout", 0, "stemcell_boot_timeout=0 is no time"),
    Case("stemcell", "stemcell_work_dir", "{case}/work,comma", "stemcell_work_dir must not contain a comma"),
    Case("stemcell", "stemcell_cache_dir", RELATIVE + "/stemcell-cache", "stemcell_cache_dir must be an absolute path"),
    Case("stemcell", "stemcell_output_dir", RELATIVE + "/stemcell-output",
         "stemcell_output_dir must be an absolute path"),
    Case("stemcell", "stemcell_resume_from", "image_nothing",
         "value of stemcell_resume_from must be one of: , untar_base_os_image, system_kernel,"),
    Case("stemcell", "stemcell_force", "maybe", BOOL),
    Case("stemcell", "stemcell_source_date_epoch", "yesterday", INT),
    Case("stemcell", "stemcell_pre_stage_hooks", {"no_such_stage": HOOK, "untar_base_os_image": HOOK},
         "are not stemcell stages"),
    Case("stemcell", "stemcell_post_stage_hooks", {"no_such_stage": HOOK}, "are not stemcell stages"),
    # ---------------------------------------------------------------- rkt_stage1
    Case("rkt_stage1", "rkt_stage1_kernel_version", "6.1/../x", "rkt_stage1_kernel_version=6.1/../x is not a kernel"),
    Case("rkt_stage1", "rkt_stage1_kernel_source", "/nonexistent/linux.tar.xz",
         "rkt_stage1_kernel_source=/nonexistent/linux.tar.xz is not a file on the build host"),
    Case("rkt_stage1", "rkt_stage1_kernel_source_sha256", "xyz", "rkt_stage1_kernel_source_sha256=xyz is not a sha256"),
    Case("rkt_stage1", "rkt_stage1_kernel_version_suffix", "-a/b", "may hold only letters, digits"),
    Case("rkt_stage1", "rkt_stage1_upstream_version", "1 30", "rkt_stage1_upstream_version=1 30 is not a version"),
    Case("rkt_stage1", "rkt_stage1_out_dir", RELATIVE + "/rkt-out", "is not an absolute path on the build host"),
    Case("rkt_stage1", "rkt_stage1_build_dir", RELATIVE + "/rkt-build", "is not an absolute path on the build host"),
    Case("rkt_stage1", "rkt_stage1_work_dir", RELATIVE + "/rkt-work", "is not an absolute path on the build host"),
    Case("rkt_stage1", "rkt_stage1_jobs", -1, "rkt_stage1_jobs=-1 is not a job count"),
    Case("rkt_stage1", "rkt_stage1_extra_patches", ["/nonexistent/extra.patch"],
         "not on the build host: rkt_stage1_extra_patches: /nonexistent/extra.patch"),
    Case("rkt_stage1", "rkt_stage1_config_dir", "/nonexistent/config",
         "is in rkt_stage1_config_dir=/nonexistent/config"),
    Case("rkt_stage1", "rkt_stage1_config_fragments", ["/nonexistent/frag.config"],
         "not on the build host: rkt_stage1_config_fragments: /nonexistent/frag.config"),
    Case("rkt_stage1", "rkt_stage1_image_name", "Stage1 KVM",
         "rkt_stage1_image_name=Stage1 KVM is not an AC Identifier"),
    Case("rkt_stage1", "rkt_stage1_compression", "bzip2", "value of rkt_stage1_compression must be one of: gzip, xz"),
    Case("rkt_stage1", "rkt_stage1_busybox", "/nonexistent/busybox",
         "not on the build host: rkt_stage1_busybox=/nonexistent/busybox"),
    Case("rkt_stage1", "rkt_stage1_source_date_epoch", "yesterday", INT),
    Case("rkt_stage1", "rkt_stage1_resume_from", "nothing", "value of rkt_stage1_resume_from must be one of"),
    Case("rkt_stage1", "rkt_stage1_force", "maybe", BOOL),
    Case("rkt_stage1", "rkt_stage1_pre_stage_hooks", {"nothing": HOOK, "config": HOOK}, "name no stage"),
    Case("rkt_stage1", "rkt_stage1_post_stage_hooks", {"nothing": HOOK}, "name no stage"),
    # --------------------------------------------------------------------- kurma
    Case("kurma", "kurma_version", "0.1 beta", "kurma_version=0.1 beta is not a version"),
    Case("kurma", "kurma_out_dir", RELATIVE + "/kurma-out", "is not an absolute path on the build host"),
    Case("kurma", "kurma_work_dir", RELATIVE + "/kurma-work", "is not an absolute path on the build host"),
    Case("kurma", "kurma_cache_dir", RELATIVE + "/kurma-cache", "is not an absolute path on the build host"),
    Case("kurma", "kurma_stage4_suite", "sid-nonsense", "kurma_stage4_suite=sid-nonsense is not a Debian suite"),
    # An unreachable URL, found in the plan: kurma fetches its external inputs there, verified.
    Case("kurma", "kurma_stage4_tarball", "http://127.0.0.1:9/stage3.tar.xz", "kurma_stage4_tarball: ",
         extra={"kurma_stage4_tarball_sha256": SHA0}),
    Case("kurma", "kurma_stage4_tarball_sha256", "xyz", "kurma_stage4_tarball_sha256 must be the 64 hex digits",
         extra={"kurma_stage4_tarball": "{case}/../agent"}),
    Case("kurma", "kurma_stage4_packages", ["Busy Box"], "kurma_stage4_packages: Busy Box is not a Debian package"),
    Case("kurma", "kurma_kernel_source", "/nonexistent/linux.tar.xz",
         "kurma_kernel_source=/nonexistent/linux.tar.xz is not a file on the build host"),
    Case("kurma", "kurma_kernel_source_sha256", "xyz", "kurma_kernel_source_sha256=xyz is not a sha256"),
    Case("kurma", "kurma_kernel_config", "/nonexistent/kernel.config",
         "not on the build host: /nonexistent/kernel.config"),
    Case("kurma", "kurma_kernel_config_fragments", ["/nonexistent/frag.config"],
         "not on the build host: /nonexistent/frag.config"),
    Case("kurma", "kurma_kernel_localversion", "-a/b", "kurma_kernel_localversion=-a/b may hold only letters"),
    Case("kurma", "kurma_kernel_build_dir", RELATIVE + "/kurma-kbuild", "is not an absolute path on the build host"),
    Case("kurma", "kurma_kernel_dest_dir", RELATIVE + "/kurma-kdest", "is not an absolute path on the build host"),
    Case("kurma", "kurma_kernel_jobs", -2, "kurma_kernel_jobs=-2 is not a job count"),
    Case("kurma", "kurma_aci_prefix", "Apcera Com", "kurma_aci_prefix=Apcera Com is not an AC Identifier"),
    Case("kurma", "kurma_aci_version", "1.0 beta", "kurma_aci_version=1.0 beta is not a version label"),
    Case("kurma", "kurma_aci_compression", "bzip2", "value of kurma_aci_compression must be one of"),
    Case("kurma", "kurma_api_binary", "/nonexistent/kurma-api", "kurma_api_binary: ",
         extra={"kurma_api_binary_sha256": SHA0}),
    Case("kurma", "kurma_api_binary_sha256", "xyz", "kurma_api_binary_sha256 must be the 64 hex digits",
         extra={"kurma_api_binary": "{case}/../agent"}),
    Case("kurma", "kurma_init_binary", "{case}/../agent", "kurma_init_binary: ",
         extra={"kurma_init_binary_sha256": SHA0}),
    Case("kurma", "kurma_init_binary_sha256", "xyz", "kurma_init_binary_sha256 must be the 64 hex digits",
         extra={"kurma_init_binary": "{case}/../agent"}),
    Case("kurma", "kurma_extra_acis", [{"src": "/nonexistent/hello.txt", "sha256": SHA0}],
         "kurma_extra_acis[0] must be {src: <path or URL of a .aci>"),
    Case("kurma", "kurma_initrd_compression", "bzip2", "value of kurma_initrd_compression must be one of"),
    Case("kurma", "kurma_source_date_epoch", "yesterday", INT),
    Case("kurma", "kurma_release", "maybe", BOOL),
    Case("kurma", "kurma_release_dest_dir", RELATIVE + "/kurma-rdest", "is not an absolute path on the build host"),
    Case("kurma", "kurma_vm_image", "maybe", BOOL),
    Case("kurma", "kurma_vm_root_blocks", 100, "kurma_vm_root_blocks=100 is too small"),
    Case("kurma", "kurma_oem_json", [1, 2], "unable to convert to dict"),
    Case("kurma", "kurma_oem_grub_cfg", "if true; then\n  set timeout=1\n",
         "kurma_oem_grub_cfg is not a grub script grub can read"),
    Case("kurma", "kurma_debug", "maybe", BOOL),
    Case("kurma", "kurma_hostname", "kurma_os!", "kurma_hostname=kurma_os! is not a host name"),
    Case("kurma", "kurma_oem_config", {"device": "LABEL=OEM"}, "kurma_oem_config must be {device:"),
    Case("kurma", "kurma_network_config", {"interfaces": [{"dhcp": True}]},
         "kurma_network_config.interfaces[0] has no device"),
    Case("kurma", "kurma_modules", "loop", "kurma_modules must be a list of module names"),
    Case("kurma", "kurma_disks", [{"device": "LABEL=A", "usage": ["pods"]}, {"device": "LABEL=B", "usage": ["pods"]}],
         "kurma_disks: usage pods is on disk LABEL=A and on disk LABEL=B"),
    Case("kurma", "kurma_parent_cgroup_name", "a/b", "kurma_parent_cgroup_name=a/b is not a cgroup name"),
    Case("kurma", "kurma_required_namespaces", ["bogus"], "kurma_required_namespaces: bogus is not a Linux namespace"),
    Case("kurma", "kurma_services", {"ntp": {"enabled": True}, "docker": {"enabled": True}},
         "kurma_services.docker is not a kurma-init service"),
    Case("kurma", "kurma_init_containers", ["file:///missing.aci"], "kurma_init_containers[0]=file:///missing.aci"),
    Case("kurma", "kurma_resume_from", "nothing", "value of kurma_resume_from must be one of"),
    Case("kurma", "kurma_force", "maybe", BOOL),
    Case("kurma", "kurma_pre_stage_hooks", {"nothing": HOOK, "stage4": HOOK}, "name no stage"),
    Case("kurma", "kurma_post_stage_hooks", {"nothing": HOOK}, "name no stage"),
    # --------------------------------------------------------------- guest_image
    Case("guest_image", "guest_image_distro", "fedora", "value of guest_image_distro must be one of: debian, ubuntu"),
    Case("guest_image", "guest_image_os_version", "buster-nonsense",
         "guest_image_os_version=buster-nonsense is not a debian suite"),
    Case("guest_image", "guest_image_mirror", "ftp://mirror.invalid/debian",
         "guest_image_mirror=ftp://mirror.invalid/debian must be an http://, https:// or file:// URL"),
    Case("guest_image", "guest_image_keyring", "/nonexistent/keyring.gpg",
         "guest_image_keyring=/nonexistent/keyring.gpg is not a file on the build host"),
    Case("guest_image", "guest_image_extra_packages", ["Not A Package"],
         "guest_image_extra_packages: Not A Package is not a Debian package name"),
    Case("guest_image", "guest_image_agent_src", "/nonexistent/kata-agent",
         "guest_image_agent_src=/nonexistent/kata-agent is not a file on the build host"),
    Case("guest_image", "guest_image_agent_sha256", SHA0, "guest_image_agent_sha256=%s does not match" % SHA0),
    Case("guest_image", "guest_image_agent_init", "maybe", BOOL),
    Case("guest_image", "guest_image_agent_name", "kata/agent", "guest_image_agent_name=kata/agent may hold only"),
    Case("guest_image", "guest_image_agent_url", "not a url", "guest_image_agent_url=not a url is not an http://"),
    Case("guest_image", "guest_image_agent_version", "3.2 beta", "guest_image_agent_version=3.2 beta is not a version"),
    Case("guest_image", "guest_image_osbuilder_version", "3.2 beta",
         "guest_image_osbuilder_version=3.2 beta is not a version"),
    Case("guest_image", "guest_image_targets", ["image", "iso"], "the targets are image, initrd and kernel"),
    Case("guest_image", "guest_image_fs_type", "btrfs",
         "value of guest_image_fs_type must be one of: ext4, xfs, erofs"),
    Case("guest_image", "guest_image_size_mb", "big", "guest_image_size_mb=big is not a number of MiB"),
    Case("guest_image", "guest_image_size_mb", 0, "guest_image_size_mb=0 is no size"),
    Case("guest_image", "guest_image_free_space_mb", -1, "guest_image_free_space_mb=-1 is not a number of MiB"),
    Case("guest_image", "guest_image_partition_table", "gpt",
         "guest_image_partition_table=gpt (the Clear Containers layout) has no DAX"),
    Case("guest_image", "guest_image_dax_header", "maybe", BOOL),
    Case("guest_image", "guest_image_verity", "maybe", BOOL),
    Case("guest_image", "guest_image_image_name", "container img",
         "guest_image_image_name=container img is not a file"),
    Case("guest_image", "guest_image_initrd_name", "../initrd.img",
         "guest_image_initrd_name=../initrd.img is not a file"),
    Case("guest_image", "guest_image_initrd_compression", "bzip2", "value of guest_image_initrd_compression must be"),
    Case("guest_image", "guest_image_kernel_source", "/nonexistent/linux.tar.xz",
         "guest_image_kernel_source=/nonexistent/linux.tar.xz is not a file on the build host"),
    Case("guest_image", "guest_image_kernel_source_sha256", "xyz",
         "guest_image_kernel_source_sha256=xyz is not a sha256"),
    Case("guest_image", "guest_image_kernel_config", "/nonexistent/guest.config",
         "guest_image_kernel_config=/nonexistent/guest.config is not a file on the build host"),
    Case("guest_image", "guest_image_kernel_role_fragments", "maybe", BOOL),
    Case("guest_image", "guest_image_kernel_config_fragments", ["/nonexistent/frag.config"],
         "guest_image_kernel_config_fragments: not on the build host: /nonexistent/frag.config"),
    Case("guest_image", "guest_image_kernel_localversion", "-a/b",
         "guest_image_kernel_localversion=-a/b may hold only"),
    Case("guest_image", "guest_image_kernel_build_dir", RELATIVE + "/guest-kbuild",
         "is not an absolute path on the build host"),
    Case("guest_image", "guest_image_kernel_jobs", -1, "guest_image_kernel_jobs=-1 is not a job count"),
    Case("guest_image", "guest_image_install", "maybe", BOOL),
    Case("guest_image", "guest_image_install_prefix", RELATIVE + "/kata",
         "guest_image_install_prefix=%s/kata must be an absolute path" % RELATIVE),
    Case("guest_image", "guest_image_runtime_config", "/nonexistent/configuration.toml",
         "guest_image_runtime_config=/nonexistent/configuration.toml does not exist on the build host",
         extra={"guest_image_install": True, "guest_image_install_prefix": "{case}/kata"}),
    Case("guest_image", "guest_image_runtime_boot", "both", "value of guest_image_runtime_boot must be one of"),
    Case("guest_image", "guest_image_runtime_hypervisor", "qemu]",
         "guest_image_runtime_hypervisor=qemu] is not a [hypervisor.<name>] section name"),
    Case("guest_image", "guest_image_out_dir", RELATIVE + "/guest-out", "is not an absolute path on the build host"),
    Case("guest_image", "guest_image_work_dir", RELATIVE + "/guest-work", "is not an absolute path on the build host"),
    Case("guest_image", "guest_image_cache_dir", RELATIVE + "/guest-cache",
         "is not an absolute path on the build host"),
    Case("guest_image", "guest_image_source_date_epoch", "yesterday", INT),
    Case("guest_image", "guest_image_resume_from", "nothing", "value of guest_image_resume_from must be one of"),
    Case("guest_image", "guest_image_force", "maybe", BOOL),
    Case("guest_image", "guest_image_pre_stage_hooks", {"nothing": HOOK, "rootfs": HOOK}, "name no stage"),
    Case("guest_image", "guest_image_post_stage_hooks", {"nothing": HOOK}, "name no stage"),
    # ---------------------------------------------------------------- build_host
    # The build host role has no output: its cases check the exit and the message.
    Case("build_host", "build_host_install_packages", "maybe", BOOL),
    Case("build_host", "build_host_extra_packages", {"not": "a list"}, "unable to convert to list"),
    Case("build_host", "build_host_apt_cache_valid_time", "daily", INT),
    Case("build_host", "build_host_test_packages", "maybe", BOOL),
    # ------------------------------------------------- injection into generated files
    # Values that would reach the image's deb822 sources, apt's command line,
    # grub.cfg, the kernel command line, qemu's -drive or a path.
    Case("os_image", "os_image_security_mirror", "http://127.0.0.1/debian-security\nTrusted: yes",
         "os_image_security_mirror must not contain a newline"),
    Case("os_image", "os_image_mirror", 'http://127.0.0.1/"debian', "os_image_mirror must be an http://"),
    Case("os_image", "os_image_extra_packages", ["vim", "-oAPT::Get::AllowUnauthenticated=true"],
         'os_image_extra_packages: ["-oAPT::Get::AllowUnauthenticated=true"] are not Debian package names'),
    Case("os_image", "os_image_keyring", "/usr/share/keyrings/x.gpg\n", "os_image_keyring must not contain a newline"),
    Case("stemcell", "stemcell_kernel_cmdline", "console=ttyS0\ninit=/bin/sh",
         "stemcell_kernel_cmdline must not contain a newline"),
    Case("stemcell", "stemcell_kernel_cmdline", 'console=ttyS0 x="y"', "stemcell_kernel_cmdline may hold only letters"),
    Case("stemcell", "stemcell_grub_superuser", 'vcap"; set superusers="', "stemcell_grub_superuser may hold only"),
    Case("stemcell", "stemcell_version", "1.0 beta", 'stemcell_version="1.0 beta" is not a BOSH stemcell version'),
    Case("stemcell", "stemcell_version", "../../etc", 'stemcell_version="../../etc" is not a BOSH stemcell version'),
    Case("stemcell", "stemcell_version", "1..0", 'stemcell_version="1..0" is not a BOSH stemcell version'),
    Case("stemcell", "stemcell_version", "1.0\n", 'stemcell_version="1.0\\n" is not a BOSH stemcell version'),
    Case("stemcell", "stemcell_os_name", "debian/bookworm", 'stemcell_os_name="debian/bookworm" is not a BOSH'),
    Case("stemcell", "stemcell_kernel_packages", ["linux-image-cloud-amd64", "--force-yes"],
         'stemcell_kernel_packages: ["--force-yes"] are not Debian package names'),
]

# Public variables without a case, each with the reason no wrong value exists.
EXEMPT = {}


def case_id(case):
    return "%s-%s" % (case.pipeline, case.variable) + ("" if CASES.index(case) == first_index(case) else
                                                       "-%d" % CASES.index(case))


def first_index(case):
    return next(i for i, c in enumerate(CASES) if (c.pipeline, c.variable) == (case.pipeline, case.variable))


def host_name(case):
    return "case%03d-%s" % (CASES.index(case), case.variable)


def public_variables(role):
    with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml")) as f:
        return sorted(yaml.safe_load(f)["argument_specs"]["main"]["options"])


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _fill(value, case_dir):
    if isinstance(value, str):
        return value.replace("{case}", case_dir)
    if isinstance(value, list):
        return [_fill(v, case_dir) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, case_dir) for k, v in value.items()}
    return value


def _inputs(base):
    """The small files cases need to reach their checks, and the sentinel hook."""
    root = base / "tree"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    os_image = str(base / "os-image.tgz")
    with tarfile.open(os_image, "w:gz") as tar:
        tar.add(str(root), arcname=".")
    (base / "not-gzip.tgz").write_text("not a gzip file\n")
    (base / "agent").write_text("#!/bin/sh\necho agent\n")
    kernel = base / "linux-fake.tar.xz"  # the plans look at it (exists, sha256); nothing unpacks it
    kernel.write_bytes(b"not really a kernel tarball\n")
    (base / "busybox").write_text("#!/bin/sh\n")
    (base / "hook-sentinel.yml").write_text(
        "- name: Fail, the bad input was not refused before this stage\n"
        "  ansible.builtin.fail:\n"
        "    msg: 'BAD INPUT NOT REFUSED: {{ inventory_hostname }} reached the stage {{ __pipeline_stage }}'\n")
    return {"os_image": os_image, "agent": str(base / "agent"), "agent_sha256": sha256(str(base / "agent")),
            "kernel": str(kernel), "busybox": str(base / "busybox"), "hook": str(base / "hook-sentinel.yml")}


def _baseline(pipeline, inputs):
    """Good values for what each pipeline needs to get to its checks."""
    if pipeline == "stemcell":
        return {"stemcell_os_image": inputs["os_image"]}
    if pipeline == "rkt_stage1":
        return {"rkt_stage1_kernel_source": inputs["kernel"], "rkt_stage1_busybox": inputs["busybox"]}
    if pipeline == "kurma":
        return {"kurma_kernel_source": inputs["kernel"]}
    if pipeline == "guest_image":
        return {"guest_image_agent_src": inputs["agent"], "guest_image_agent_sha256": inputs["agent_sha256"],
                "guest_image_kernel_source": inputs["kernel"]}
    if pipeline == "build_host":
        return {"build_host_install_packages": False}
    return {}


def _host_vars(case, case_dir, inputs):
    v = {"bad_input_role": case.pipeline, "osimage_work_dir": case_dir + "/work",
         "osimage_output_dir": case_dir + "/output", "osimage_cache_dir": case_dir + "/cache"}
    v.update(_baseline(case.pipeline, inputs))
    if case.pipeline in FIRST_STAGE:
        # The sentinel: the first stage (for a later case, the stage after the detecting one) fails at once.
        if case.later_stage:
            v["%s_post_stage_hooks" % case.pipeline] = {case.later_stage: inputs["hook"]}
        else:
            v["%s_pre_stage_hooks" % case.pipeline] = {FIRST_STAGE[case.pipeline]: inputs["hook"]}
    v.update(_fill(case.extra, case_dir))
    v[case.variable] = _fill(case.value, case_dir)
    return v


def _run(base):
    inputs = _inputs(base)
    hosts = {}
    for case in CASES:
        case_dir = str(base / host_name(case))
        os.makedirs(case_dir)
        hosts[host_name(case)] = _host_vars(case, case_dir, inputs)
    inventory = {"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                         "hosts": hosts}}
    (base / "inventory.yml").write_text(json.dumps(inventory, indent=1))
    (base / "bad_input.yml").write_text(
        "- name: Run each case's role on its own host\n"
        "  hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Run the role of the case\n"
        "      ansible.builtin.include_role:\n"
        "        name: osimage.builder.{{ bad_input_role }}\n")
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", str(base / "inventory.yml"), str(base / "bad_input.yml")]
    started = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(ANSIBLE_FORKS="8"), cwd=REPO,
                          timeout=1800, check=False)
    seconds = time.time() - started
    try:
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError as exc:
        raise AssertionError("no JSON from ansible-playbook: rc=%s\n%s\n%s"
                             % (proc.returncode, proc.stdout[-5000:], proc.stderr[-5000:])) from exc
    per_host = collections.defaultdict(list)  # host -> [(task name, result)]
    for play in data["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"].split(" : ", 1)[-1]
            for host, res in task["hosts"].items():
                per_host[host].append((name, res))
    return {"rc": proc.returncode, "stats": data["stats"], "tasks": per_host, "seconds": seconds,
            "stderr": proc.stderr}


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory, request):
    base = tmp_path_factory.mktemp("bad-input")
    run = _run(base)
    run["base"] = base
    run["report"] = _Report(run)
    request.config.pluginmanager.register(run["report"], "osimage-bad-input-report")
    return run


class _Report:
    """Prints the per-pipeline count at the end of the run, whatever -s/-r say."""

    def __init__(self, run):
        self.run = run
        self.lines = []

    def pytest_terminal_summary(self, terminalreporter):
        if self.lines:
            terminalreporter.section("bad-input table")
            for line in self.lines:
                terminalreporter.write_line(line)


def test_every_public_variable_has_a_case():
    covered = {(c.pipeline, c.variable) for c in CASES}
    missing, stale = [], []
    for role in ROLES:
        for var in public_variables(role):
            if (role, var) not in covered and (role, var) not in EXEMPT:
                missing.append("%s: %s" % (role, var))
    for role, var in sorted(covered | set(EXEMPT)):
        if var not in public_variables(role):
            stale.append("%s: %s" % (role, var))
    assert missing == [], "public variables without a bad-input case (add one, or exempt it with a reason): %s" % (
        ", ".join(missing))
    assert stale == [], "cases or exemptions for variables that are not public (any more): %s" % ", ".join(stale)
    assert all(reason for reason in EXEMPT.values())
    later = [c for c in CASES if c.later_stage]
    assert all(": " in c.stage and len(c.stage.split(": ", 1)[1]) > 20 for c in later), "a later case says why"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bad_input(bad_input, case):
    host = host_name(case)
    case_dir = str(bad_input["base"] / host)
    tasks = bad_input["tasks"].get(host, [])
    assert bad_input["rc"] != 0
    stats = bad_input["stats"].get(host)
    assert stats and stats["failures"] == 1, (stats, bad_input["stderr"][-3000:])
    failed = [(name, res.get("msg", "")) for name, res in tasks if res.get("failed") and not res.get("ignore_errors")
              and res.get("_ansible_ignore_errors") is not True]
    msgs = " | ".join(str(m) for _n, m in failed)
    assert "BAD INPUT NOT REFUSED" not in msgs, msgs
    assert case.variable in msgs, msgs
    assert case.fragment in msgs, msgs
    ran = [name for name, _res in tasks]
    logs = [d for d, _sub, _files in os.walk(case_dir) if os.path.basename(d) == "logs"]
    if case.later_stage:
        assert "stage %s failed" % case.later_stage in msgs, msgs
        assert "%s_resume_from=%s" % (case.pipeline, case.later_stage) in msgs, msgs
    else:
        # Refused in the plan: the runner never started a stage (no stage task ran, no stage log directory).
        assert "Run the stages" not in ran and not any(n.startswith("Stage ") for n in ran), ran
        assert logs == [], logs
    out = os.path.join(case_dir, "output")
    assert not os.path.exists(out) or os.listdir(out) == []
    if isinstance(case.value, str) and case.value.startswith(RELATIVE):
        assert not os.path.exists(os.path.join(REPO, RELATIVE)), "a relative directory was made under the checkout"
    assert mounts_under(case_dir) == [] and loops_under(case_dir) == []
    bad_input.setdefault("passed", []).append(case)


def test_bad_input_counts(bad_input, record_property):
    """Last: the count per pipeline, printed at the end of the run (and a
    JUnit property), at least 40 across the pipelines."""
    counts = collections.Counter(c.pipeline for c in CASES)
    later = [c for c in CASES if c.later_stage]
    passed = collections.Counter(c.pipeline for c in bad_input.get("passed", []))
    report = bad_input["report"]
    report.lines.append("%-12s %5s %7s %7s" % ("pipeline", "cases", "refused", "later"))
    for pipeline in ROLES:
        report.lines.append("%-12s %5d %7d %7d" % (pipeline, counts[pipeline], passed[pipeline],
                                                   sum(1 for c in later if c.pipeline == pipeline)))
    report.lines.append("%-12s %5d %7d %7d   (one ansible-playbook run, %.0f s)"
                        % ("total", len(CASES), sum(passed.values()), len(later), bad_input["seconds"]))
    for c in later:
        report.lines.append("later: %s %s=%r at %s" % (c.pipeline, c.variable, c.value, c.stage))
    for pipeline in ROLES:
        record_property("bad_input_cases_" + pipeline, counts[pipeline])
    record_property("bad_input_seconds", round(bad_input["seconds"], 1))
    assert len(CASES) >= 40
    assert all(counts[p] > 0 for p in ROLES)

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a build host must have: the one table of programs the pipelines run
(each with the Debian package that provides it) and the one list of Debian
packages to install. The module runner names the package when a program is
missing; roles/build_host installs and checks the same list (through the
osimage.builder.build_host lookup); ./osimage setup applies that role."""

from __future__ import annotations

# program -> Debian (bookworm) package. Every program a module or a role runs
# on the build host is here, so a missing one is an error naming its package.
PROGRAMS = {
    # bootstrap and package work
    "mmdebstrap": "mmdebstrap",
    "debootstrap": "debootstrap",
    "apt-get": "apt",
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "dpkg-query": "dpkg",
    "gpg": "gpg",
    "gpgv": "gpgv",
    # chroots, mounts, loop devices
    "chroot": "coreutils",
    "mount": "mount",
    "umount": "mount",
    "losetup": "mount",
    "findmnt": "util-linux",
    "partx": "util-linux",
    "blkid": "util-linux",
    "sfdisk": "fdisk",
    "udevadm": "udev",
    # archives and compression
    "tar": "tar",
    "gzip": "gzip",
    "pigz": "pigz",
    "xz": "xz-utils",
    "zstd": "zstd",
    "cpio": "cpio",
    # KurmaOS: the ACIs' and initrd's ld.so.cache (elf_closure)
    "ldconfig": "libc-bin",
    "rsync": "rsync",
    "mksquashfs": "squashfs-tools",
    # disks, filesystems, bootloaders
    "truncate": "coreutils",
    "parted": "parted",
    "sgdisk": "gdisk",
    "mkfs.ext4": "e2fsprogs",
    "tune2fs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "resize2fs": "e2fsprogs",
    "mkfs.xfs": "xfsprogs",
    # guest image (roles/guest_image, guest_disk): erofs images and dm-verity hash trees
    "mkfs.erofs": "erofs-utils",
    "veritysetup": "cryptsetup-bin",
    "mkfs.vfat": "dosfstools",
    "mformat": "mtools",
    "mmd": "mtools",
    "mcopy": "mtools",
    "grub-install": "grub2-common",
    "grub-mkimage": "grub-common",
    "grub-mkpasswd-pbkdf2": "grub-common",
    # KurmaOS: the OEM grub.cfg checked in the plan
    "grub-script-check": "grub-common",
    "qemu-img": "qemu-utils",
    "qemu-system-x86_64": "qemu-system-x86",
    "sha1sum": "coreutils",
    # kernel builds and small test systems
    "make": "make",
    "gcc": "gcc",
    "bc": "bc",
    "flex": "flex",
    "bison": "bison",
    "patch": "patch",
    "ccache": "ccache",
    "busybox": "busybox-static",
}

# Packages a pipeline needs that provide no program of their own above:
# libraries and headers for kernel builds, the kernel source rkt_stage1 builds
# by default, keyrings, the GRUB platform modules grub-install loads, and what
# Ansible's apt module and the SBOM need from the host's Python.
SUPPORT_PACKAGES = [
    "python3", "python3-apt", "python3-venv", "ca-certificates",
    "debian-archive-keyring",
    "grub-pc-bin", "grub-efi-amd64-bin",
    "build-essential", "libelf-dev", "libssl-dev", "linux-source-6.1",
    "acl", "attr", "procps",
]

# What the test suite needs on top: molecule's SSH build host, the fresh-root
# test's `git archive` of the checkout, and gpg-agent for the throw-away
# archive keys the trust-chain tests generate (gpg alone cannot make keys).
TEST_PACKAGES = ["openssh-server", "openssh-client", "git", "gpg-agent"]


def packages(tests=False):
    """The sorted Debian package list of a build host (and of a test host)."""
    names = set(PROGRAMS.values()) | set(SUPPORT_PACKAGES)
    if tests:
        names |= set(TEST_PACKAGES)
    return sorted(names)


def package_of(program):
    """The Debian package providing `program`, or None when the table does not know it."""
    return PROGRAMS.get(program.rsplit("/", 1)[-1])


def missing_message(program):
    """The one wording of a missing program, used by modules and the build_host role."""
    pkg = package_of(program)
    if pkg:
        return "%s not found on the build host (Debian package: %s)" % (program, pkg)
    return "%s not found on the build host" % program

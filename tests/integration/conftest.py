import os
import shutil
import subprocess
import time

import pytest

from ansible_collections.osimage.builder.plugins.module_utils._digest import sha256_file
from tests.conftest import REPO, failed_msgs, run_module, run_playbook

# One package cache for the whole run (and across runs): the tests bootstrap
# for real, the cache only saves downloads.
CACHE = os.environ.get("OSIMAGE_TEST_CACHE", "/var/cache/osimage/tests")


@pytest.fixture(scope="session")
def package_cache():
    os.makedirs(CACHE, exist_ok=True)
    return os.path.join(CACHE, "debs")


@pytest.fixture(scope="session")
def base_tarball(package_cache):
    """A real minbase bookworm root filesystem, bootstrapped by
    rootfs_bootstrap into the test cache and kept for the ISO week (its stamp
    makes later sessions' calls no-ops; a new week bootstraps afresh, so the
    tests follow the archive). Tests unpack it, never change it."""
    week = time.strftime("%G-W%V")
    cache = os.path.join(CACHE, "bootstrap")
    os.makedirs(cache, exist_ok=True)
    for name in os.listdir(cache):
        if name.startswith("bookworm-minbase-") and week not in name:
            rm(os.path.join(cache, name))
    dest = os.path.join(cache, "bookworm-minbase-%s.tar" % week)
    res = run_module("rootfs_bootstrap", {"dest": dest, "suite": "bookworm", "package_cache_dir": package_cache})
    assert res.get("failed") is not True and os.path.isfile(dest), res
    return dest


@pytest.fixture(scope="session")
def os_image_build(tmp_path_factory):
    """The default OS image (Debian bookworm) built once per session on the
    pipeline runner with playbooks/build-os-image.yml (only the bootstrap
    and package caches are reused). The os_image tests check it; the stemcell
    tests build on it in the same directories, where build-stemcell.yml's
    os_image part is then a no-op. Returns (dirs, stats, results)."""
    base = tmp_path_factory.mktemp("build")
    dirs = {"osimage_work_dir": str(base / "work"), "osimage_output_dir": str(base / "output")}
    rc, stats, results = run_playbook(os.path.join(REPO, "playbooks", "build-os-image.yml"), dirs)
    assert rc == 0, failed_msgs(results)
    return dirs, stats, results


@pytest.fixture
def image_root(tmp_path, base_tarball):
    """A fresh image root unpacked from the session's bootstrap."""
    root = str(tmp_path / "root")
    res = run_module("rootfs_archive", {"src": base_tarball, "dest": root, "state": "unpacked"})
    assert res.get("changed") is True, res
    return root


LINUX_SOURCE = "/usr/src/linux-source-6.1.tar.xz"
GUEST_KERNEL_FRAGMENT = os.path.join(REPO, "tests", "integration", "files", "kernel-guest.config")


@pytest.fixture(scope="session")
def linux_source_sha256():
    if not os.path.exists(LINUX_SOURCE):
        pytest.skip("%s missing: apt-get install linux-source-6.1 (./osimage setup does)" % LINUX_SOURCE)
    return sha256_file(LINUX_SOURCE)


def guest_kernel_args(sha256, **extra):
    """kernel_build's arguments for the shared guest kernel (tinyconfig +
    kernel-guest.config); a test that needs a variant (an embedded
    initramfs) passes it as extra and gets its own dest_dir."""
    args = {"source": LINUX_SOURCE, "source_sha256": sha256, "build_dir": os.path.join(CACHE, "kernel-guest"),
            "dest_dir": os.path.join(CACHE, "kernel-guest", "out"), "config": "tinyconfig",
            "config_fragments": [GUEST_KERNEL_FRAGMENT], "localversion": "-osimage-guest"}
    args.update(extra)
    return args


@pytest.fixture(scope="session")
def guest_kernel(linux_source_sha256):
    """The one small kernel every test that boots a guest shares, built once
    into the test cache and kept across runs (kernel_build's stamp makes a
    later session's call a no-op). Returns kernel_build's result (bzimage,
    vmlinux, config_file, release)."""
    res = run_module("kernel_build", guest_kernel_args(linux_source_sha256, vmlinux=True), timeout=3600)
    assert res.get("failed") is not True, res.get("msg")
    return res


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory even root cannot write: a read-only bind mount."""
    d = tmp_path / "readonly"
    d.mkdir()
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(d)], check=True)
    try:
        yield str(d)
    finally:
        subprocess.run(["umount", str(d)], check=True)


def listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def rm(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)

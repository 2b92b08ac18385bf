import os
import shutil
import subprocess

import pytest

from tests.conftest import run_module

# One package cache for the whole run (and across runs): the tests bootstrap
# for real, the cache only saves downloads.
CACHE = os.environ.get("OSIMAGE_TEST_CACHE", "/var/cache/osimage/tests")


@pytest.fixture(scope="session")
def package_cache():
    os.makedirs(CACHE, exist_ok=True)
    return os.path.join(CACHE, "debs")


@pytest.fixture(scope="session")
def base_tarball(tmp_path_factory, package_cache):
    """A real minbase bookworm root filesystem, bootstrapped once per session."""
    dest = str(tmp_path_factory.mktemp("rootfs") / "bookworm-minbase.tar")
    res = run_module("rootfs_bootstrap", {"dest": dest, "suite": "bookworm", "package_cache_dir": package_cache})
    assert res.get("changed") is True, res
    return dest


@pytest.fixture
def image_root(tmp_path, base_tarball):
    """A fresh image root unpacked from the session's bootstrap."""
    root = str(tmp_path / "root")
    res = run_module("rootfs_archive", {"src": base_tarball, "dest": root, "state": "unpacked"})
    assert res.get("changed") is True, res
    return root


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

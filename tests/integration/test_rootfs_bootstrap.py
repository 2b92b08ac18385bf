"""rootfs_bootstrap against the real archive: changed, then not changed,
check mode writes nothing, bad input fails clearly and writes nothing."""
import os

import pytest

from tests.conftest import needs_root, run_module
from tests.integration.conftest import listing

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]


def test_second_run_is_unchanged_and_returns_the_package_list(base_tarball, package_cache):
    res = run_module("rootfs_bootstrap", {"dest": base_tarball, "suite": "bookworm",
                                          "package_cache_dir": package_cache})
    assert res["changed"] is False and res["rebuild_reason"] is None
    names = {p["name"] for p in res["packages"]}
    assert {"apt", "dpkg", "base-files", "libc6"} <= names
    assert all(p["version"] and p["architecture"] for p in res["packages"])
    assert res["artifact"]["sha256"] and res["artifact"]["size"] == os.path.getsize(base_tarball)
    assert os.listdir(package_cache), "downloaded packages were not kept in package_cache_dir"


def test_check_mode_reports_the_changed_input_and_writes_nothing(base_tarball, package_cache):
    before = os.stat(base_tarball)
    stamp_before = open(base_tarball + ".stamp.json").read()
    res = run_module("rootfs_bootstrap", {"dest": base_tarball, "suite": "bookworm", "include": ["less"],
                                          "package_cache_dir": package_cache}, check=True)
    assert res["changed"] is True
    assert res["rebuild_reason"] == "inputs changed: include"
    assert "mmdebstrap" in res["commands"][0] and "--include=less" in res["commands"][0]
    after = os.stat(base_tarball)
    assert (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)
    assert open(base_tarball + ".stamp.json").read() == stamp_before
    name = os.path.basename(base_tarball)
    assert sorted(os.listdir(os.path.dirname(base_tarball))) == [name, name + ".stamp.json"]


def test_directory_output_with_debootstrap_then_unchanged(tmp_path, package_cache):
    dest = str(tmp_path / "root")
    args = {"dest": dest, "suite": "bookworm", "tool": "debootstrap", "include": ["less"],
            "package_cache_dir": package_cache + "-debootstrap"}
    res = run_module("rootfs_bootstrap", args)
    assert res["changed"] is True, res
    assert res["tool"] == "debootstrap"
    assert os.path.isfile(os.path.join(dest, "usr/bin/less"))
    assert "less" in {p["name"] for p in res["packages"]}
    assert run_module("rootfs_bootstrap", args)["changed"] is False
    assert sorted(os.listdir(tmp_path)) == ["root", "root.stamp.json"]


@pytest.mark.parametrize("args,expected", [
    ({"suite": "bogus"}, "suite=bogus is not a known Debian or Ubuntu suite"),
    ({"suite": "bookworm", "keyring": "/nonexistent/keyring.gpg"}, "keyring=/nonexistent/keyring.gpg does not exist"),
    ({"suite": "bookworm", "mirror": "http://127.0.0.1:9/debian"}, "mirror=http://127.0.0.1:9/debian is not usable"),
    ({"suite": "bookworm", "include": ["Not_A_Package"]}, "invalid package names: Not_A_Package"),
])
def test_bad_input_is_a_clear_error_and_nothing_is_written(tmp_path, args, expected):
    out = tmp_path / "out"
    out.mkdir()
    res = run_module("rootfs_bootstrap", dict(args, dest=str(out / "root.tar")))
    assert res.get("failed") is True
    assert expected in res["msg"]
    assert listing(str(out)) == []


def test_a_package_that_does_not_exist_fails_and_leaves_nothing(tmp_path, package_cache):
    out = tmp_path / "out"
    out.mkdir()
    res = run_module("rootfs_bootstrap", {"dest": str(out / "root.tar"), "suite": "bookworm",
                                          "include": ["no-such-package-osimage-builder"],
                                          "package_cache_dir": package_cache})
    assert res.get("failed") is True
    assert "rootfs bootstrap failed" in res["msg"] and "no-such-package-osimage-builder" in res["stderr"]
    assert listing(str(out)) == []


def test_output_dir_that_is_not_writable(readonly_dir):
    res = run_module("rootfs_bootstrap", {"dest": os.path.join(readonly_dir, "root.tar"), "suite": "bookworm"})
    assert res.get("failed") is True
    assert "is not writable" in res["msg"] and "dest=" in res["msg"]
    assert listing(readonly_dir) == []

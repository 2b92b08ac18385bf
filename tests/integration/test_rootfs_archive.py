"""rootfs_archive: reproducible packs that keep ownership, modes, hard links
and xattrs; unpack is atomic and idempotent."""
import json
import os
import subprocess

import pytest

from ansible_collections.osimage.builder.plugins.module_utils._digest import sha256_file
from tests.conftest import needs_root, run_module
from tests.integration.conftest import listing

pytestmark = [needs_root]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "etc").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc/shadow").write_text("root:*:1::::::\n")
    os.chmod(root / "etc/shadow", 0)
    (root / "usr/bin/tool").write_text("#!/bin/sh\n")
    os.chmod(root / "usr/bin/tool", 0o4755)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-link")
    os.chown(root / "etc", 1000, 1000)
    subprocess.run(["setfattr", "-n", "user.osimage", "-v", "kept", str(root / "usr/bin/tool")], check=True)
    return str(root)


def test_pack_twice_gives_the_same_bytes_and_reports_no_change(tree, tmp_path):
    dest = str(tmp_path / "out/image.tgz")
    first = run_module("rootfs_archive", {"src": tree, "dest": dest, "source_date_epoch": 1700000000})
    assert first["changed"] is True, first
    assert first["artifact"]["size"] == os.path.getsize(dest)
    again = run_module("rootfs_archive", {"src": tree, "dest": dest, "source_date_epoch": 1700000000})
    assert again["changed"] is False
    assert again["artifact"]["sha256"] == first["artifact"]["sha256"]
    os.utime(os.path.join(tree, "usr/bin/tool"), (1600000000, 1600000000))  # older than the clamp: kept
    check = run_module("rootfs_archive", {"src": tree, "dest": dest, "source_date_epoch": 1700000000}, check=True)
    assert check["changed"] is True
    assert run_module("rootfs_archive", {"src": tree, "dest": dest, "source_date_epoch": 1700000000},
                      check=True)["artifact"]["sha256"] != first["artifact"]["sha256"]
    assert listing(str(tmp_path / "out")) == ["image.tgz"]


def test_unpack_keeps_modes_owners_links_and_xattrs(tree, tmp_path):
    tgz = str(tmp_path / "image.tgz")
    run_module("rootfs_archive", {"src": tree, "dest": tgz})
    dest = str(tmp_path / "unpacked")
    res = run_module("rootfs_archive", {"src": tgz, "dest": dest, "state": "unpacked"})
    assert res["changed"] is True
    st = os.stat(os.path.join(dest, "usr/bin/tool"))
    assert oct(st.st_mode & 0o7777) == "0o4755"
    assert st.st_ino == os.stat(os.path.join(dest, "usr/bin/tool-link")).st_ino
    assert oct(os.stat(os.path.join(dest, "etc/shadow")).st_mode & 0o7777) == "0o0"
    assert os.stat(os.path.join(dest, "etc")).st_uid == 1000
    assert os.getxattr(os.path.join(dest, "usr/bin/tool"), "user.osimage") == b"kept"
    assert run_module("rootfs_archive", {"src": tgz, "dest": dest, "state": "unpacked"})["changed"] is False
    forced = run_module("rootfs_archive", {"src": tgz, "dest": dest, "state": "unpacked", "force": True})
    assert forced["changed"] is True
    assert sorted(os.listdir(tmp_path)) == ["image.tgz", "tree", "unpacked", "unpacked.stamp.json"]
    record = json.loads((tmp_path / "unpacked.stamp.json").read_text())["records"]["rootfs_archive"]
    assert record["inputs"] == {"src_sha256": sha256_file(tgz)} and record["outputs"] == {}


def test_missing_source_is_an_error(tmp_path):
    res = run_module("rootfs_archive", {"src": str(tmp_path / "nope.tgz"), "dest": str(tmp_path / "d"),
                                        "state": "unpacked"})
    assert res.get("failed") is True and "src=%s does not exist" % (tmp_path / "nope.tgz") in res["msg"]
    assert not os.path.exists(tmp_path / "d")


def test_refuses_to_pack_a_root_with_mounts(tree, tmp_path):
    proc = os.path.join(tree, "proc")
    os.makedirs(proc)
    subprocess.run(["mount", "-t", "proc", "proc", proc], check=True)
    try:
        res = run_module("rootfs_archive", {"src": tree, "dest": str(tmp_path / "x.tgz")})
    finally:
        subprocess.run(["umount", proc], check=True)
    assert res.get("failed") is True and "still has mounts" in res["msg"]
    assert not os.path.exists(tmp_path / "x.tgz")

import json
import os

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _mounts as m

MOUNTINFO = """22 1 8:1 / / rw,relatime - ext4 /dev/vda rw
30 22 0:5 / /work/root/proc rw - proc proc rw
31 22 0:6 / /work/root/sys rw - sysfs sysfs rw
32 22 0:7 / /work/root/dev rw - devtmpfs udev rw
33 32 0:8 / /work/root/dev/pts rw - devpts devpts rw
34 22 0:9 / /work/root2/proc rw - proc proc rw
35 22 0:10 / /work/with\\040space rw - tmpfs tmpfs rw
"""


def test_mounts_under_is_deepest_first_and_exact_about_prefixes():
    points = m.mounts_under("/work/root", MOUNTINFO)
    assert points[0] == "/work/root/dev/pts"
    assert set(points) == {"/work/root/proc", "/work/root/sys", "/work/root/dev", "/work/root/dev/pts"}
    assert "/work/root2/proc" not in points


def test_mountinfo_octal_escapes():
    assert "/work/with space" in m.parse_mountinfo(MOUNTINFO)
    assert m.mounts_under("/work/with space", MOUNTINFO) == ["/work/with space"]


def test_loops_backed_under():
    text = json.dumps({"loopdevices": [
        {"name": "/dev/loop0", "back-file": "/work/build/disk.img"},
        {"name": "/dev/loop1", "back-file": "/work/build2/disk.img"},
        {"name": "/dev/loop2", "back-file": "/work/build/old.img (deleted)"},
        {"name": "/dev/loop3", "back-file": None},
    ]})
    assert m.loops_backed_under("/work/build", text) == ["/dev/loop0", "/dev/loop2"]
    assert m.parse_losetup_json("") == []


def test_is_under():
    assert m.is_under("/a/b", "/a")
    assert m.is_under("/a", "/a/")
    assert not m.is_under("/ab", "/a")


def _root_with_links(tmp_path):
    root = tmp_path / "root"
    host = tmp_path / "host"
    (host / "etc/ssh").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").symlink_to(str(host / "etc"))  # absolute: the "host's" /etc
    (root / "bin").symlink_to("usr/bin")  # relative, as on a merged-/usr system
    (root / "up").symlink_to("../../../../..")  # climbs: stops at the root
    (root / "loop").symlink_to("loop")
    return str(root), str(host)


def test_resolve_in_root_follows_symlinks_inside_the_root(tmp_path):
    root, host = _root_with_links(tmp_path)
    real = os.path.realpath(root)
    # /etc -> <host>/etc is read inside the root, as chroot would.
    assert m.resolve_in_root(root, "/etc/ssh/ssh_host_rsa_key") == real + host + "/etc/ssh/ssh_host_rsa_key"
    assert m.resolve_in_root(root, "/bin/sh") == real + "/usr/bin/sh"
    assert m.resolve_in_root(root, "/up/etc") == m.resolve_in_root(root, "/etc")
    assert m.resolve_in_root(root, "../../../proc") == real + "/proc"
    assert m.resolve_in_root(root, "/") == real
    # follow_last=False: the symlink itself, to rename or unlink it.
    assert m.resolve_in_root(root, "/etc", follow_last=False) == real + "/etc"


def test_resolve_in_root_never_leaves_the_root(tmp_path):
    root, host = _root_with_links(tmp_path)
    for path in ("/etc", "/etc/ssh", "/up", "/up/up/etc/passwd", "/../..", "/bin/../../.."):
        assert m.is_under(m.resolve_in_root(root, path), os.path.realpath(root)), path
        assert not m.is_under(m.resolve_in_root(root, path), host), path


def test_resolve_in_root_refuses_loops_and_strict_escapes(tmp_path):
    root, _host = _root_with_links(tmp_path)
    with pytest.raises(ValueError, match="too many levels of symbolic links"):
        m.resolve_in_root(root, "/loop/x")
    with pytest.raises(ValueError, match="climbs out of the image root"):
        m.resolve_in_root(root, "../etc/passwd", strict=True)
    with pytest.raises(ValueError, match="climbs out of the image root"):
        m.resolve_in_root(root, "/var/../../etc", strict=True)
    assert m.resolve_in_root(root, "/var/../etc", strict=True, follow_last=False) == os.path.realpath(root) + "/etc"


@pytest.mark.parametrize("path", ["/", "//", "/var/tmp", "/var/tmp/", "/tmp", "/home", "/proc", "/sys", "/dev",
                                  "/run", "/boot", "/usr", "/var", "/usr/..", "/etc/../var/tmp"])
def test_host_dir_problem_refuses_the_hosts_own_directories(path):
    assert m.host_dir_problem(path)


@pytest.mark.parametrize("path", ["/var/tmp/osimage/work", "/var/tmp/osimage/work/chroot", "/tmp/pytest-1/root",
                                  "/srv/build/chroot"])
def test_host_dir_problem_accepts_build_directories(path):
    assert m.host_dir_problem(path) is None


def test_loops_backed_by_a_prefix():
    text = json.dumps({"loopdevices": [
        {"name": "/dev/loop0", "back-file": "/var/tmp/.disk.img.disk_image-tmp"},
        {"name": "/dev/loop1", "back-file": "/var/tmp/other-build.img"},
        {"name": "/dev/loop2", "back-file": "/var/tmp/.disk.img.disk_image-tmp (deleted)"},
        {"name": "/dev/loop3", "back-file": "/var/tmp/.disk.img2.disk_image-tmp"},
    ]})
    assert m.loops_backed_by("/var/tmp/.disk.img.disk_image-", text) == ["/dev/loop0", "/dev/loop2"]


class _Failed(Exception):
    pass


class _Module:
    def fail_json(self, **kw):
        raise _Failed(kw["msg"])


class _Runner:
    """Records what would run; release_under must refuse before any of it."""

    def __init__(self):
        self.module = _Module()
        self.ran = []

    def run(self, argv, *args, **kwargs):
        self.ran.append(argv)
        return 0, "", ""


@pytest.mark.parametrize("top", ["/", "/var/tmp", "/tmp/", "/home"])
def test_release_under_refuses_the_hosts_own_directories_before_anything(top):
    runner = _Runner()
    with pytest.raises(_Failed, match="refusing to release the mounts under"):
        m.release_under(runner, top, dry_run=False)
    assert runner.ran == []

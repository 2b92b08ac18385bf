import json

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

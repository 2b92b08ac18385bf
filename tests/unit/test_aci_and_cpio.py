import copy
import io

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _aci as aci
from ansible_collections.osimage.builder.plugins.module_utils import _cpio as cpio

GOOD = {
    "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/osimage/test-app",
    "labels": [{"name": "version", "value": "1.0.0"}, {"name": "os", "value": "linux"},
               {"name": "arch", "value": "amd64"}],
    "app": {"exec": ["/bin/app", "--flag"], "user": "0", "group": "0", "workingDirectory": "/srv",
            "environment": [{"name": "PATH", "value": "/bin"}],
            "mountPoints": [{"name": "data", "path": "/data", "readOnly": False}],
            "ports": [{"name": "http", "protocol": "tcp", "port": 8080, "count": 1}],
            "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}]},
    "annotations": [{"name": "coreos.com/rkt/stage1/run", "value": "/init"}],
    "dependencies": [{"imageName": "coreos.com/rkt/stage1-kvm",
                      "labels": [{"name": "version", "value": "1.30.0"}]}],
}


def with_change(path, value):
    m = copy.deepcopy(GOOD)
    target = m
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return m


def test_good_manifest_is_valid():
    assert aci.validate_manifest(GOOD) == []


@pytest.mark.parametrize("manifest,words", [
    (with_change(["name"], "Example.com/App"), "name 'Example.com/App' is not an AC Identifier"),
    (with_change(["labels"], GOOD["labels"] + [{"name": "name", "value": "x"}]), "'name' is reserved"),
    (with_change(["labels"], GOOD["labels"] + [{"name": "version", "value": "2"}]), "duplicate label"),
    (with_change(["labels"], [{"name": "os", "value": "linux"}, {"name": "arch", "value": "x86_64"}]),
     "arch 'x86_64' is not valid for os 'linux'"),
    (with_change(["app", "user"], KeyError), "app.user is required"),
    (with_change(["app", "group"], KeyError), "app.group is required"),
    (with_change(["app", "workingDirectory"], "srv"), "app.workingDirectory 'srv' must be an absolute path"),
    (with_change(["app", "ports"], [{"name": "http", "protocol": "tcp", "port": 0}]),
     "app.ports[0].port 0 must be between 1 and 65535"),
    (with_change(["app", "ports"], [{"name": "http", "protocol": "sctp", "port": 80}]), "must be tcp or udp"),
    (with_change(["app", "exec"], ["bin/app"]), "app.exec[0] 'bin/app' must be an absolute path"),
    (with_change(["app", "mountPoints"], [{"name": "Data", "path": "/d"}]), "is not an AC Name"),
    (with_change(["acKind"], "PodManifest"), "acKind must be 'ImageManifest'"),
    (with_change(["dependencies"], [{"imageName": "x", "imageID": "sha256-00"}]), "is not sha512-<hex>"),
])
def test_invalid_manifests_name_the_field(manifest, words):
    errors = aci.validate_manifest(manifest)
    assert any(words in e for e in errors), errors


@pytest.mark.parametrize("names,words", [
    (["manifest", "rootfs", "rootfs/bin", "rootfs/bin"], "duplicate entry"),
    (["manifest", "rootfs", "extra.txt"], "only manifest and rootfs/ may be at the top level"),
    (["manifest", "rootfs", "rootfs/../../etc/passwd"], "escapes the image"),
    (["manifest", "/rootfs/x", "rootfs"], "escapes the image"),
    (["rootfs", "rootfs/x"], "no manifest"),
])
def test_member_checks(names, words):
    assert any(words in p for p in aci.check_members(names))


def test_member_checks_accept_a_good_image():
    assert aci.check_members(["manifest", "rootfs", "rootfs/bin", "rootfs/bin/sh"]) == []


def test_newc_is_deterministic_and_readable(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sh").write_bytes(b"#!x")
    (tmp_path / "init").symlink_to("bin/sh")
    first, second = io.BytesIO(), io.BytesIO()
    cpio.write_newc(first, str(tmp_path), 0, [("/dev/console", "c", 5, 1, 0o600)])
    cpio.write_newc(second, str(tmp_path), 0, [("/dev/console", "c", 5, 1, 0o600)])
    assert first.getvalue() == second.getvalue()
    entries = cpio.read_newc(first.getvalue())
    assert [e[0] for e in entries] == ["bin", "bin/sh", "dev", "dev/console", "init"]
    assert all(e[3] == 0 and e[4] == 0 and e[5] == 0 for e in entries)
    assert len(first.getvalue()) % 4 == 0


def _member(name, kind="file", linkname=""):
    import tarfile
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                 "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname = linkname
    return info


GOOD_MEMBERS = [("manifest", "file"), ("rootfs", "dir"), ("rootfs/bin", "dir"), ("rootfs/bin/busybox", "file"),
                ("rootfs/bin/sh", "sym", "busybox"), ("rootfs/etc", "dir"),
                ("rootfs/etc/localtime", "sym", "/usr/share/zoneinfo/UTC"), ("rootfs/bin/ash", "hard",
                                                                             "rootfs/bin/busybox"),
                ("rootfs/run", "dir"), ("rootfs/run/initctl", "fifo"), ("rootfs/usr", "dir"),
                ("rootfs/usr/lib64", "sym", "../lib")]


def test_member_types_accept_a_good_image():
    # An absolute target is resolved inside rootfs by the runtime; ../lib
    # from rootfs/usr stays in rootfs.
    assert aci.check_member_types([_member(*m) for m in GOOD_MEMBERS]) == []


@pytest.mark.parametrize("extra,words", [
    ([("rootfs/dev", "dir"), ("rootfs/dev/sda", "blk")], "is a device node"),
    ([("rootfs/dev", "dir"), ("rootfs/dev/mem", "chr")], "is a device node"),
    ([("rootfs/etc/passwd", "sym", "../../../etc/passwd")], "points out of rootfs"),
    ([("rootfs/up", "sym", "..")], "points out of rootfs"),
    ([("rootfs/bin/x", "hard", "/etc/shadow")], "does not point to an earlier member of rootfs"),
    ([("rootfs/bin/x", "hard", "manifest")], "does not point to an earlier member of rootfs"),
    ([("rootfs/bin/x", "hard", "rootfs/../etc/shadow")], "does not point to an earlier member of rootfs"),
    ([("rootfs/bin/x", "hard", "rootfs/bin/later"), ("rootfs/bin/later", "file")],
     "does not point to an earlier member of rootfs"),
    ([("rootfs/host", "sym", "/"), ("rootfs/host/etc/passwd", "file")], "is written through the symlink"),
])
def test_member_types_refuse_devices_and_escaping_links(extra, words):
    members = [_member(*m) for m in GOOD_MEMBERS + extra]
    problems = aci.check_member_types(members)
    assert any(words in p for p in problems), problems


def test_member_types_manifest_and_rootfs_kinds():
    problems = aci.check_member_types([_member("manifest", "fifo"), _member("rootfs", "file")])
    assert "member 'manifest' must be a regular file" in problems
    assert "member 'rootfs' must be a directory" in problems

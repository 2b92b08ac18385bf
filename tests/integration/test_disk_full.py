"""A build whose output directory fills up (issue 11): a small loop-mounted
ext4 as the output directory of real module runs. Each fails with a message
naming the directory, how much the write needed (or wrote before the disk
filled) and how much is free; leaves no partial file there and nothing
mounted but the test's own filesystem; and the re-run, once the filesystem
has room, completes. No image is built: a tree of incompressible bytes is
packed, copied and unpacked."""

import contextlib
import errno
import hashlib
import os
import subprocess

import pytest

from ansible_collections.osimage.builder.plugins.module_utils._digest import write_text_atomically
from ansible_collections.osimage.builder.plugins.module_utils._space import NoSpace
from tests.conftest import loops_under, mounts_under, needs_root, run_module

pytestmark = [needs_root]

SMALL_MIB = 4
PAYLOAD = 6 * 2 ** 20  # random bytes: no compression makes them fit in SMALL_MIB


@contextlib.contextmanager
def small_filesystem(tmp_path):
    """A SMALL_MIB ext4 mounted at tmp_path/small (no reserved blocks: root
    sees what is free). Yields (mount point, grow) where grow() gives it room."""
    image, point = tmp_path / "small.img", tmp_path / "small"
    point.mkdir()
    subprocess.run(["truncate", "-s", "%dM" % SMALL_MIB, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
    mounted = [True]

    def grow(mib=64):
        subprocess.run(["umount", str(point)], check=True)
        mounted[0] = False
        subprocess.run(["truncate", "-s", "%dM" % mib, str(image)], check=True)
        subprocess.run(["e2fsck", "-f", "-y", str(image)], check=True, capture_output=True)
        subprocess.run(["resize2fs", "-f", str(image)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
        mounted[0] = True

    try:
        yield point, grow
    finally:
        if mounted[0]:
            subprocess.run(["umount", str(point)], check=True)


def left_in(point):
    return sorted(set(os.listdir(point)) - {"lost+found"})


def assert_only_our_mount(tmp_path, point):
    assert mounts_under(str(tmp_path)) == [str(point)], mounts_under(str(tmp_path))
    loops = loops_under(str(tmp_path))
    assert len(loops) == 1 and loops[0].endswith("small.img"), loops


def assert_names_the_space(res, point):
    assert res.get("failed") is True, res
    assert "no space left in %s" % point in res["msg"], res["msg"]
    assert res["directory"] == str(point), res
    assert isinstance(res["free_bytes"], int) and res["free_bytes"] < SMALL_MIB * 2 ** 20, res
    assert " free there" in res["msg"] and "then re-run" in res["msg"], res["msg"]


def test_a_full_output_directory_fails_clearly_and_the_re_run_completes(tmp_path):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("disk-full\n")
    (tree / "payload.bin").write_bytes(os.urandom(PAYLOAD))
    with small_filesystem(tmp_path) as (point, grow):
        # A streamed archive (tar | gzip): how much was written before the
        # disk filled is what is known.
        dest = point / "root.tar.gz"
        res = run_module("rootfs_archive", {"src": str(tree), "dest": str(dest), "source_date_epoch": 1700000000})
        assert_names_the_space(res, point)
        assert "writing the archive" in res["msg"] and "needed more than the" in res["msg"], res["msg"]
        assert left_in(point) == [], "a partial archive was left: %s" % left_in(point)
        assert_only_our_mount(tmp_path, point)

        # A copied input: the size needed is known.
        res = run_module("input_file", {"src": str(tree / "payload.bin"), "dest": str(point / "payload.bin"),
                                        "sha256": hashlib.sha256((tree / "payload.bin").read_bytes()).hexdigest()})
        assert_names_the_space(res, point)
        assert res["needed_bytes"] == PAYLOAD and "needed %d bytes" % PAYLOAD in res["msg"], res["msg"]
        assert left_in(point) == []

        # A program that fills the disk (tar unpacking): its failure names
        # the free space of the directory it wrote to.
        packed = tmp_path / "big" / "root.tar"
        res = run_module("rootfs_archive", {"src": str(tree), "dest": str(packed), "compression": "none"})
        assert res.get("changed") is True, res
        res = run_module("rootfs_archive", {"src": str(packed), "dest": str(point / "root"), "state": "unpacked"})
        assert res.get("failed") is True, res
        assert "No space left on device (%s: " % point in res["msg"] and " free)" in res["msg"], res["msg"]
        assert left_in(point) == [], "a partial tree was left: %s" % left_in(point)
        assert_only_our_mount(tmp_path, point)

        # A stamp or a report, written atomically: the bytes it needed are
        # known and its temporary file is gone.
        filler = os.open(point / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(filler, b"\0" * 65536):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(filler)
        report = point / "root.tar.gz.report.json"
        with pytest.raises(NoSpace) as err:
            write_text_atomically(str(report), "{}" * 100000)
        assert str(err.value).startswith("writing %s: no space left in %s: needed 200000 bytes" % (report, point))
        assert left_in(point) == ["filler"]
        os.unlink(point / "filler")

        # With room, the same runs complete.
        grow()
        res = run_module("rootfs_archive", {"src": str(tree), "dest": str(dest), "source_date_epoch": 1700000000})
        assert res.get("changed") is True and dest.is_file(), res
        res = run_module("rootfs_archive", {"src": str(packed), "dest": str(point / "root"), "state": "unpacked"})
        assert res.get("changed") is True and (point / "root" / "payload.bin").stat().st_size == PAYLOAD, res
        assert_only_our_mount(tmp_path, point)
    assert mounts_under(str(tmp_path)) == [] and loops_under(str(tmp_path)) == []


def test_a_stemcell_staged_on_a_full_disk_fails_clearly_and_the_re_run_completes(tmp_path):
    """stemcell_package stages the disk image and the tarball in dest_dir:
    a full one names dest_dir, leaves nothing there, and with room the same
    run completes."""
    root = tmp_path / "root"
    for rel, data in (("etc/os-release", "ID=debian\n"),
                      ("var/lib/dpkg/status", "Package: base-files\nStatus: install ok installed\n"
                                              "Version: 12.4\nArchitecture: amd64\n\n")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(data)
    image = tmp_path / "root.qcow2"
    image.write_bytes(os.urandom(PAYLOAD))
    with small_filesystem(tmp_path) as (point, grow):
        args = {"dest_dir": str(point), "version": "1.0", "infrastructure": "openstack", "hypervisor": "kvm",
                "disk_format": "qcow2", "os_name": "debian-bookworm", "os_distro": "debian", "image": str(image),
                "disk_mb": 5120, "root": str(root)}
        res = run_module("stemcell_package", args)
        assert_names_the_space(res, point)
        assert "dest_dir" in res["msg"], res["msg"]
        assert left_in(point) == []
        assert_only_our_mount(tmp_path, point)
        grow()
        res = run_module("stemcell_package", args)
        assert res.get("failed") is not True, res.get("msg")
        assert res["changed"] is True and os.path.isfile(res["artifact"]["path"]), res

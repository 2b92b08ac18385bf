"""initramfs and aci_image for real: identical bytes on two runs, check mode
writes nothing, the initramfs boots a kernel in qemu, the ACI validator
rejects broken images with a clear message."""
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from tests.conftest import needs_root, run_module
from tests.guests import MARKER, NODES, busybox_init_root
from tests.integration.conftest import CACHE

pytestmark = [needs_root]


@pytest.fixture
def busybox_root(tmp_path):
    return busybox_init_root(tmp_path / "initramfs")


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd", "none"])
def test_initramfs_is_reproducible_and_idempotent(busybox_root, tmp_path, compression):
    a, b = str(tmp_path / "a.img"), str(tmp_path / "b.img")
    first = run_module("initramfs", {"src": busybox_root, "dest": a, "compression": compression,
                                     "device_nodes": NODES})
    second = run_module("initramfs", {"src": busybox_root, "dest": b, "compression": compression,
                                      "device_nodes": NODES})
    assert first["changed"] is True and second["changed"] is True
    assert first["artifact"]["sha256"] == second["artifact"]["sha256"]
    again = run_module("initramfs", {"src": busybox_root, "dest": a, "compression": compression,
                                     "device_nodes": NODES})
    assert again["changed"] is False
    check = run_module("initramfs", {"src": busybox_root, "dest": str(tmp_path / "c.img"),
                                     "compression": compression, "device_nodes": NODES}, check=True)
    assert check["changed"] is True and not os.path.exists(tmp_path / "c.img")


def test_initramfs_bad_device_node(busybox_root, tmp_path):
    res = run_module("initramfs", {"src": busybox_root, "dest": str(tmp_path / "x"),
                                   "device_nodes": [{"path": "dev/console", "type": "x"}]})
    assert res.get("failed") is True and "device_nodes[0]" in res["msg"]
    assert not os.path.exists(tmp_path / "x")


@pytest.fixture(scope="session")
def debian_kernel():
    """Debian's cloud kernel, from the package archive (cached)."""
    cache = os.path.join(CACHE, "kernel")
    os.makedirs(cache, exist_ok=True)
    vmlinuz = [n for n in os.listdir(cache) if n.startswith("vmlinuz-")]
    if not vmlinuz:
        proc = subprocess.run("apt-get download $(apt-cache depends linux-image-cloud-amd64 | "
                              "awk '/Depends: linux-image-[0-9]/{print $2; exit}')", shell=True, cwd=cache,
                              capture_output=True, text=True, check=False)
        debs = [n for n in os.listdir(cache) if n.endswith(".deb")]
        if proc.returncode != 0 or not debs:
            pytest.skip("Debian's kernel package could not be downloaded: %s" % proc.stderr.strip())
        subprocess.run(["dpkg-deb", "-x", os.path.join(cache, debs[0]), os.path.join(cache, "x")], check=True)
        boot = os.path.join(cache, "x", "boot")
        name = next(n for n in os.listdir(boot) if n.startswith("vmlinuz-"))
        shutil.copy(os.path.join(boot, name), os.path.join(cache, name))
        shutil.rmtree(os.path.join(cache, "x"))
        vmlinuz = [name]
    return os.path.join(cache, vmlinuz[0])


@pytest.mark.network
@pytest.mark.parametrize("compression", ["gzip", "xz"])
def test_the_initramfs_boots_a_kernel(busybox_root, tmp_path, debian_kernel, compression):
    img = str(tmp_path / "initramfs.img")
    run_module("initramfs", {"src": busybox_root, "dest": img, "compression": compression, "device_nodes": NODES})
    res = run_module("boot_test", {"kernel": debian_kernel, "initrd": img, "expect": MARKER, "timeout": 120,
                                   "console_log": str(tmp_path / "console.log")})
    assert res.get("failed") is not True, res.get("msg")
    assert res["matched"] == MARKER and res["accel"] in ("kvm", "tcg"), res
    assert MARKER in (tmp_path / "console.log").read_text(errors="replace")


def test_boot_test_fails_clearly_when_the_line_never_comes(busybox_root, tmp_path, debian_kernel):
    img = str(tmp_path / "initramfs.img")
    run_module("initramfs", {"src": busybox_root, "dest": img, "device_nodes": NODES})
    res = run_module("boot_test", {"kernel": debian_kernel, "initrd": img, "expect": "NEVER-PRINTED",
                                   "timeout": 60, "console_log": str(tmp_path / "console.log")})
    assert res.get("failed") is True
    assert "boot test failed under" in res["msg"] and "NEVER-PRINTED" in res["msg"]


MANIFEST = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/osimage/test",
            "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"},
                       {"name": "version", "value": "1.0.0"}],
            "app": {"exec": ["/bin/busybox", "sh"], "user": "0", "group": "0"}}


@pytest.mark.parametrize("compression", ["gzip", "xz", "none"])
def test_aci_is_reproducible_idempotent_and_valid(busybox_root, tmp_path, compression):
    a, b = str(tmp_path / "a.aci"), str(tmp_path / "b.aci")
    first = run_module("aci_image", {"dest": a, "rootfs": busybox_root, "manifest": MANIFEST,
                                     "compression": compression})
    second = run_module("aci_image", {"dest": b, "rootfs": busybox_root, "manifest": MANIFEST,
                                      "compression": compression})
    assert first["changed"] is True, first
    assert first["artifact"]["sha256"] == second["artifact"]["sha256"]
    assert first["image_id"] == second["image_id"] and first["image_id"].startswith("sha512-")
    assert run_module("aci_image", {"dest": a, "rootfs": busybox_root, "manifest": MANIFEST,
                                    "compression": compression})["changed"] is False
    valid = run_module("aci_image", {"dest": a, "state": "validated"})
    assert valid["image_id"] == first["image_id"] and valid["manifest"] == MANIFEST
    check = run_module("aci_image", {"dest": str(tmp_path / "c.aci"), "rootfs": busybox_root,
                                     "manifest": MANIFEST}, check=True)
    assert check["changed"] is True and not os.path.exists(tmp_path / "c.aci")


def test_invalid_manifest_writes_nothing(busybox_root, tmp_path):
    bad = dict(MANIFEST, name="Example.com/Test")
    res = run_module("aci_image", {"dest": str(tmp_path / "x.aci"), "rootfs": busybox_root, "manifest": bad})
    assert res.get("failed") is True and "name 'Example.com/Test' is not an AC Identifier" in res["msg"]
    assert os.listdir(tmp_path) == ["initramfs"]


def _tar(path, members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with gzip.open(path, "wb") as f:
        f.write(buf.getvalue())


@pytest.mark.parametrize("members,words", [
    ([("manifest", b"{}"), ("rootfs", None), ("rootfs/a", b"1"), ("rootfs/a", b"2")], "duplicate entry"),
    ([("manifest", json.dumps(MANIFEST).encode()), ("rootfs", None), ("README", b"x")],
     "only manifest and rootfs/ may be at the top level"),
    ([("manifest", json.dumps(MANIFEST).encode()), ("rootfs", None), ("rootfs/../../evil", b"x")],
     "escapes the image"),
    ([("manifest", json.dumps(dict(MANIFEST, labels=[{"name": "os", "value": "linux"},
                                                     {"name": "arch", "value": "x86_64"}])).encode()),
      ("rootfs", None)], "arch 'x86_64' is not valid for os 'linux'"),
])
def test_validator_rejects_broken_images(tmp_path, members, words):
    path = str(tmp_path / "bad.aci")
    _tar(path, members)
    res = run_module("aci_image", {"dest": path, "state": "validated"})
    assert res.get("failed") is True and words in res["msg"], res.get("msg")

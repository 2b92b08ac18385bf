"""The rkt stage1-kvm pipeline end to end with a small kernel config: the
ACI's layout and manifest, validation, determinism and a no-op re-run, and
the image's kernel booting."""
import os
import subprocess
import tarfile

import pytest

from tests.conftest import REPO, failed_msgs, needs_root, run_module, run_playbook
from tests.integration.test_initramfs_and_aci import MARKER

pytestmark = [needs_root, pytest.mark.slow]

PLAYBOOK = os.path.join(REPO, "playbooks", "build-stage1-kvm.yml")
SMALL = os.path.join(REPO, "tests", "integration", "files", "stage1-small-config")


def vars_for(base):
    return {"osimage_work_dir": str(base / "work"), "osimage_output_dir": str(base / "output"),
            "rkt_stage1_config_dir": SMALL}


@pytest.fixture(scope="session")
def stage1(tmp_path_factory):
    if not os.path.exists("/usr/src/linux-source-6.1.tar.xz"):
        pytest.skip("linux-source-6.1 is not installed (./osimage setup installs it)")
    base = tmp_path_factory.mktemp("stage1")
    rc, stats, results = run_playbook(PLAYBOOK, vars_for(base))
    assert rc == 0, failed_msgs(results)
    return base, results


def test_the_aci_and_its_manifest(stage1):
    base, results = stage1
    aci = base / "output" / "stage1-kvm-1.30.0-linux-6.1.aci"
    res = run_module("aci_image", {"dest": str(aci), "state": "validated"})
    assert res.get("failed") is not True, res.get("msg")
    shown = next(r for r in results if r["_task"] == "Show the stage1 image")["msg"]
    assert shown[1] == "image id " + res["image_id"]
    m = res["manifest"]
    labels = {x["name"]: x["value"] for x in m["labels"]}
    assert labels == {"arch": "amd64", "os": "linux", "version": "1.30.0", "kernelversion": "6.1"}
    notes = {x["name"]: x["value"] for x in m["annotations"]}
    assert notes["coreos.com/rkt/stage1/run"] == "/init" and notes["coreos.com/rkt/stage1/interface-version"] == "5"
    dep = m["dependencies"][0]
    assert dep["imageName"] == "coreos.com/rkt/stage1-kvm"
    assert {x["name"]: x["value"] for x in dep["labels"]} == {"os": "linux", "arch": "amd64", "version": "1.30.0"}
    with tarfile.open(aci) as tar:
        names = tar.getnames()
    release = next(r for r in results if r["_task"] == "Build the kernel")["release"]
    assert release.endswith("-osimage-v1")
    for path in ("rootfs/kernel_image", "rootfs/usr/bin/mkdir",
                 "rootfs/lib/modules/%s/include/linux/types.h" % release,
                 "rootfs/lib/modules/%s/source/include/linux/kernel.h" % release,
                 "rootfs/etc/systemd/system/prepare-app@.service.d/10-bind-mount-kernel-header.conf"):
        assert path in names, path
    assert {n.split("/")[0] for n in names} == {"manifest", "rootfs"}


def test_a_second_run_changes_nothing(stage1):
    base, first = stage1
    rc, stats, results = run_playbook(PLAYBOOK, vars_for(base))
    assert rc == 0, failed_msgs(results)
    assert stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]


def test_the_image_kernel_boots(stage1, tmp_path):
    base, _results = stage1
    aci = base / "output" / "stage1-kvm-1.30.0-linux-6.1.aci"
    with tarfile.open(aci) as tar:
        kernel = tar.extractfile("rootfs/kernel_image").read()
    (tmp_path / "kernel").write_bytes(kernel)
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    subprocess.run(["cp", "/bin/busybox", str(root / "bin" / "busybox")], check=True)
    (root / "init").write_text("#!/bin/busybox sh\n/bin/busybox echo %s\n/bin/busybox reboot -f\n" % MARKER)
    os.chmod(root / "init", 0o755)
    run_module("initramfs", {"src": str(root), "dest": str(tmp_path / "i.img"),
                             "device_nodes": [{"path": "/dev/console", "type": "c", "major": 5, "minor": 1,
                                               "mode": "0600"}]})
    res = run_module("boot_test", {"kernel": str(tmp_path / "kernel"), "initrd": str(tmp_path / "i.img"),
                                   "append": "console=ttyS0", "expect": MARKER, "timeout": 120,
                                   "console_log": str(tmp_path / "console.log")})
    assert res.get("failed") is not True, res.get("msg")


def test_no_config_for_the_kernel_version(tmp_path):
    rc, stats, results = run_playbook(PLAYBOOK, dict(vars_for(tmp_path), rkt_stage1_kernel_version="5.99"))
    assert rc != 0
    assert any("neither linux-5.99.config nor linux-5.99.config" in m for m in failed_msgs(results))

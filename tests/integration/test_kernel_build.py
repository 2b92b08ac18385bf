"""kernel_build for real on Debian's linux-source-6.1: a small kernel that
boots a busybox initramfs made by the initramfs module, no rebuild on the
same inputs, an incremental rebuild that names the changed input, and bad
input that fails clearly with nothing published. kernel_build does not
download: a role given a kernel source URL fetches it with input_file in its
kernel stage and hands kernel_build the local copy (checked on the shared
guest kernel's inputs, so no kernel is built cold), and refuses a URL without
its sha256 in the plan."""
import os

import pytest

from ansible_collections.osimage.builder.plugins.module_utils._digest import sha256_file
from tests import local_archive
from tests.conftest import REPO, failed_msgs, needs_root, run_module, run_playbook
from tests.guests import MARKER, NODES, busybox_init_root
from tests.integration.conftest import CACHE, LINUX_SOURCE, guest_kernel_args

pytestmark = [needs_root, pytest.mark.slow]

SOURCE = LINUX_SOURCE
FRAGMENT = os.path.join(REPO, "tests", "integration", "files", "kernel-boot.config")
BUILD_DIR = os.path.join(CACHE, "kernel-build")


@pytest.fixture(scope="session")
def source_sha256(linux_source_sha256):
    """The tarball's sha256, hashed once per session (conftest)."""
    return linux_source_sha256


def args(dest, sha, **extra):
    a = {"source": SOURCE, "source_sha256": sha, "build_dir": BUILD_DIR, "dest_dir": dest,
         "config": "tinyconfig", "config_fragments": [FRAGMENT], "localversion": "-osimage-test",
         "headers": True, "source_include": True, "vmlinux": True}
    a.update(extra)
    return a


@pytest.fixture(scope="session")
def kernel(tmp_path_factory, source_sha256):
    dest = str(tmp_path_factory.mktemp("kernel") / "out")
    res = run_module("kernel_build", args(dest, source_sha256), timeout=3000)
    assert res.get("changed") is True, res.get("msg")
    return dest, res


@pytest.fixture(scope="session")
def test_initramfs(tmp_path_factory):
    root = busybox_init_root(tmp_path_factory.mktemp("initramfs-root"))
    img = str(tmp_path_factory.mktemp("initramfs") / "initramfs.cpio.gz")
    res = run_module("initramfs", {"src": root, "dest": img, "device_nodes": NODES})
    assert res.get("changed") is True and res["artifact"]["path"] == img, res
    return img, root


def test_outputs(kernel):
    dest, res = kernel
    assert res["release"] == "6.1.%s-osimage-test" % res["release"].split(".")[2].split("-")[0]
    assert open(os.path.join(dest, "kernel.release")).read().strip() == res["release"]
    for key in ("bzimage", "vmlinux", "config_file"):
        assert os.path.getsize(res[key]["path"]) == res[key]["size"] and len(res[key]["sha256"]) == 64
    assert os.path.isfile(os.path.join(res["headers_dir"], "include", "linux", "types.h"))
    assert os.path.isfile(os.path.join(res["source_include_dir"], "linux", "kernel.h"))
    config = open(os.path.join(dest, "config")).read()
    assert "CONFIG_SERIAL_8250_CONSOLE=y" in config and 'CONFIG_LOCALVERSION="-osimage-test"' in config


def test_the_kernel_boots_the_initramfs(kernel, test_initramfs, tmp_path):
    dest, _res = kernel
    res = run_module("boot_test", {"kernel": os.path.join(dest, "bzImage"), "initrd": test_initramfs[0],
                                   "append": "console=ttyS0", "expect": MARKER, "timeout": 120,
                                   "console_log": str(tmp_path / "console.log")})
    assert res.get("failed") is not True, res.get("msg")
    assert res["matched"] == MARKER


def test_same_inputs_do_not_rebuild(kernel, source_sha256):
    dest, first = kernel
    again = run_module("kernel_build", args(dest, source_sha256))
    assert again["changed"] is False and again["rebuild_reason"] is None
    assert again["bzimage"]["sha256"] == first["bzimage"]["sha256"]
    check = run_module("kernel_build", args(dest, source_sha256, config_options={"CONFIG_PRINTK_TIME": "y"}),
                       check=True)
    assert check["changed"] is True and check["rebuild_reason"] == "inputs changed: config_options"
    assert run_module("kernel_build", args(dest, source_sha256))["changed"] is False


def test_embedded_initramfs_rebuilds_and_boots(kernel, source_sha256, test_initramfs, tmp_path):
    dest = str(tmp_path / "embedded")
    res = run_module("kernel_build", args(dest, source_sha256, initramfs_source=test_initramfs[0],
                                          headers=False, source_include=False, vmlinux=False), timeout=3000)
    assert res.get("changed") is True, res.get("msg")
    assert 'CONFIG_INITRAMFS_SOURCE="%s"' % test_initramfs[0] in open(os.path.join(dest, "config")).read()
    boot = run_module("boot_test", {"kernel": os.path.join(dest, "bzImage"), "append": "console=ttyS0",
                                    "expect": MARKER, "timeout": 120, "console_log": str(tmp_path / "c.log")})
    assert boot.get("failed") is not True, boot.get("msg")


def test_wrong_sha256(tmp_path):
    res = run_module("kernel_build", args(str(tmp_path / "out"), "0" * 64))
    assert res.get("failed") is True and "refusing to build it" in res["msg"]
    assert not os.path.exists(tmp_path / "out")


def test_an_option_that_does_not_exist(tmp_path, source_sha256):
    res = run_module("kernel_build", args(str(tmp_path / "out"), source_sha256,
                                          config_options={"CONFIG_OSIMAGE_NO_SUCH_OPTION": "y"}))
    assert res.get("failed") is True
    assert "did not stick" in res["msg"] and "CONFIG_OSIMAGE_NO_SUCH_OPTION=y" in res["msg"]
    assert not os.path.exists(tmp_path / "out" / "bzImage")


def test_a_patch_that_does_not_apply(tmp_path, source_sha256):
    patch = tmp_path / "bad.patch"
    patch.write_text("--- a/Makefile\n+++ b/Makefile\n@@ -1,3 +1,3 @@\n-NO SUCH LINE\n+OTHER\n context\n")
    before = sorted(n for n in os.listdir(BUILD_DIR) if n.startswith("src-"))
    res = run_module("kernel_build", args(str(tmp_path / "out"), source_sha256, patches=[str(patch)]),
                     timeout=1200)
    assert res.get("failed") is True and "apply patch %s failed" % patch in res["msg"]
    assert sorted(n for n in os.listdir(BUILD_DIR) if n.startswith("src-")) == before
    assert [n for n in os.listdir(BUILD_DIR) if n.startswith(".src-")] == []
    assert not os.path.exists(tmp_path / "out" / "bzImage")


# ------------------------------------------------- kernel sources given by URL

KERNEL_STAGE = """\
---
- name: The kurma role's kernel stage, included as the pipeline runner includes it
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the kernel stage
      ansible.builtin.include_role:
        name: osimage.builder.kurma
        tasks_from: kernel
"""


def test_a_role_fetches_a_kernel_source_url_and_builds_the_local_copy(tmp_path, guest_kernel, linux_source_sha256):
    """kurma's kernel stage with kurma_kernel_source an http URL on
    127.0.0.1: input_file fetches it, verified, into
    kurma_cache_dir/kernel-sources/<sha256>/, and kernel_build (which
    refuses URLs) builds from that local file. The shared guest kernel's
    inputs and build dir: its source and object trees are reused (nothing is
    unpacked). A second run, with the same tarball as a file:// URL, fetches
    nothing (the cache is keyed on the sha256) and builds nothing."""
    guest = guest_kernel_args(linux_source_sha256)
    served = tmp_path / "served"
    served.mkdir()
    os.symlink(LINUX_SOURCE, served / "linux-source-6.1.tar.xz")
    playbook = tmp_path / "kernel_stage.yml"
    playbook.write_text(KERNEL_STAGE)
    cached = tmp_path / "cache" / "kernel-sources" / linux_source_sha256 / "linux-source-6.1.tar.xz"
    v = {"kurma_kernel_source_sha256": linux_source_sha256, "kurma_cache_dir": str(tmp_path / "cache"),
         "kurma_work_dir": str(tmp_path / "work"), "kurma_kernel_config": guest["config"],
         "kurma_kernel_config_fragments": guest["config_fragments"], "kurma_kernel_localversion": guest["localversion"],
         "kurma_kernel_build_dir": guest["build_dir"], "kurma_kernel_dest_dir": str(tmp_path / "kernel")}
    with local_archive.serve(served) as url:
        rc, _stats, results = run_playbook(str(playbook), dict(v, kurma_kernel_source=url + "/linux-source-6.1.tar.xz"),
                                           timeout=3000)
    assert rc == 0, failed_msgs(results)
    fetch = next(r for r in results if r["_task"] == "Fetch the kernel source")
    assert fetch["changed"] is True and fetch["path"] == str(cached), fetch
    assert sha256_file(str(cached)) == linux_source_sha256
    build = next(r for r in results if r["_task"] == "Build the kernel")
    assert build["changed"] is True and build["source_verified"] is True, build
    assert build["source_sha256"] == linux_source_sha256 and build["release"] == guest_kernel["release"]
    assert not [c for c in build["commands"] if " -xf " in c], "the guest kernel's source tree was not reused"
    assert sha256_file(str(tmp_path / "kernel" / "bzImage")) == build["bzimage"]["sha256"]

    rc, _stats, results = run_playbook(str(playbook), dict(v, kurma_kernel_source="file://" + LINUX_SOURCE))
    assert rc == 0, failed_msgs(results)
    assert next(r for r in results if r["_task"] == "Fetch the kernel source")["changed"] is False
    again = next(r for r in results if r["_task"] == "Build the kernel")
    assert again["changed"] is False and again["bzimage"]["sha256"] == build["bzimage"]["sha256"]


@pytest.mark.parametrize("playbook,var", [
    ("build-stage1-kvm.yml", "rkt_stage1_kernel_source"),
    ("build-kurma.yml", "kurma_kernel_source"),
    ("build-guest-image.yml", "guest_image_kernel_source"),
])
def test_a_kernel_source_url_without_its_sha256_is_refused_in_the_plan(tmp_path, playbook, var):
    """Refused before any stage, in the role variable's own name; nothing is
    fetched or written."""
    url = "http://127.0.0.1:9/linux-6.1.119.tar.xz"
    v = {"osimage_hosts": "localhost", "osimage_work_dir": str(tmp_path / "work"),
         "osimage_output_dir": str(tmp_path / "output"), "osimage_cache_dir": str(tmp_path / "cache"), var: url}
    rc, _stats, results = run_playbook(os.path.join(REPO, "playbooks", playbook), v)
    msgs = failed_msgs(results)
    want = "%s=%s is a URL: give its published sha256" % (var, url)
    assert rc != 0 and any(want in m and var + "_sha256" in m for m in msgs), msgs
    for d in ("work", "output", "cache"):
        assert not (tmp_path / d).exists() or os.listdir(tmp_path / d) == [], d

"""The stemcell pipeline end to end on this machine: the default stemcell
(openstack/kvm raw, Debian bookworm) from nothing, its tarball, disk and
boot, a no-op re-run, bad input, and a build killed during image_create."""
import os
import signal
import subprocess
import time

import pytest

from tests import stemcell_spec
from tests.conftest import (
    BIN,
    REPO,
    ansible_env,
    failed_msgs,
    loops_under,
    mounts_under,
    needs_root,
    run_module,
    run_playbook,
)

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]

PLAYBOOK = os.path.join(REPO, "playbooks", "build-stemcell.yml")
STEMCELL_ONLY = os.path.join(REPO, "tests", "integration", "files", "stemcell_only.yml")
NAME = "bosh-stemcell-0000-openstack-kvm-debian-bookworm-go_agent-raw.tgz"


@pytest.fixture(scope="session")
def stemcell(tmp_path_factory):
    base = tmp_path_factory.mktemp("stemcell")
    dirs = {"osimage_work_dir": str(base / "work"), "osimage_output_dir": str(base / "output")}
    rc, stats, results = run_playbook(PLAYBOOK, dirs)
    assert rc == 0, failed_msgs(results)
    return dirs, results


@pytest.fixture(scope="session")
def unpacked(stemcell, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("stemcell-check"))
    path = os.path.join(stemcell[0]["osimage_output_dir"], NAME)
    mf = stemcell_spec.check_tarball(path, work)
    return work, mf


def test_the_default_stemcell_is_written(stemcell):
    dirs, results = stemcell
    out = sorted(os.listdir(dirs["osimage_output_dir"]))
    assert NAME in out and NAME + ".inputs.json" in out and NAME + ".pipeline.json" in out
    table = next(r for r in results if r["_task"] == "Show the stage timing table"
                 and r["msg"][0].startswith("Stemcell"))["msg"]
    assert table[0] == "Stemcell %s: built" % NAME
    stages = [row.split()[0] for row in table[1:19]]
    assert stages[:3] == ["untar_base_os_image", "system_kernel", "system_kernel_modules"]
    assert stages[-3:] == ["bosh_package_list", "verify_boot", "stemcell"]
    assert any("no bosh-agent was given" in row for row in table)
    assert any(row.startswith("boot test: ") and "login:" in row for row in table)
    assert mounts_under(dirs["osimage_work_dir"]) == [] and loops_under(dirs["osimage_work_dir"]) == []


def test_tarball_members_and_manifest(unpacked):
    _work, mf = unpacked
    assert mf["name"] == "bosh-openstack-kvm-debian-bookworm-go_agent"
    assert mf["operating_system"] == "debian-bookworm"
    assert mf["cloud_properties.infrastructure"] == "openstack"
    assert mf["cloud_properties.hypervisor"] == "kvm"
    assert mf["cloud_properties.disk_format"] == "raw"
    assert mf["cloud_properties.disk"] == "5120"


def test_disk_partitions_fstab_grub_and_hardening(unpacked):
    work, mf = unpacked
    stemcell_spec.check_disk(work, mf)


def test_the_packaged_disk_boots_to_a_login_prompt(unpacked):
    work, _mf = unpacked
    img = os.path.join(work, "root.img")
    if not os.path.exists(img):
        stemcell_spec.check_disk(work, _mf)
    res = run_module("boot_test", {"image": img, "expect": "login:", "timeout": 420,
                                   "console_log": os.path.join(work, "console.log")})
    assert res.get("failed") is not True, res.get("msg")
    assert "login:" in res["matched"] and res["seconds"] > 0
    assert res["changed"] is False


def test_a_second_run_changes_nothing(stemcell):
    dirs = stemcell[0]
    rc, stats, results = run_playbook(PLAYBOOK, dirs)
    assert rc == 0, failed_msgs(results)
    assert stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]


def _os_image(stemcell):
    return os.path.join(stemcell[0]["osimage_output_dir"], "debian-bookworm-os-image.tgz")


@pytest.mark.parametrize("extra,expect", [
    ({"stemcell_infrastructure": "openstack", "stemcell_hypervisor": "xen"},
     "BOSH has no openstack/xen stemcell in disk format raw"),
    ({"stemcell_infrastructure": "aws", "stemcell_hypervisor": "xen", "stemcell_disk_format": "qcow2"},
     "BOSH has no aws/xen stemcell in disk format qcow2"),
    # argument_specs rejects it before the role runs.
    ({"stemcell_infrastructure": "vsphere"},
     "value of stemcell_infrastructure must be one of: openstack, aws, warden, got: vsphere"),
    ({"stemcell_os_image": "/nonexistent/debian-bookworm-os-image.tgz"},
     "stemcell_os_image=/nonexistent/debian-bookworm-os-image.tgz: no OS image there"),
    ({"stemcell_resume_from": "image_nothing"}, "valid stage names: untar_base_os_image"),
])
def test_bad_input_fails_before_any_work(stemcell, tmp_path, extra, expect):
    out = str(tmp_path / "output")
    vars_ = {"osimage_work_dir": str(tmp_path / "work"), "osimage_output_dir": out,
             "stemcell_os_image": _os_image(stemcell)}
    vars_.update(extra)
    rc, stats, results = run_playbook(STEMCELL_ONLY, vars_)
    assert rc != 0
    assert any(expect in m for m in failed_msgs(results)), failed_msgs(results)
    assert not os.path.exists(out) or os.listdir(out) == []


def test_agent_with_a_wrong_sha256(stemcell, tmp_path):
    agent = tmp_path / "bosh-agent"
    agent.write_bytes(b"#!/bin/sh\necho agent\n")
    out = str(tmp_path / "output")
    rc, stats, results = run_playbook(STEMCELL_ONLY, {
        "osimage_work_dir": stemcell[0]["osimage_work_dir"], "osimage_output_dir": out,
        "stemcell_os_image": _os_image(stemcell), "stemcell_agent_src": str(agent),
        "stemcell_agent_sha256": "0" * 64, "stemcell_resume_from": "bosh_go_agent"})
    assert rc != 0
    assert any("refusing to use it" in m for m in failed_msgs(results)), failed_msgs(results)
    assert os.listdir(out) == []


def test_a_disk_smaller_than_the_root(stemcell, tmp_path):
    dirs = stemcell[0]
    out = str(tmp_path / "output")
    rc, stats, results = run_playbook(STEMCELL_ONLY, {
        "osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": out,
        "stemcell_os_image": _os_image(stemcell), "stemcell_disk_size_mb": 600,
        "stemcell_resume_from": "image_create"})
    assert rc != 0
    assert any("size=600M is too small" in m for m in failed_msgs(results)), failed_msgs(results)
    assert os.listdir(out) == []
    build = os.path.join(dirs["osimage_work_dir"], "stemcell")
    assert [n for n in os.listdir(os.path.join(build, os.listdir(build)[0])) if n.startswith(".root.img")] == []


def test_sigkill_during_image_create_then_the_next_run_completes(stemcell, tmp_path):
    dirs = stemcell[0]
    out = str(tmp_path / "output")
    vars_ = ('{"osimage_work_dir": "%s", "osimage_output_dir": "%s", "stemcell_os_image": "%s", '
             '"stemcell_resume_from": "image_create", "stemcell_boot_test": false, "stemcell_version": "9999"}'
             % (dirs["osimage_work_dir"], out, _os_image(stemcell)))
    proc = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), STEMCELL_ONLY, "-e", vars_], cwd=REPO,
                            env=ansible_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    build = dirs["osimage_work_dir"]
    for _ in range(1200):
        if loops_under(build) and mounts_under(build):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("image_create never attached its loop device and mounted it")
    # SIGKILL everything of that build: ansible-playbook, its workers, the module.
    kids = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    tree, todo = {proc.pid}, [proc.pid]
    pairs = [tuple(map(int, line.split())) for line in kids.splitlines()]
    while todo:
        parent = todo.pop()
        for pid, ppid in pairs:
            if ppid == parent and pid not in tree:
                tree.add(pid)
                todo.append(pid)
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)
    time.sleep(1)
    assert loops_under(build), "the kill should have left the loop device behind"
    rc, stats, results = run_playbook(STEMCELL_ONLY, {
        "osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": out,
        "stemcell_os_image": _os_image(stemcell), "stemcell_resume_from": "image_create",
        "stemcell_boot_test": False, "stemcell_version": "9999"})
    assert rc == 0, failed_msgs(results)
    released = next(r for r in results if r["_task"] == "Release mounts and loop devices left by an earlier build")
    assert released["changed"] is True and released["detached"]
    assert loops_under(build) == [] and mounts_under(build) == []
    assert os.path.exists(os.path.join(out, NAME.replace("0000", "9999")))
    disk_dir = os.path.join(build, "stemcell", "openstack-kvm-debian-bookworm")
    assert [n for n in os.listdir(disk_dir) if n.startswith(".")] == [], "half-written files left behind"


def test_the_stemcell_is_private_and_its_stamp_keys_the_grub_password(stemcell):
    # The stemcell's disk holds the image's /etc/shadow; its stamp holds the
    # grub password only keyed with the build host's stamp key.
    import hashlib
    import json
    dirs, _results = stemcell
    out = dirs["osimage_output_dir"]
    assert oct(os.stat(os.path.join(out, NAME)).st_mode & 0o777) == "0o600"
    stamp = json.load(open(os.path.join(out, NAME + ".pipeline.json")))
    assert "grub_password_sha256" not in stamp["inputs"] and len(stamp["inputs"]["grub_password_hmac"]) == 64
    password = open(os.path.expanduser("~/.osimage/stemcell-grub-password")).read().strip().encode()
    for name in os.listdir(out):
        if name.endswith(".json"):
            data = open(os.path.join(out, name), "rb").read()
            assert password not in data and hashlib.sha256(password).hexdigest().encode() not in data, name

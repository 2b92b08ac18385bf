"""The stemcell pipeline end to end on this machine: the default stemcell
(openstack/kvm raw, Debian bookworm) from nothing on the pipeline runner,
its report, tarball, disk and boot, a no-op re-run, a disk too small for
the root (bad input in the plan is test_bad_input.py's table), a build
killed during image_create, and a qcow2 stemcell resumed at its last
stage."""
import hashlib
import json
import os
import re
import subprocess
import tarfile
import time

import pytest

from ansible_collections.osimage.builder.plugins.module_utils._digest import sha256_file
from tests import faults, stemcell_spec
from tests.conftest import (
    BIN,
    REPO,
    ansible_env,
    failed_msgs,
    loops_under,
    mounts_under,
    needs_root,
    run_playbook,
)

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]

PLAYBOOK = os.path.join(REPO, "playbooks", "build-stemcell.yml")
STEMCELL_ONLY = os.path.join(REPO, "tests", "integration", "files", "stemcell_only.yml")
NAME = "bosh-stemcell-0000-openstack-kvm-debian-bookworm-go_agent-raw.tgz"


def stage_table(results):
    return next(r for r in results
                if r["_task"] == "Show the stage table" and r["msg"][0].startswith("Stemcell"))["msg"]


def boot_line(results):
    return next(r for r in results if r["_task"] == "Show the boot test")["msg"]


@pytest.fixture(scope="session")
def stemcell(os_image_build):
    """The default stemcell, built by build-stemcell.yml in the directories
    of the session's OS image build: the playbook's os_image part finds its
    OS image up to date, and every stemcell stage runs."""
    dirs = dict(os_image_build[0])
    rc, stats, results = run_playbook(PLAYBOOK, dirs)
    assert rc == 0, failed_msgs(results)
    assert any(r["_task"] == "Show the stage table" and r["msg"][0].startswith("OS image ")
               and "up to date" in r["msg"][0] for r in results)
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
    # One stamp: stemcell_package's record and the pipeline's, side by side.
    assert {NAME, NAME + ".stamp.json", NAME + ".report.json", NAME + ".report.md"} <= set(out)
    assert not [n for n in out if n.endswith((".inputs.json", ".pipeline.json"))], out
    records = json.load(open(os.path.join(dirs["osimage_output_dir"], NAME + ".stamp.json")))["records"]
    assert sorted(records) == ["pipeline:stemcell", "stemcell_package"]
    for record in records.values():
        assert record["outputs"][os.path.join(dirs["osimage_output_dir"], NAME)] == \
            sha256_file(os.path.join(dirs["osimage_output_dir"], NAME))
    table = stage_table(results)
    assert table[0].startswith("Stemcell %s: built (" % NAME), table[0]
    stages = [row.split()[0] for row in table[1:19]]
    assert stages[:3] == ["untar_base_os_image", "system_kernel", "system_kernel_modules"]
    assert stages[-3:] == ["bosh_package_list", "verify_boot", "stemcell"]
    assert any("no bosh-agent was given" in row for row in table)
    line = boot_line(results)  # "boot test: bosh-stemcell login: after 49.6 s under kvm (console log ...)"
    assert line.startswith("boot test: ") and "login: after " in line, line
    assert mounts_under(dirs["osimage_work_dir"]) == [] and loops_under(dirs["osimage_work_dir"]) == []


def test_the_disk_stage_streams_to_its_progress_log(stemcell):
    dirs, _results = stemcell
    log = open(os.path.join(dirs["osimage_work_dir"], "stemcell", "openstack-kvm-debian-bookworm", "logs",
                            "image_create.log")).read()
    assert "/mkfs.ext4 " in log and "/grub-install " in log and "exit 0" in log, log[-2000:]


def test_the_build_report(stemcell):
    dirs = stemcell[0]
    out = dirs["osimage_output_dir"]
    report = json.load(open(os.path.join(out, NAME + ".report.json")))
    assert report["pipeline"] == "stemcell" and report["title"] == "Stemcell"
    names = [s["stage"] for s in report["stages"]]
    assert len(names) == 18 and names[0] == "untar_base_os_image" and names[-1] == "stemcell"
    assert {s["status"] for s in report["stages"]} == {"built"}
    art = report["artifacts"][0]
    assert art["path"] == os.path.join(out, NAME)
    assert art["sha256"] == hashlib.sha256(open(art["path"], "rb").read()).hexdigest()
    assert "login: after " in report["details"]["boot_test"] and " s under " in report["details"]["boot_test"]
    assert report["inputs"]["disk_format"] == "raw" and "grub_password_hmac" not in report["inputs"]
    assert set(report["versions"]) >= {"stemcell role", "modules", "ansible-core", "osimage.builder"}
    assert any("no bosh-agent was given" in n for n in report["notes"])


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


def test_the_packaged_disk_is_the_disk_that_booted(stemcell, unpacked):
    # verify_boot booted the build's disk to its login prompt (the build's
    # boot line, checked above); the stemcell packs those very bytes. (The
    # molecule scenario boots the disk unpacked from the tarball itself.)
    dirs, _results = stemcell
    work, _mf = unpacked
    booted = os.path.join(dirs["osimage_work_dir"], "stemcell", "openstack-kvm-debian-bookworm", "root.img")
    packed = os.path.join(work, "root.img")
    if not os.path.exists(packed):
        stemcell_spec.check_disk(work, _mf)
    assert sha256_file(booted) == sha256_file(packed)


def test_a_second_run_changes_nothing(stemcell):
    dirs = stemcell[0]
    rc, stats, results = run_playbook(PLAYBOOK, dirs)
    assert rc == 0, failed_msgs(results)
    assert stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]


def _os_image(stemcell):
    return os.path.join(stemcell[0]["osimage_output_dir"], "debian-bookworm-os-image.tgz")


# Bad input refused in the plan (the infrastructure table, the OS image, the
# agent, the disk size, ...) is tests/integration/test_bad_input.py's table.


def test_a_disk_smaller_than_the_root(stemcell, tmp_path):
    # Two layers, both in the role's terms: the plan refuses a disk that
    # cannot even hold the OS image (before any stage), and image_create one
    # that cannot hold the stemcell's root with its filesystem overhead.
    dirs = stemcell[0]
    out = str(tmp_path / "output")
    base = {"osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": out,
            "stemcell_os_image": _os_image(stemcell), "stemcell_resume_from": "image_create"}
    rc, stats, results = run_playbook(STEMCELL_ONLY, dict(base, stemcell_disk_size_mb=600))
    assert rc != 0
    plan = re.compile(r"stemcell_disk_size_mb=600 is too small: the OS image alone unpacks to \d+ MiB; "
                      r"at least (\d+) \(the default is 5120\)\.$")
    found = [plan.match(m) for m in failed_msgs(results) if plan.match(m)]
    assert found, failed_msgs(results)
    assert not any(r["_task"] == "Create the stemcell disk" for r in results)  # no stage ran
    floor = int(found[0].group(1))
    rc, stats, results = run_playbook(STEMCELL_ONLY, dict(base, stemcell_disk_size_mb=floor))
    assert rc != 0
    stage = re.compile(r"stemcell_disk_size_mb=%d is too small for the stemcell.s root filesystem "
                       r"\(\d+ MiB with its overhead\); at least (\d+)\.$" % floor)
    found = [stage.match(m) for m in failed_msgs(results) if stage.match(m)]
    assert found and int(found[0].group(1)) > floor, failed_msgs(results)
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
    for _attempt in range(1200):
        if loops_under(build) and mounts_under(build):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("image_create never attached its loop device and mounted it")
    # SIGKILL everything of that build: ansible-playbook, its workers, the module.
    faults.kill_tree(proc.pid)
    proc.wait(timeout=60)
    time.sleep(1)
    assert loops_under(build), "the kill should have left the loop device behind"
    rc, stats, results = run_playbook(STEMCELL_ONLY, {
        "osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": out,
        "stemcell_os_image": _os_image(stemcell), "stemcell_resume_from": "image_create",
        "stemcell_boot_test": False, "stemcell_version": "9999"})
    assert rc == 0, failed_msgs(results)
    released = next(r for r in results
                    if r["_task"] == "Release mounts left under the work directory by an earlier build")
    assert released["changed"] is True and released["detached"]
    assert loops_under(build) == [] and mounts_under(build) == []
    assert os.path.exists(os.path.join(out, NAME.replace("0000", "9999")))
    disk_dir = os.path.join(build, "stemcell", "openstack-kvm-debian-bookworm")
    assert [n for n in os.listdir(disk_dir) if n.startswith(".") and n != ".osimage.lock"] == [], \
        "half-written files left behind"


def test_the_stemcell_is_private_and_its_stamp_keys_the_grub_password(stemcell):
    # The stemcell's disk holds the image's /etc/shadow; its stamp holds the
    # grub password only keyed with the build host's stamp key.
    import hashlib
    import json
    dirs, _results = stemcell
    out = dirs["osimage_output_dir"]
    assert oct(os.stat(os.path.join(out, NAME)).st_mode & 0o777) == "0o600"
    stamp = json.load(open(os.path.join(out, NAME + ".stamp.json")))["records"]["pipeline:stemcell"]
    assert "grub_password_sha256" not in stamp["inputs"] and len(stamp["inputs"]["grub_password_hmac"]) == 64
    password = open(os.path.expanduser("~/.osimage/stemcell-grub-password")).read().strip().encode()
    for name in os.listdir(out):
        if name.endswith(".json"):
            data = open(os.path.join(out, name), "rb").read()
            assert password not in data and hashlib.sha256(password).hexdigest().encode() not in data, name


def test_a_qcow2_stemcell_resumed_at_its_last_stage(stemcell, tmp_path):
    # The stemcell stage packs the qcow2 copy by its path (__stemcell_qcow2),
    # not by image_create's register, and reports the boot result verify_boot
    # left: resuming there gives a stemcell. The session's work directory has
    # the raw disk only: image_create runs once with qcow2 (no boot test).
    dirs = stemcell[0]
    out = str(tmp_path / "output")
    base = {"osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": out,
            "stemcell_os_image": _os_image(stemcell), "stemcell_disk_format": "qcow2", "stemcell_boot_test": False}
    rc, stats, results = run_playbook(STEMCELL_ONLY, dict(base, stemcell_resume_from="image_create"))
    assert rc == 0, failed_msgs(results)
    name = NAME.replace("-raw.tgz", ".tgz")  # qcow2 is openstack's default format: no suffix
    first = hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest()
    os.unlink(os.path.join(out, name))
    rc, stats, results = run_playbook(STEMCELL_ONLY, dict(base, stemcell_resume_from="stemcell"))
    assert rc == 0, failed_msgs(results)
    assert stage_table(results)[0] == "Stemcell %s: built (resumed at stemcell)" % name
    report = json.load(open(os.path.join(out, name + ".report.json")))
    assert [s["status"] for s in report["stages"]] == ["resumed"] * 17 + ["built"]
    assert report["details"]["boot_test"] == "not run (stemcell_boot_test=false)"
    assert boot_line(results) == "boot test: not run (stemcell_boot_test=false)"
    data = open(os.path.join(out, name), "rb").read()
    assert report["artifacts"][0]["sha256"] == hashlib.sha256(data).hexdigest() == first
    with tarfile.open(os.path.join(out, name)) as tar:
        mf = tar.extractfile("stemcell.MF").read().decode()
    assert 'disk_format: "qcow2"' in mf, mf
    assert loops_under(dirs["osimage_work_dir"]) == [] and mounts_under(dirs["osimage_work_dir"]) == []


STAGES = ["untar_base_os_image", "system_kernel", "system_kernel_modules", "bosh_go_agent", "logrotate_config",
          "dev_tools_config", "static_libraries_config", "system_network", "system_parameters", "bosh_clean",
          "bosh_harden", "bosh_agent_settings", "bosh_clean_ssh", "image_create", "image_install_grub",
          "bosh_package_list", "verify_boot", "stemcell"]


@pytest.mark.parametrize("stage", faults.stages(None, STAGES))
def test_a_build_killed_in_a_stage_is_finished_by_the_next_run(stemcell, tmp_path, stage):
    """The full sweep's stemcell part (the suite's sample is the image_create
    kill above): SIGKILL a second into each stage, then the re-run resumed
    there completes, leaving nothing mounted, attached or half-written."""
    dirs = stemcell[0]
    extra = {"osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": str(tmp_path / "output"),
             "stemcell_os_image": _os_image(stemcell), "stemcell_boot_test": False, "stemcell_version": "9999"}
    faults.survive_kill(STEMCELL_ONLY, extra, "stemcell", stage, str(tmp_path / "fault"), delay=1.0,
                        expect=[NAME.replace("-0000-", "-9999-")])

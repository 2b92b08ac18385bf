"""The rkt stage1-kvm pipeline end to end with a small kernel config: the
ACI's layout and manifest, validation, determinism and a no-op re-run, the
pipeline runner's build report, resume and hooks, and the image's kernel
booting."""
import hashlib
import json
import os
import re
import tarfile

import pytest
import yaml

from tests import faults
from tests.conftest import REPO, failed_msgs, needs_root, run_module, run_playbook
from tests.guests import MARKER, NODES, busybox_init_root

pytestmark = [needs_root, pytest.mark.slow]

PLAYBOOK = os.path.join(REPO, "playbooks", "build-stage1-kvm.yml")
SMALL = os.path.join(REPO, "tests", "integration", "files", "stage1-small-config")
ACI = "stage1-kvm-1.30.0-linux-6.1.aci"
STAGES = ["config", "kernel", "rootfs", "aci"]


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


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def report_of(base):
    with open(base / "output" / (ACI + ".report.json")) as f:
        return json.load(f)


def pipeline_result(results):
    facts = [r["ansible_facts"]["pipeline_result"] for r in results
             if "pipeline_result" in r.get("ansible_facts", {})]
    assert facts, "the runner set no pipeline_result"
    return facts[-1]


def ran(results, task):
    return [r for r in results if r["_task"] == task and not r.get("skipped")]


def test_the_build_report(stage1):
    base, results = stage1
    aci = base / "output" / ACI
    report = report_of(base)
    assert report["pipeline"] == "rkt_stage1" and report["title"] == "Stage1-kvm"
    assert [s["stage"] for s in report["stages"]] == STAGES
    for stage in report["stages"]:
        assert stage["status"] == "built" and isinstance(stage["seconds"], (int, float)) and stage["seconds"] >= 0
    assert report["stages"][1]["seconds"] > 0  # the kernel stage ran kernel_build
    art = report["artifacts"][0]
    assert art == {"path": str(aci), "size": aci.stat().st_size, "sha256": sha256(aci)}
    assert report["inputs"]["kernel_version"] == "6.1" and report["inputs"]["upstream_version"] == "1.30.0"
    assert re.fullmatch(r"[0-9a-f]{64}", report["inputs"]["config_sha256"])
    assert report["details"]["image_id"].startswith("sha512-")
    assert report["details"]["kernel_release"].endswith("-osimage-v1")
    assert set(report["build_host"]) == {"hostname", "kernel", "distribution"}
    assert report["build_host"]["kernel"] == os.uname().release
    with open(os.path.join(REPO, "galaxy.yml")) as f:
        assert report["versions"]["osimage.builder"] == str(yaml.safe_load(f)["version"])
    assert re.match(r"^2\.\d+", report["versions"]["ansible-core"])
    for key in ("started", "finished"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report[key]), report[key]
    assert report["started"] <= report["finished"]
    md = (base / "output" / (ACI + ".report.md")).read_text()
    assert md.startswith("# Stage1-kvm build report")
    assert "| kernel | built |" in md and sha256(aci) in md
    stamp = json.loads((base / "output" / (ACI + ".stamp.json")).read_text())["records"]["pipeline:rkt_stage1"]
    assert stamp["outputs"][str(aci)] == sha256(aci)
    assert set(stamp["versions"]) == {"rkt_stage1 role", "modules"}
    # The table at the end of the run.
    table = next(r for r in results if r["_task"] == "Show the stage table")["msg"]
    assert table[0].startswith("Stage1-kvm %s: built" % ACI)
    assert [line.split()[0] for line in table[1:5]] == STAGES


def test_a_second_run_changes_nothing(stage1):
    base, first = stage1
    before = (base / "output" / (ACI + ".report.json")).read_text()
    rc, stats, results = run_playbook(PLAYBOOK, vars_for(base))
    assert rc == 0, failed_msgs(results)
    assert stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]
    result = pipeline_result(results)
    assert result["built"] is False
    assert [(s["stage"], s["status"]) for s in result["stages"]] == [(s, "up-to-date") for s in STAGES]
    assert not ran(results, "Build the kernel") and not ran(results, "Pack the stage1 ACI")
    # The report of the build that made the ACI is left as it is, and its
    # details are handed on.
    assert (base / "output" / (ACI + ".report.json")).read_text() == before
    shown = next(r for r in results if r["_task"] == "Show the stage1 image")["msg"]
    assert shown[1] == "image id " + report_of(base)["details"]["image_id"]


def test_resume_at_a_middle_stage_makes_the_same_aci(stage1):
    base, _results = stage1
    aci = base / "output" / ACI
    digest = sha256(aci)
    rc, stats, results = run_playbook(PLAYBOOK, dict(vars_for(base), rkt_stage1_resume_from="rootfs"))
    assert rc == 0, failed_msgs(results)
    assert sha256(aci) == digest
    assert not ran(results, "Build the kernel") and ran(results, "Pack the stage1 ACI")
    report = report_of(base)
    assert [(s["stage"], s["status"]) for s in report["stages"]] == [
        ("config", "resumed"), ("kernel", "resumed"), ("rootfs", "built"), ("aci", "built")]
    assert report["artifacts"][0]["sha256"] == digest


def test_an_unknown_resume_stage_lists_the_valid_names(stage1):
    base, _results = stage1
    rc, stats, results = run_playbook(PLAYBOOK, dict(vars_for(base), rkt_stage1_resume_from="kernal"))
    assert rc != 0
    msg = " ".join(failed_msgs(results))
    assert "rkt_stage1_resume_from" in msg and all(name in msg for name in STAGES), msg


def test_resume_without_an_earlier_build_says_what_is_missing(tmp_path):
    if not os.path.exists("/usr/src/linux-source-6.1.tar.xz"):
        pytest.skip("linux-source-6.1 is not installed (./osimage setup installs it)")
    rc, stats, results = run_playbook(PLAYBOOK, dict(vars_for(tmp_path), rkt_stage1_resume_from="rootfs"))
    assert rc != 0
    msg = " ".join(failed_msgs(results))
    assert "rkt_stage1_resume_from=rootfs" in msg and "kernel.config of the stage config" in msg, msg
    assert "run the whole build first" in msg
    assert not (tmp_path / "output" / ACI).exists()


def test_a_pre_stage_hook_runs(stage1, tmp_path):
    base, _results = stage1
    aci = base / "output" / ACI
    digest = sha256(aci)
    marker = tmp_path / "hook-ran"
    hook = tmp_path / "before_aci.yml"
    hook.write_text("- name: Leave a marker\n  ansible.builtin.copy:\n    content: \"before aci\\n\"\n"
                    "    dest: %s\n    mode: \"0644\"\n" % marker)
    rc, stats, results = run_playbook(PLAYBOOK, dict(vars_for(base), rkt_stage1_pre_stage_hooks={"aci": str(hook)}))
    assert rc == 0, failed_msgs(results)
    assert marker.read_text() == "before aci\n"
    # A hook is an input (it may change the image); this one does not.
    assert sha256(aci) == digest
    assert report_of(base)["inputs"]["pre_stage_hooks"] == {"aci": str(hook)}


def test_a_failing_stage_names_the_stage_to_resume_at(stage1, tmp_path):
    base, _results = stage1
    aci = base / "output" / ACI
    digest = sha256(aci)
    hook = tmp_path / "refuse.yml"
    hook.write_text("- name: Refuse\n  ansible.builtin.fail:\n    msg: the hook refuses.\n")
    rc, stats, results = run_playbook(PLAYBOOK, dict(vars_for(base), rkt_stage1_resume_from="rootfs",
                                                     rkt_stage1_pre_stage_hooks={"rootfs": str(hook)}))
    assert rc != 0
    msg = failed_msgs(results)[-1]
    assert msg == ("Stage1-kvm stage rootfs failed: the hook refuses. Nothing was written to %s. Fix the cause, "
                   "then re-run; rkt_stage1_resume_from=rootfs picks up at that stage." % (base / "output")), msg
    assert sha256(aci) == digest


def test_the_image_kernel_boots(stage1, tmp_path):
    base, _results = stage1
    aci = base / "output" / "stage1-kvm-1.30.0-linux-6.1.aci"
    with tarfile.open(aci) as tar:
        kernel = tar.extractfile("rootfs/kernel_image").read()
    (tmp_path / "kernel").write_bytes(kernel)
    root = busybox_init_root(tmp_path / "root", halt="reboot")
    run_module("initramfs", {"src": root, "dest": str(tmp_path / "i.img"), "device_nodes": NODES})
    res = run_module("boot_test", {"kernel": str(tmp_path / "kernel"), "initrd": str(tmp_path / "i.img"),
                                   "append": "console=ttyS0", "expect": MARKER, "timeout": 120,
                                   "console_log": str(tmp_path / "console.log")})
    assert res.get("failed") is not True, res.get("msg")
    assert res["matched"] == MARKER and MARKER in (tmp_path / "console.log").read_text(errors="replace"), res


def test_no_config_for_the_kernel_version(tmp_path):
    rc, stats, results = run_playbook(PLAYBOOK, dict(vars_for(tmp_path), rkt_stage1_kernel_version="5.99"))
    assert rc != 0
    assert any("neither linux-5.99.config nor linux-5.99.config" in m for m in failed_msgs(results))


# Versions that cannot be names are tests/integration/test_bad_input.py's table.


@pytest.mark.parametrize("stage", faults.stages("aci", ["config", "kernel", "rootfs", "aci"]))
def test_a_build_killed_in_a_stage_is_finished_by_the_next_run(stage1, tmp_path, stage):
    """SIGKILL to the whole build a second into a stage (`aci` in the suite's
    sample; benchmarks/fault_sweep.sh kills every stage): the next run
    completes, leaving nothing mounted, attached or half-written."""
    base, _results = stage1
    faults.survive_kill(PLAYBOOK, vars_for(base), "rkt_stage1", stage, str(tmp_path), delay=1.0,
                        expect=["stage1-kvm-1.30.0-linux-6.1.aci"])

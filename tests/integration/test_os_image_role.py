"""The os_image role end to end on this machine: a real build on the
pipeline runner and its report, a no-op re-run, a build resumed at base_apt
that gives the same OS image, the hardening of the result, bad input, a
failing and an interrupted stage that leave no mounts."""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from tests import faults, os_image_spec
from tests.conftest import (
    BIN,
    REPO,
    _ubuntu_archive_answers,
    ansible_env,
    failed_msgs,
    mounts_under,
    needs_root,
    run_module,
    run_playbook,
)

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]

PLAYBOOK = os.path.join(REPO, "playbooks", "build-os-image.yml")
FAIL_HOOK = os.path.join(REPO, "tests", "integration", "files", "fail_inside_chroot.yml")
SLEEP_HOOK = os.path.join(REPO, "tests", "integration", "files", "sleep_inside_chroot.yml")
TGZ = "debian-bookworm-os-image.tgz"
PACKAGES = "debian-bookworm-os-image-packages.txt"
STAGES = [
    "base_debootstrap", "base_ubuntu_firstboot", "base_apt", "base_ubuntu_build_essential",
    "base_ubuntu_packages", "base_file_permission", "base_ssh", "bosh_sysstat", "bosh_environment",
    "bosh_sysctl", "bosh_limits", "bosh_users", "bosh_monit", "bosh_ntp", "bosh_sudoers", "bosh_systemd",
    "password_policies", "restrict_su_command", "tty_config", "rsyslog_config", "delay_monit_start",
    "system_grub", "vim_tiny", "cron_config", "escape_ctrl_alt_del", "bosh_audit_ubuntu",
    "bosh_log_audit_start", "clean_machine_id", "os_image_tarball"]


def stage_table(results):
    return next(r for r in results if r["_task"] == "Show the stage table")["msg"]


@pytest.fixture(scope="session")
def build(os_image_build):
    """The session's OS image build (tests/integration/conftest.py)."""
    return os_image_build


@pytest.fixture(scope="session")
def unpacked(build, tmp_path_factory):
    dirs = build[0]
    root = str(tmp_path_factory.mktemp("unpacked") / "root")
    os.makedirs(root)
    subprocess.run(["tar", "-xzf", os.path.join(dirs["osimage_output_dir"], "debian-bookworm-os-image.tgz"),
                    "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root], check=True)
    return root


def test_the_build_writes_the_os_image_and_its_package_list(build):
    dirs, stats, results = build
    out = dirs["osimage_output_dir"]
    # The stamp (the pipeline's record) and the report beside the tarball.
    assert sorted(os.listdir(out)) == [PACKAGES, TGZ, TGZ + ".report.json", TGZ + ".report.md",
                                       TGZ + ".stamp.json"]
    packages = open(os.path.join(out, PACKAGES)).read()
    assert "ii  openssh-server " in packages and "ii  rsyslog " in packages
    table = stage_table(results)
    assert table[0].startswith("OS image %s: built (" % TGZ), table[0]
    assert [row.split()[0] for row in table[1:1 + len(STAGES)]] == STAGES
    assert mounts_under(dirs["osimage_work_dir"]) == []


def test_the_build_report(build):
    dirs = build[0]
    out = dirs["osimage_output_dir"]
    report = json.load(open(os.path.join(out, TGZ + ".report.json")))
    assert report["pipeline"] == "os_image" and report["title"] == "OS image"
    assert [s["stage"] for s in report["stages"]] == STAGES
    assert {s["status"] for s in report["stages"]} == {"built"}
    assert [a["path"] for a in report["artifacts"]] == [os.path.join(out, TGZ), os.path.join(out, PACKAGES)]
    for art in report["artifacts"]:
        data = open(art["path"], "rb").read()
        assert art["sha256"] == hashlib.sha256(data).hexdigest() and art["size"] == len(data), art["path"]
    assert report["inputs"]["suite"] == "bookworm" and "users_password_hmac" not in report["inputs"]
    assert set(report["versions"]) >= {"os_image role", "modules", "ansible-core", "osimage.builder"}
    stamp = json.load(open(os.path.join(out, TGZ + ".stamp.json")))
    assert stamp["schema"] == 1 and list(stamp["records"]) == ["pipeline:os_image"]
    stamp = stamp["records"]["pipeline:os_image"]
    assert stamp["outputs"][os.path.join(out, TGZ)] == report["artifacts"][0]["sha256"]
    assert stamp["versions"]["modules"] == report["versions"]["modules"]


def test_long_stages_stream_to_their_progress_log(build):
    # The runner points the long steps' modules at <work dir>/logs/<stage>.log.
    logs = os.path.join(build[0]["osimage_work_dir"], "os_image", "debian-bookworm-amd64", "logs")
    packages = open(os.path.join(logs, "base_ubuntu_packages.log")).read()
    assert "apt-get" in packages and "Setting up " in packages, packages[-2000:]


def test_a_second_run_changes_nothing(build):
    dirs = build[0]
    before = open(os.path.join(dirs["osimage_output_dir"], TGZ + ".stamp.json")).read()
    rc, stats, results = run_playbook(PLAYBOOK, dirs)
    assert rc == 0, failed_msgs(results)
    assert stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]
    assert stage_table(results)[0] == "OS image %s: up to date, nothing to do" % TGZ
    assert open(os.path.join(dirs["osimage_output_dir"], TGZ + ".stamp.json")).read() == before


def _members(tgz):
    """name -> (mode, size, content of the apt sources) of an OS image's
    members, logs and caches aside (they differ from build to build)."""
    import tarfile
    out = {}
    with tarfile.open(tgz) as tar:
        for m in tar:
            name = m.name.lstrip("./")
            if name.startswith(("var/log/", "var/cache/", "var/lib/apt/lists/")):
                continue
            content = (tar.extractfile(m).read() if m.isfile() and name.startswith("etc/apt/sources.list.d/")
                       else None)
            # shadow's and passwd's backups (shadow-, ...) hold the state before
            # the last write: a resumed build writes them over a root that went
            # through bosh_users already. Their names and modes are compared.
            size = None if name in ("etc/shadow-", "etc/gshadow-", "etc/passwd-", "etc/group-") else m.size
            out[name] = (m.mode, size, m.type, m.linkname, content)
    return out


def test_a_build_resumed_at_base_apt_gives_the_same_os_image(build, tmp_path):
    # base_apt reads the mirror from the bootstrap's stamp, not from
    # base_debootstrap's register: the resumed build writes the same sources.
    dirs = build[0]
    out = str(tmp_path / "output")
    rc, stats, results = run_playbook(PLAYBOOK, {"osimage_work_dir": dirs["osimage_work_dir"],
                                                 "osimage_output_dir": out, "os_image_resume_from": "base_apt"})
    assert rc == 0, failed_msgs(results)
    table = stage_table(results)
    assert table[0] == "OS image %s: built (resumed at base_apt)" % TGZ
    report = json.load(open(os.path.join(out, TGZ + ".report.json")))
    assert [(s["stage"], s["status"]) for s in report["stages"][:3]] == [
        ("base_debootstrap", "resumed"), ("base_ubuntu_firstboot", "resumed"), ("base_apt", "built")]
    full, resumed = _members(os.path.join(dirs["osimage_output_dir"], TGZ)), _members(os.path.join(out, TGZ))
    assert any(n.startswith("etc/apt/sources.list.d/") and v[4] for n, v in full.items())
    assert sorted(set(full) ^ set(resumed)) == []
    assert {n: v for n, v in resumed.items() if full[n] != v} == {}
    assert mounts_under(dirs["osimage_work_dir"]) == []


@pytest.mark.parametrize("check", os_image_spec.CHECKS, ids=lambda c: c.__name__)
def test_os_image_hardening(unpacked, check):
    check(unpacked)


@pytest.mark.parametrize("argv,expect", [
    (["rsyslogd", "-N", "1"], "version 8"),
    (["visudo", "-c"], "parsed OK"),
    (["sh", "-c", "mkdir -p /run/sshd && ssh-keygen -A >/dev/null && /usr/sbin/sshd -t && echo sshd-config-ok"],
     "sshd-config-ok"),
])
def test_configuration_is_accepted_by_the_programs_themselves(unpacked, argv, expect):
    res = run_module("chroot_command", {"root": unpacked, "argv": argv})
    assert res["rc"] == 0, res
    assert expect in res["stdout"] + res["stderr"]


# Bad input refused in the plan, and an unreachable mirror refused by the
# first stage, are tests/integration/test_bad_input.py's table. A package name
# that is well-formed but not in the archive is known only once apt looks
# (base_ubuntu_packages, after the bootstrap): it stays here.
def test_an_unknown_extra_package_fails_clearly_and_writes_no_output(tmp_path):
    out = str(tmp_path / "output")
    rc, stats, results = run_playbook(PLAYBOOK, {"os_image_extra_packages": ["no-such-package-osimage-builder"],
                                                 "osimage_output_dir": out, "osimage_work_dir": str(tmp_path / "work")})
    assert rc != 0
    assert any("no-such-package-osimage-builder" in m for m in failed_msgs(results)), failed_msgs(results)
    assert not os.path.exists(out) or os.listdir(out) == []
    assert mounts_under(str(tmp_path)) == []


def test_output_dir_that_is_not_writable(tmp_path, readonly_dir):
    rc, stats, results = run_playbook(PLAYBOOK, {"osimage_output_dir": readonly_dir,
                                                 "osimage_work_dir": str(tmp_path / "work")})
    assert rc != 0
    assert any("os_image: the output directory %s is not writable" % readonly_dir in m for m in failed_msgs(results))
    assert os.listdir(readonly_dir) == []


def test_a_failing_stage_leaves_no_mounts_and_says_how_to_resume(build, tmp_path):
    dirs = build[0]
    out = str(tmp_path / "output")
    rc, stats, results = run_playbook(PLAYBOOK, {
        "osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": out,
        "os_image_resume_from": "bosh_sysstat", "os_image_post_stage_hooks": {"bosh_sysstat": FAIL_HOOK}})
    assert rc != 0
    msgs = failed_msgs(results)
    assert any("OS image stage bosh_sysstat failed" in m and "os_image_resume_from=bosh_sysstat" in m
               for m in msgs), msgs
    assert mounts_under(dirs["osimage_work_dir"]) == []
    assert os.listdir(out) == []


def test_an_interrupted_build_leaves_no_mounts(build, tmp_path):
    dirs = build[0]
    argv = [os.path.join(BIN, "ansible-playbook"), PLAYBOOK, "-e", '{"osimage_work_dir": "%s", '
            '"osimage_output_dir": "%s", "os_image_resume_from": "bosh_sysstat", '
            '"os_image_post_stage_hooks": {"bosh_sysstat": "%s"}}' % (dirs["osimage_work_dir"], tmp_path, SLEEP_HOOK)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env=ansible_env(), start_new_session=True)
    chroot = os.path.join(dirs["osimage_work_dir"], "os_image", "debian-bookworm-amd64", "chroot")
    for _attempt in range(600):
        if len(mounts_under(chroot)) >= 4:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the sleeping stage never mounted its chroot")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    proc.wait(timeout=120)
    for _attempt in range(50):
        if not mounts_under(chroot):
            break
        time.sleep(0.2)
    assert mounts_under(chroot) == []
    assert not os.path.exists(os.path.join(chroot, "usr/sbin/policy-rc.d"))


@pytest.mark.parametrize("stage", faults.stages("os_image_tarball", STAGES))
def test_a_build_killed_in_a_stage_is_finished_by_the_next_run(build, tmp_path, stage):
    """SIGKILL to the whole build a second into os_image_tarball (the tarball
    half-written beside its final name; the suite's sample,
    benchmarks/fault_sweep.sh kills every stage): the next run, resumed
    there, completes, leaving nothing mounted or half-written."""
    dirs = build[0]
    extra = {"osimage_work_dir": dirs["osimage_work_dir"], "osimage_output_dir": str(tmp_path / "output")}
    faults.survive_kill(PLAYBOOK, extra, "os_image", stage, str(tmp_path / "fault"), delay=1.0,
                        expect=[TGZ, PACKAGES])


def test_the_local_inventory_playbook_is_what_the_readme_runs():
    # The README's main command must name a playbook and inventory that exist.
    readme = open(os.path.join(REPO, "README.md")).read()
    assert "ansible-playbook playbooks/build-stemcell.yml" in readme
    # ... and that inventory is the machine itself, over the local connection.
    with open(os.path.join(REPO, "inventories", "local", "hosts.yml")) as f:
        hosts = yaml.safe_load(f)["all"]["children"]["build_hosts"]["hosts"]
    assert list(hosts) == ["localhost"] and hosts["localhost"]["ansible_connection"] == "local", hosts


def test_ubuntu_jammy_os_image(tmp_path):
    reason = _ubuntu_archive_answers()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "output"
    rc, stats, results = run_playbook(PLAYBOOK, {"os_image_suite": "jammy", "osimage_output_dir": str(out),
                                                 "osimage_work_dir": str(tmp_path / "work")})
    assert rc == 0, failed_msgs(results)
    keyring = next(r for r in results if r["_task"] == "Take Ubuntu's archive keyring from its keyring package")
    assert keyring["fingerprints"] and keyring["artifact"]["sha256"]
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-xzf", str(out / "ubuntu-jammy-os-image.tgz"), "--numeric-owner", "-C", str(root)],
                   check=True)
    assert "jammy" in (root / "etc/os-release").read_text()
    assert os_image_spec.run_all(str(root)) == []
    assert mounts_under(str(tmp_path)) == []


def test_the_os_image_is_private_and_its_stamp_keys_the_password(build):
    # The tarball holds /etc/shadow; the stamp beside it travels with it and
    # holds the password only keyed with the build host's stamp key.
    dirs, _stats, results = build
    out = dirs["osimage_output_dir"]
    assert oct(os.stat(os.path.join(out, "debian-bookworm-os-image.tgz")).st_mode & 0o777) == "0o600"
    stamp = json.load(open(os.path.join(out, TGZ + ".stamp.json")))["records"]["pipeline:os_image"]
    assert "users_password_sha256" not in stamp["inputs"] and len(stamp["inputs"]["users_password_hmac"]) == 64
    note = "uses BOSH's well-known default password; set os_image_users_password from a vault"
    assert any(note in n for n in stamp["notes"])
    assert any(note in row for row in stage_table(results))
    report = json.load(open(os.path.join(out, TGZ + ".report.json")))
    assert any(note in n for n in report["notes"])
    for name in os.listdir(out):
        data = open(os.path.join(out, name), "rb").read()
        for algo in ("sha1", "sha256", "sha512"):
            assert hashlib.new(algo, b"c1oudc0w").hexdigest().encode() not in data, (name, algo)

"""The guest image pipeline (roles/guest_image) end to end: one build of
rootfs, container.img, initrd and kernel (the shared guest kernel's inputs, so
kernel_build reuses its objects), installed with a runtime configuration.toml;
many checks on it: the rootfs as osbuilder sets it up, osbuilder.yaml, the DAX
header byte for byte, boots under TCG as the runtime boots it (virtio-blk,
NVDIMM with the DAX header, initrd), the install and the config, a no-op
re-run; then the agent as init with erofs, xfs, and bad input."""
import hashlib
import json
import os
import struct
import subprocess
import time

import pytest
import tomllib
import yaml

from tests import faults
from tests.conftest import REPO, failed_msgs, needs_root, run_module, run_playbook
from tests.integration.conftest import CACHE, GUEST_KERNEL_FRAGMENT, LINUX_SOURCE

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]

PLAYBOOK = os.path.join(REPO, "playbooks", "build-guest-image.yml")
MARKER = "osimage-guest-agent-ready"
MIB = 1024 * 1024
ROOTFS = "work/guest_image/debian-bookworm/rootfs"

# A runtime configuration as the Kata packages ship it: mostly comments.
TOML = """\
# Kata Containers runtime configuration (test copy)
# XXX: the kernel and image paths below are rewritten by the install stage.

[hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
# Path to the kernel
kernel = "/old/vmlinux.container"
image = "/old/kata-containers.img"
# initrd = "/usr/share/kata-containers/kata-containers-initrd.img"
machine_type = "q35"
# rootfs_type = "ext4"
kernel_params = ""

[hypervisor.clh]
# not touched
image = "/clh/kata-containers.img"
"""


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def make_agent(path):
    """The test's agent: a script that prints the marker with its pid and
    powers the guest off (as PID 1 through sysrq, under systemd through
    systemctl)."""
    with open(path, "w") as f:
        f.write('#!/bin/sh\necho "%s pid=$$"\n'
                'sleep 1; echo o > /proc/sysrq-trigger 2>/dev/null; systemctl --force --force poweroff 2>/dev/null\n'
                'sleep 1000\n' % MARKER)
    os.chmod(path, 0o755)
    return sha256(path)


def vars_for(base, agent_sha, **extra):
    v = {"osimage_work_dir": str(base / "work"), "osimage_output_dir": str(base / "output"),
         "osimage_cache_dir": CACHE,
         "guest_image_agent_src": str(base / "agent"), "guest_image_agent_sha256": agent_sha,
         # The shared guest kernel's inputs (tests/integration/conftest.py
         # guest_kernel_args): kernel_build reuses its objects.
         "guest_image_kernel_source": LINUX_SOURCE, "guest_image_kernel_config": "tinyconfig",
         "guest_image_kernel_role_fragments": False, "guest_image_kernel_config_fragments": [GUEST_KERNEL_FRAGMENT],
         "guest_image_kernel_localversion": "-osimage-guest",
         "guest_image_kernel_build_dir": os.path.join(CACHE, "kernel-guest")}
    v.update(extra)
    return v


@pytest.fixture(scope="session")
def guest_build(tmp_path_factory, guest_kernel, linux_source_sha256):
    base = tmp_path_factory.mktemp("guest")
    sha = make_agent(str(base / "agent"))
    (base / "configuration.toml").write_text(TOML)
    v = vars_for(base, sha, guest_image_kernel_source_sha256=linux_source_sha256, guest_image_install=True,
                 guest_image_install_prefix=str(base / "usr/share/kata-containers"),
                 guest_image_runtime_config=str(base / "configuration.toml"))
    started = time.time()
    rc, stats, results = run_playbook(PLAYBOOK, v)
    assert rc == 0, failed_msgs(results)
    return {"base": base, "vars": v, "results": results, "seconds": time.time() - started, "sha": sha}


def boot_qemu(console, append, args, marker=MARKER, timeout=240, memory="1024"):
    """qemu under TCG until the marker shows on the serial console."""
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", memory, "-smp", "1", "-display", "none", "-monitor", "none",
            "-serial", "file:%s" % console, "-no-reboot", "-append", append] + args
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(console) and marker in open(console, errors="replace").read():
                break
            time.sleep(1)
    finally:
        proc.kill()
        proc.wait()
    text = open(console, errors="replace").read() if os.path.exists(console) else ""
    assert marker in text, text[-3000:]
    return text


# ---------------------------------------------------------------- artifacts

def test_the_artifacts_and_the_report(guest_build):
    base = guest_build["base"]
    out = base / "output"
    release = open(base / "work/guest_image/debian-bookworm/kernel/kernel.release").read().strip()
    for name in ("container.img", "kata-containers-initrd.img", "vmlinuz-" + release, "vmlinux-" + release,
                 "config-" + release, "debian-bookworm-guest-rootfs.tar"):
        assert (out / name).is_file(), name
    assert os.readlink(out / "vmlinuz.container") == "vmlinuz-" + release
    assert os.readlink(out / "vmlinux.container") == "vmlinux-" + release
    assert open(out / ("vmlinux-" + release), "rb").read(4) == b"\x7fELF"
    report = json.loads((out / "container.img.report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["rootfs", "image", "initrd", "kernel", "install"]
    assert all(s["status"] == "built" for s in report["stages"])
    for art in report["artifacts"]:
        assert art["sha256"] == sha256(art["path"]) and art["size"] == os.path.getsize(art["path"])
    assert report["details"]["kernel_release"] == release
    layout = report["details"]["image_layout"]
    assert layout["size_mb"] % 128 == 0 and layout["disk_mb"] == layout["size_mb"] - 2
    print("guest image build: %.0f s; image %d MiB" % (guest_build["seconds"], layout["size_mb"]))


def test_osbuilder_yaml_has_every_key(guest_build):
    base = guest_build["base"]
    text = (base / ROOTFS / "var/lib/osbuilder/osbuilder.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc == {
        "osbuilder": {"url": "https://github.com/kata-containers/kata-containers/tools/osbuilder",
                      "version": "unknown"},
        "rootfs-creation-time": "2023-11-14T22:13:20.000000000+0000Z",
        "description": "osbuilder rootfs",
        "file-format-version": "0.0.2",
        "architecture": "x86_64",
        "base-distro": {"name": "debian", "version": "bookworm",
                        "packages": {"default": ["chrony", "dbus", "init", "iptables", "kmod", "systemd"],
                                     "extra": []}},
        "agent": {"url": "https://github.com/kata-containers/kata-containers/src/agent", "name": "kata-agent",
                  "version": "unknown", "agent-is-init-daemon": "no"}}
    # All scalar values double-quoted, as rootfs.sh writes them.
    for line in text.splitlines()[1:]:
        if ":" in line and not line.rstrip().endswith(":") and not line.rstrip().endswith("[]"):
            assert line.split(":", 1)[1].strip().startswith('"'), line
        if line.strip().startswith("- "):
            assert line.strip()[2:].startswith('"'), line


def test_the_rootfs_is_set_up_as_osbuilder_does(guest_build):
    base = guest_build["base"]
    root = base / ROOTFS
    assert os.readlink(root / "var/tmp") == "../tmp"
    assert not (root / "var/cache").exists() and not (root / "var/log").exists()
    assert "Options=mode=1777,strictatime,nosuid,nodev" in (root / "etc/systemd/system/tmp.mount").read_text()
    resolv = root / "etc/resolv.conf"
    assert not resolv.is_symlink() and resolv.is_file() and resolv.stat().st_size == 0
    chrony = (root / "etc/chrony/chrony.conf").read_text().splitlines()
    assert "refclock PHC /dev/ptp0 poll 3 dpoll -2 offset 0" in chrony and "makestep 1 -1" in chrony
    assert not [x for x in chrony if x.startswith(("server ", "pool ", "peer "))]
    assert any(x.startswith("# pool ") for x in chrony)
    unit = (root / "usr/lib/systemd/system/chrony.service").read_text()
    assert "[Unit]\nConditionPathExists=/dev/ptp0\n" in unit
    for name in ("doc", "man", "locale", "info"):
        assert not (root / "usr/share" / name).exists(), name
    # rootfs.sh -d: the units upstream removes are nowhere.
    for dirpath, _dirs, files in os.walk(root / "usr/lib/systemd"):
        for gone in ("systemd-journald.service", "systemd-udevd.service", "systemd-timesyncd.service",
                     "systemd-fstab-generator", "systemd-getty-generator"):
            assert gone not in files, os.path.join(dirpath, gone)
    agent = root / "usr/bin/kata-agent"
    assert sha256(agent) == guest_build["sha"] and os.access(agent, os.X_OK)
    svc = (root / "usr/lib/systemd/system/kata-agent.service").read_text()
    assert "ExecStart=/usr/bin/kata-agent" in svc and "FailureAction=poweroff" in svc and "StandardOutput=tty" in svc
    target = (root / "usr/lib/systemd/system/kata-containers.target").read_text()
    assert "Requires=kata-agent.service" in target and "AllowIsolate=yes" in target
    assert os.readlink(root / "etc/systemd/system/basic.target.wants/kata-containers.target") == \
        "/usr/lib/systemd/system/kata-containers.target"
    assert os.readlink(root / "etc/systemd/system/kata-containers.target.wants/dbus.socket") == \
        "/usr/lib/systemd/system/dbus.socket"
    assert os.path.islink(root / "usr/sbin/init")  # systemd-sysv's link: systemd is init


# ------------------------------------------------------------ the DAX header

def test_the_dax_header_byte_for_byte(guest_build):
    img = guest_build["base"] / "output" / "container.img"
    size = img.stat().st_size
    with open(img, "rb") as f:
        head = f.read(3 * MIB + 4096)
    # MBR #1: p1 from 3 MiB to the last sector of the file.
    assert head[510:512] == b"\x55\xaa"
    start, count = struct.unpack_from("<II", head, 446 + 8)
    assert head[446 + 4] == 0x83 and start == 6144 and start + count == size // 512
    assert head[446 + 16:510] == b"\0" * (510 - 462)  # one partition only
    # struct nd_pfn_sb at 4 KiB (spec §4), read field by field.
    sb = head[4096:8192]
    assert sb[0:16] == b"NVDIMM_PFN_INFO\0"
    assert sb[16:48] == b"\0" * 32  # uuid, parent_uuid
    assert struct.unpack_from("<IHHQQIIII", sb, 48) == (0, 0, 2, 2 * MIB, 0, 1, 0, 0, 2 * MIB)
    assert sb[88:4088] == b"\0" * 4000
    lo = hi = 0
    zeroed = sb[:4088] + b"\0" * 8
    for i in range(0, 4096, 4):
        lo = (lo + int.from_bytes(zeroed[i:i + 4], "little")) % 2 ** 32
        hi = hi + lo
    assert struct.unpack_from("<Q", sb, 4088)[0] == (hi % 2 ** 32) << 32 | lo
    # The rest of the first 2 MiB is zero, but the first MBR and the superblock.
    assert head[512:4096] == b"\0" * 3584 and head[8192:2 * MIB] == b"\0" * (2 * MIB - 8192)
    # MBR #2 at 2 MiB: p1 at 1 MiB relative (3 MiB absolute), the same length.
    mbr2 = head[2 * MIB:2 * MIB + 512]
    assert mbr2[510:512] == b"\x55\xaa"
    assert struct.unpack_from("<II", mbr2, 446 + 8) == (2048, count)
    # The filesystem at 3 MiB.
    assert struct.unpack_from("<H", head, 3 * MIB + 1024 + 0x38)[0] == 0xEF53


# -------------------------------------------------------------------- boots

def test_systemd_starts_the_agent_from_a_virtio_blk_disk(guest_build, guest_kernel, tmp_path):
    base = guest_build["base"]
    kernel = base / "output" / "vmlinuz.container"
    res = run_module("boot_test", {
        "kernel": str(kernel), "expect": MARKER, "timeout": 240, "accel": "tcg",
        "console_log": str(tmp_path / "console.log"),
        # GetKernelRootParams for virtio-blk, and what the runtime adds for an image.
        "append": "console=ttyS0 panic=-1 root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4"
                  " systemd.unit=kata-containers.target systemd.mask=systemd-networkd.service"
                  " systemd.mask=systemd-networkd.socket",
        "qemu_args": ["-drive", "file=%s,if=none,id=image,format=raw,readonly=on" % (base / "output/container.img"),
                      "-device", "virtio-blk-pci,drive=image"]})
    assert res.get("failed") is not True, res.get("msg")
    log = (tmp_path / "console.log").read_text(errors="replace")
    assert "Started kata-agent.service" in log
    assert MARKER + " pid=1\n" not in log  # systemd is PID 1, the agent its service


def test_the_image_boots_as_an_nvdimm_through_its_dax_header(guest_build, tmp_path):
    img = guest_build["base"] / "output" / "container.img"
    log = boot_qemu(str(tmp_path / "console.log"),
                    "console=ttyS0 panic=-1 root=/dev/pmem0p1 rootflags=dax,data=ordered,errors=remount-ro ro"
                    " rootfstype=ext4 systemd.unit=kata-containers.target",
                    ["-machine", "pc,nvdimm=on", "-kernel", str(guest_build["base"] / "output/vmlinuz.container"),
                     "-object", "memory-backend-file,id=mem0,mem-path=%s,size=%d,readonly=on"
                     % (img, img.stat().st_size),
                     "-device", "nvdimm,id=nv0,memdev=mem0,unarmed=on"],
                    memory="1024M,slots=2,maxmem=4G")
    # The kernel found the pfn superblock (a pfn device) and MBR #2 behind it.
    assert "pmem0: p1" in log and "nd_pmem pfn0" in log, log[-3000:]
    assert "EXT4-fs (pmem0p1)" in log and "Started kata-agent.service" in log


def test_the_initrd_boots_to_the_agent(guest_build, tmp_path):
    out = guest_build["base"] / "output"
    res = run_module("boot_test", {
        "kernel": str(out / "vmlinuz.container"), "initrd": str(out / "kata-containers-initrd.img"),
        "append": "console=ttyS0 panic=-1 systemd.unit=kata-containers.target", "expect": MARKER, "timeout": 240,
        "accel": "tcg", "console_log": str(tmp_path / "console.log")})
    assert res.get("failed") is not True, res.get("msg")


# ------------------------------------------------------- install and re-run

def test_the_runtime_configuration_points_at_the_installed_files(guest_build):
    base = guest_build["base"]
    prefix = base / "usr/share/kata-containers"
    text = (base / "configuration.toml").read_text()
    conf = tomllib.loads(text)
    qemu = conf["hypervisor"]["qemu"]
    assert qemu["image"] == str(prefix / "container.img") and os.path.isfile(qemu["image"])
    assert qemu["kernel"] == str(prefix / "vmlinux.container") and os.path.isfile(qemu["kernel"])
    assert open(qemu["kernel"], "rb").read(4) == b"\x7fELF"
    assert qemu["rootfs_type"] == "ext4" and "initrd" not in qemu  # never both
    assert qemu["machine_type"] == "q35" and qemu["path"] == "/usr/bin/qemu-system-x86_64"
    assert conf["hypervisor"]["clh"] == {"image": "/clh/kata-containers.img"}
    for comment in ("# Kata Containers runtime configuration (test copy)", "# Path to the kernel", "# not touched",
                    '# initrd = "/usr/share/kata-containers/kata-containers-initrd.img"'):
        assert comment in text, comment
    assert (base / "configuration.toml.bak").read_text() == TOML
    assert sha256(prefix / "container.img") == sha256(base / "output/container.img")


def test_a_second_run_changes_nothing(guest_build):
    rc, stats, results = run_playbook(PLAYBOOK, guest_build["vars"])
    assert rc == 0, failed_msgs(results)
    assert stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]
    facts = [r["ansible_facts"]["pipeline_result"] for r in results if "pipeline_result" in r.get("ansible_facts", {})]
    assert facts[-1]["built"] is False


def test_both_image_and_initrd_for_the_runtime_is_refused(guest_build, tmp_path):
    v = dict(guest_build["vars"], osimage_output_dir=str(tmp_path / "out"), guest_image_runtime_boot="both")
    rc, _stats, results = run_playbook(PLAYBOOK, v)
    msg = " ".join(failed_msgs(results))
    # The role's argument spec refuses it before the plan (choices image, initrd).
    assert rc != 0 and "guest_image_runtime_boot" in msg and "both" in msg, msg
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


# ------------------------------------------------------------ other builds

def test_xfs_image_boots(guest_build, tmp_path):
    """The session's rootfs made into an xfs image (resumed at image)."""
    out = tmp_path / "out"
    v = dict(guest_build["vars"], osimage_output_dir=str(out), guest_image_fs_type="xfs",
             guest_image_targets=["image"], guest_image_resume_from="image", guest_image_install=False)
    rc, _stats, results = run_playbook(PLAYBOOK, v)
    assert rc == 0, failed_msgs(results)
    res = run_module("boot_test", {
        "kernel": str(guest_build["base"] / "output/vmlinuz.container"), "expect": MARKER, "timeout": 240,
        "accel": "tcg", "console_log": str(tmp_path / "console.log"),
        "append": "console=ttyS0 panic=-1 root=/dev/vda1 ro rootfstype=xfs"
                  " systemd.unit=kata-containers.target",
        "qemu_args": ["-drive", "file=%s,if=virtio,format=raw,readonly=on" % (out / "container.img")]})
    assert res.get("failed") is not True, res.get("msg")
    assert "XFS (vda1)" in (tmp_path / "console.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def agent_init_build(tmp_path_factory, guest_kernel):
    """The agent as /sbin/init (no init package, no systemd boot), on erofs."""
    base = tmp_path_factory.mktemp("guest-agent-init")
    sha = make_agent(str(base / "agent"))
    v = vars_for(base, sha, guest_image_agent_init=True, guest_image_fs_type="erofs", guest_image_targets=["image"])
    rc, _stats, results = run_playbook(PLAYBOOK, v)
    assert rc == 0, failed_msgs(results)
    return base


def test_the_agent_is_pid_1_with_agent_init(agent_init_build, guest_kernel, tmp_path):
    base = agent_init_build
    root = base / ROOTFS
    assert sha256(root / "usr/sbin/init") == sha256(base / "agent")
    assert not (root / "usr/lib/systemd/system/kata-agent.service").exists()
    assert os.readlink(root / "init") == "/sbin/init"
    doc = yaml.safe_load((root / "var/lib/osbuilder/osbuilder.yaml").read_text())
    assert doc["agent"]["agent-is-init-daemon"] == "yes" and "init" not in doc["base-distro"]["packages"]["default"]
    img = base / "output" / "container.img"
    assert img.stat().st_size % MIB == 0 and img.stat().st_size % (128 * MIB) != 0  # erofs: not rounded
    res = run_module("boot_test", {
        "kernel": guest_kernel["bzimage"]["path"], "expect": MARKER + " pid=1", "timeout": 240, "accel": "tcg",
        "console_log": str(tmp_path / "console.log"),
        "append": "console=ttyS0 panic=-1 root=/dev/vda1 ro rootfstype=erofs",
        "qemu_args": ["-drive", "file=%s,if=virtio,format=raw,readonly=on" % img]})
    assert res.get("failed") is not True, res.get("msg")


# --------------------------------------------------------------- bad input

# Bad input refused in the plan is tests/integration/test_bad_input.py's table;
# a size the rootfs does not fit in is known only once the rootfs is built.

def test_a_size_smaller_than_the_rootfs_is_refused(guest_build, tmp_path):
    out = tmp_path / "out"
    v = dict(guest_build["vars"], osimage_output_dir=str(out), guest_image_size_mb=100,
             guest_image_targets=["image"], guest_image_resume_from="image", guest_image_install=False)
    rc, _stats, results = run_playbook(PLAYBOOK, v)
    msg = " ".join(failed_msgs(results))
    assert rc != 0 and "guest_image_size_mb=100" in msg and "smaller than" in msg, msg
    assert "rounded up to 128 MiB" not in msg
    assert not out.exists() or os.listdir(out) == []


def test_a_verity_image_boots_and_a_flipped_byte_does_not(guest_build, tmp_path):
    """dm-verity over the session's rootfs (guest_disk, verity=true): the
    guest mounts its root through dm-verity with the kernel parameters the
    runtime makes of root_hash.txt; a flipped byte in the data partition
    fails the boot."""
    base = guest_build["base"]
    img = tmp_path / "verity.img"
    res = run_module("guest_disk", {"src": str(base / ROOTFS), "dest": str(img), "verity": True,
                                    "root_hash_file": str(tmp_path / "root_hash.txt")})
    assert res.get("failed") is not True, res.get("msg")
    line = (tmp_path / "root_hash.txt").read_text().strip()
    assert line == res["verity"]["line"] and line.startswith("root_hash=") and ",salt=" in line
    params = res["verity"]["kernel_params_virtio_blk"]
    assert params.startswith('dm-mod.create="dm-verity,,,ro,0 ') and " root=/dev/dm-0 " in params
    kernel = str(base / "output/vmlinuz.container")
    common = "console=ttyS0 panic=-1 systemd.unit=kata-containers.target " + params
    drive = ["-drive", "file=%s,if=virtio,format=raw,readonly=on" % img]
    log = boot_qemu(str(tmp_path / "good.log"), common, ["-kernel", kernel] + drive)
    assert "dm-0" in log and "Started kata-agent.service" in log
    # Flip a byte of the ext4 superblock (read at mount): dm-verity refuses the block.
    with open(img, "r+b") as f:
        f.seek(3 * MIB + 1024 + 0x78)  # s_volume_name
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(AssertionError):
        boot_qemu(str(tmp_path / "bad.log"), common, ["-kernel", kernel] + drive, timeout=90)
    bad = (tmp_path / "bad.log").read_text(errors="replace")
    assert "verity" in bad.lower() and MARKER not in bad, bad[-3000:]


@pytest.mark.parametrize("stage", faults.stages("image", ["rootfs", "image", "initrd", "kernel", "install"]))
def test_a_build_killed_in_a_stage_is_finished_by_the_next_run(guest_build, tmp_path, stage):
    """SIGKILL to the whole build a second into `image` (the
    suite's sample; benchmarks/fault_sweep.sh kills every stage): the next
    run completes, leaving nothing mounted, attached or half-written."""
    faults.survive_kill(PLAYBOOK, guest_build["vars"], "guest_image", stage, str(tmp_path), delay=1.0,
                        expect=["container.img", "kata-containers-initrd.img", "container.img.report.json"])

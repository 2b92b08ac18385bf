"""The KurmaOS pipeline end to end with a small test config: one role build
(stage4 from the session's minbase tarball, the shared guest kernel, the
base ACIs, the initrd, kurma.tar.gz and the release bzImage) as a fixture,
then many checks on it: the ACIs validate and run ldd-clean, the initrd's
layout and kurma.json, the dev build and the release build boot in qemu (TCG)
to the banner with the ntp service's start line and an init container's
output, a no-op re-run (bad input is test_bad_input.py's table), and a
rebuild of the ACIs and initrd giving the same bytes."""
import gzip
import hashlib
import json
import os
import stat
import subprocess
import tarfile

import pytest

from tests import faults
from tests.conftest import REPO, failed_msgs, needs_root, run_module, run_playbook
from tests.integration.conftest import CACHE, GUEST_KERNEL_FRAGMENT, LINUX_SOURCE

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]

PLAYBOOK = os.path.join(REPO, "playbooks", "build-kurma.yml")
# The init container prints it computed, so that the init's own "starting"
# line (which shows the command) does not match.
MARKER = "KURMA-INIT-CONTAINER-42"
STAGE4_PACKAGES = ["busybox", "chrony", "openssh-server", "jq", "e2fsprogs"]
STAGES = ["stage4", "kernel", "acis", "initrd", "release", "vm"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hello_aci(base):
    """An init container: the host's busybox (static: elf_closure copies it
    without libraries) printing the marker after a pause, so the boot test
    sees the banner, the ntp service and the console first (unpacking the
    console ACI takes seconds under TCG)."""
    rootfs = str(base / "hello" / "rootfs")
    res = run_module("elf_closure", {"root": "/", "dest": rootfs,
                                     "files": [{"src": "/bin/busybox", "dest": "/busybox"}],
                                     "ldconfig": False, "lib64_link": False})
    assert res.get("failed") is not True, res.get("msg")
    assert res["libraries"] == [] and res["files"][0]["dynamic"] is False
    aci = str(base / "hello.aci")
    res = run_module("aci_image", {"dest": aci, "rootfs": rootfs, "source_date_epoch": 1700000000, "manifest": {
        "acKind": "ImageManifest", "acVersion": "0.5.1", "name": "example.com/hello",
        "labels": [{"name": "os", "value": "linux"}],
        "app": {"exec": ["/busybox", "sh", "-c", "/busybox sleep 12; echo KURMA-INIT-CONTAINER-$((6*7))"],
                "user": "0", "group": "0"}}})
    assert res.get("failed") is not True, res.get("msg")
    return aci


def vars_for(base, base_tarball, hello):
    return {
        "osimage_hosts": "localhost",
        "osimage_work_dir": str(base / "work"), "osimage_output_dir": str(base / "output"),
        "osimage_cache_dir": CACHE,
        "kurma_stage4_tarball": base_tarball, "kurma_stage4_tarball_sha256": sha256(base_tarball),
        "kurma_stage4_packages": STAGE4_PACKAGES,
        # The shared guest kernel's object tree (tests/integration/conftest.py): a relink, not a rebuild. The
        # role's own kernel config (files/kernel/kurmaos.config) is not built in tests.
        "kurma_kernel_config": "tinyconfig", "kurma_kernel_config_fragments": [GUEST_KERNEL_FRAGMENT],
        "kurma_kernel_localversion": "-osimage-guest",
        "kurma_kernel_build_dir": os.path.join(CACHE, "kernel-guest"),
        "kurma_kernel_dest_dir": str(base / "kernel"), "kurma_release_dest_dir": str(base / "release-kernel"),
        "kurma_extra_acis": [{"src": hello, "sha256": sha256(hello)}],
        "kurma_init_containers": ["file:///hello.aci"],
        # qemu's user network: DHCP on eth0, its host at 10.0.2.2.
        "kurma_services": {"ntp": {"enabled": True, "aci": "file:///ntp.aci", "servers": ["10.0.2.2", "10.0.2.3"]},
                           "console": {"enabled": True, "aci": "file:///console.aci",
                                       "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKurmaTestKey test@kurma"]}},
    }


@pytest.fixture(scope="module")
def kurma(tmp_path_factory, base_tarball, guest_kernel):
    if not os.path.exists(LINUX_SOURCE):
        pytest.skip("linux-source-6.1 is not installed (./osimage setup installs it)")
    base = tmp_path_factory.mktemp("kurma")
    hello = hello_aci(base)
    extra = vars_for(base, base_tarball, hello)
    rc, stats, results = run_playbook(PLAYBOOK, extra)
    assert rc == 0, failed_msgs(results)
    return base, extra, results


def out(base, name):
    return str(base / "output" / name)


def unpack_aci(aci, dest):
    with tarfile.open(aci) as tar:
        tar.extractall(dest)  # noqa: S202 - the ACI this build just made and validated
    with open(os.path.join(dest, "manifest")) as f:
        return json.load(f)


def traced(rootfs, path):
    proc = subprocess.run(["chroot", rootfs, "/lib64/ld-linux-x86-64.so.2", "--list", path],
                          capture_output=True, text=True, check=False)
    assert "not found" not in proc.stdout, (path, proc.stdout)
    assert proc.returncode == 0, (path, proc.stdout, proc.stderr)
    names = {line.split()[0].rsplit("/", 1)[-1] for line in proc.stdout.splitlines() if line.startswith("\t")}
    return {n for n in names if ".so" in n and not n.startswith("linux-vdso.so")}


def elf_files(rootfs):
    for dirpath, _dirs, files in os.walk(rootfs):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                with open(p, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        yield "/" + os.path.relpath(p, rootfs)


@pytest.mark.parametrize("name,binaries,exec_,user", [
    ("ntp", ["/busybox", "/chronyd"], ["/start.sh"], "0"),
    ("console", ["/bin/busybox", "/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/jq"], ["/start.sh"], "0"),
])
def test_the_base_acis(kurma, tmp_path, name, binaries, exec_, user):
    base, _extra, _results = kurma
    aci = out(base, name + ".aci")
    res = run_module("aci_image", {"dest": aci, "state": "validated"})
    assert res.get("failed") is not True, res.get("msg")
    m = res["manifest"]
    assert m["name"] == "apcera.com/kurma/" + name and m["acVersion"] == "0.5.1"
    assert m["labels"] == [{"name": "os", "value": "linux"}, {"name": "version", "value": "latest"}]
    assert m["app"]["exec"] == exec_ and m["app"]["user"] == user and m["app"]["group"] == user
    isolators = {i["name"]: i["value"] for i in m["app"]["isolators"]}
    assert isolators["host/privileged"] is True
    if name == "console":
        assert isolators["os/linux/namespaces"] == ["ipc", "mount", "pid", "uts"]
    unpack_aci(aci, str(tmp_path))
    rootfs = str(tmp_path / "rootfs")
    busybox = binaries[0]
    assert subprocess.run(["chroot", rootfs, busybox, "true"], check=False).returncode == 0
    # ldd-clean, and no library the binaries and glibc's NSS modules do not need.
    # The NSS modules are dlopened (no binary names them): they and what they need are wanted too.
    needed = {"libnss_files.so.2", "libnss_dns.so.2"}
    paths = [p for p in elf_files(rootfs) if not p.startswith("/lib/")]
    for path in paths + ["/lib/libnss_files.so.2", "/lib/libnss_dns.so.2"]:
        needed |= traced(rootfs, path)
    libs = set(os.listdir(os.path.join(rootfs, "lib")))
    assert libs == needed, libs ^ needed
    for path in elf_files(rootfs):  # ldd-clean, the libraries too
        traced(rootfs, path)
    assert {"libnss_files.so.2", "libnss_dns.so.2", "libc.so.6", "ld-linux-x86-64.so.2"} <= libs
    assert os.readlink(os.path.join(rootfs, "lib64")) == "lib"
    assert open(os.path.join(rootfs, "etc", "ld.so.conf")).read() == "/lib\n"
    assert os.path.getsize(os.path.join(rootfs, "etc", "ld.so.cache")) > 0
    start = open(os.path.join(rootfs, "start.sh")).read()
    assert "local " not in start
    if name == "ntp":
        assert os.readlink(os.path.join(rootfs, "sh")) == "busybox"
        assert open(os.path.join(rootfs, "etc", "hosts")).read() == "127.0.0.1 localhost localhost.localdomain\n"
        # start.sh gives one server directive per word of NTP_SERVERS (upstream: -p per server)
        proc = subprocess.run(["/usr/sbin/chroot", rootfs, "/busybox", "sh", "-c",
                               "/busybox sed 's|^exec |echo |' /start.sh > /tmp/t.sh && /sh /tmp/t.sh"],
                              env={"NTP_SERVERS": "a.example b.example", "PATH": "/"}, capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "/chronyd -d -u root server b.example iburst server a.example iburst"
    else:
        spawn = json.load(open(os.path.join(rootfs, "etc", "spawn.conf")))
        assert spawn == [["/sbin/getty", "115200", "tty1"], ["/sbin/getty", "115200", "ttyS0"],
                         ["/usr/sbin/sshd", "-D"]]
        # kurma-init gives a privileged pod the host's /dev; ssh-keygen opens /dev/null
        os.makedirs(os.path.join(rootfs, "dev"), exist_ok=True)
        os.mknod(os.path.join(rootfs, "dev", "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        key = "/etc/ssh/ssh_host_ed25519_key"
        keygen = ["chroot", rootfs, "/usr/bin/ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", key]
        assert subprocess.run(keygen, check=False).returncode == 0
        sshd = ["chroot", rootfs, "/usr/sbin/sshd", "-t", "-o", "HostKey=" + key]
        proc = subprocess.run(sshd, check=False, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def initrd_members(path):
    with open(path, "rb") as f:
        data = gzip.decompress(f.read())
    proc = subprocess.run(["cpio", "-it", "--quiet"], input=data, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return data, set(proc.stdout.decode().split("\n")) - {""}


def initrd_file(data, name, tmp_path):
    subprocess.run(["cpio", "-id", "--quiet", name], input=data, cwd=str(tmp_path), check=True)
    return (tmp_path / name).read_text()


def test_the_initrd_and_kurma_tar(kurma, tmp_path):
    base, extra, results = kurma
    with tarfile.open(out(base, "kurma.tar.gz")) as tar:
        names = sorted(n.lstrip("./") for n in tar.getnames() if n.strip("./"))
        assert names == ["bzImage", "initrd"]
        initrd = tar.extractfile([m for m in tar.getmembers() if m.name.endswith("initrd")][0]).read()
    assert hashlib.sha256(initrd).hexdigest() == sha256(str(base / "work" / "kurma" / "initrd" / "initrd"))
    data, members = initrd_members(str(base / "work" / "kurma" / "initrd" / "initrd"))
    release = open(str(base / "kernel" / "kernel.release")).read().strip()
    for path in ("init", "etc/kurma.json", "etc/os-release", "etc/lsb-release", "etc/resolv.conf",
                 "etc/nsswitch.conf", "etc/ld.so.conf", "etc/ld.so.cache", "etc/ssl/certs", "bin/busybox",
                 "bin/sh", "bin/udhcpc", "bin/blockdev", "bin/mke2fs", "bin/mkfs.ext4", "bin/resize2fs",
                 "bin/resizefs", "bin/jq", "sbin/switch_root", "sbin/ifconfig", "sbin/route",
                 "usr/share/udhcpc/default.script", "lib64", "lib/libc.so.6", "lib/libnss_dns.so.2",
                 "lib/modules/" + release, "dev/console", "ntp.aci", "console.aci", "hello.aci"):
        assert path in members, path
    # Only the listed ACIs (upstream copied every *.aci it found).
    assert {m for m in members if m.endswith(".aci")} == {"ntp.aci", "console.aci", "hello.aci"}
    osr = initrd_file(data, "etc/os-release", tmp_path)
    assert "NAME=KurmaOS\n" in osr and "ID=kurmaos\n" in osr and 'PRETTY_NAME="KurmaOS 0.1.0"' in osr
    lsb = initrd_file(data, "etc/lsb-release", tmp_path).splitlines()
    assert lsb == ["DISTRIB_ID=KurmaOS", "DISTRIB_RELEASE=0.1.0", 'DISTRIB_DESCRIPTION="KurmaOS 0.1.0"']
    conf = json.loads(initrd_file(data, "etc/kurma.json", tmp_path))
    assert conf["hostname"] == "kurmaos"
    assert conf["oem_config"] == {"device": "LABEL=OEM", "config_path": "/kurma_oem.json"}
    assert conf["disks"] == [{"device": "LABEL=ROOT", "usage": ["pods", "volumes"], "resize": True}]
    assert conf["services"]["ntp"]["servers"] == ["10.0.2.2", "10.0.2.3"]
    assert "password" not in json.dumps(conf)
    assert conf["init_containers"] == ["file:///hello.aci"]
    assert conf["required_namespaces"] == ["ipc", "mount", "pid", "uts"]


def boot(kernel, initrd, tmp_path, name):
    args = {"kernel": kernel, "expect": MARKER, "timeout": 300, "accel": "tcg", "memory_mb": 1024,
            "append": "console=ttyS0 panic=-1", "console_log": str(tmp_path / (name + ".log")),
            "qemu_args": ["-nic", "user,model=virtio-net-pci"]}
    if initrd:
        args["initrd"] = initrd
    res = run_module("boot_test", args, timeout=600)
    assert res.get("failed") is not True, (res.get("msg"), open(args["console_log"], errors="replace").read()[-3000:])
    return open(args["console_log"], errors="replace").read()


def check_console(log):
    assert "kurma: starting ntp (apcera.com/kurma/ntp): /start.sh" in log
    assert "+ exec /chronyd -d -u root 'server 10.0.2.3 iburst' 'server 10.0.2.2 iburst'" in log
    assert "chronyd version" in log
    assert "Welcome to KurmaOS 0.1.0" in log and "on kurmaos" in log
    assert "  eth0: 10.0.2.15/24" in log and "  lo: 127.0.0.1/8" in log
    assert "kurma: starting hello (example.com/hello)" in log
    assert "kurma: starting console (apcera.com/kurma/console): /start.sh" in log
    assert log.index("Welcome to KurmaOS") < log.index(MARKER)


def test_the_dev_build_boots(kurma, tmp_path):
    base, _extra, _results = kurma
    log = boot(str(base / "kernel" / "bzImage"), str(base / "work" / "kurma" / "initrd" / "initrd"), tmp_path, "dev")
    check_console(log)


def test_the_release_build_boots(kurma, tmp_path):
    base, _extra, _results = kurma
    log = boot(out(base, "kurma-bzImage"), None, tmp_path, "release")
    check_console(log)


def test_a_second_run_changes_nothing(kurma):
    base, extra, _results = kurma
    rc, stats, results = run_playbook(PLAYBOOK, extra)
    assert rc == 0, failed_msgs(results)
    assert stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]
    result = [r["ansible_facts"]["pipeline_result"] for r in results
              if "pipeline_result" in r.get("ansible_facts", {})][-1]
    assert result["built"] is False
    assert [s["stage"] for s in result["stages"]] == STAGES
    report = json.load(open(out(base, "kurma.tar.gz.report.json")))
    assert [s["stage"] for s in report["stages"]] == STAGES
    arts = {a["path"] for a in report["artifacts"]}
    assert arts == {out(base, n) for n in ("kurma.tar.gz", "ntp.aci", "console.aci", "kurma-bzImage", "kurmaos.raw",
                                           "kurmaos.qcow2", "kurmaos.vmdk", "kurmaos.vmx")}
    assert any("no api ACI" in n for n in report["notes"])


def test_a_rebuild_gives_the_same_bytes(kurma):
    """The ACIs, the initrd and kurma.tar.gz from fresh trees (resumed at the
    acis stage, so the stage4 and kernel are reused) are bit-identical."""
    base, extra, _results = kurma
    files = [out(base, "ntp.aci"), out(base, "console.aci"), out(base, "kurma.tar.gz"),
             str(base / "work" / "kurma" / "initrd" / "initrd")]
    before = [sha256(p) for p in files]
    rc, _stats, results = run_playbook(PLAYBOOK, dict(extra, kurma_resume_from="acis", kurma_release=False,
                                                      kurma_vm_image=False))
    assert rc == 0, failed_msgs(results)
    assert [r for r in results if r["_task"] == "Pack the base ACIs" and not r.get("skipped")]
    assert [sha256(p) for p in files] == before


def test_the_vm_image(kurma, tmp_path):
    """The GPT layout of kurmaos' disk_layout.json (base), qcow2 and vmdk
    copies, and the raw image booting from its own grub (BIOS) to the banner."""
    base, _extra, _results = kurma
    raw = out(base, "kurmaos.raw")
    table = json.loads(subprocess.run(["sfdisk", "-J", raw], capture_output=True, text=True, check=True).stdout)
    parts = table["partitiontable"]["partitions"]
    assert [(p["name"], p["type"], p["start"], p["size"]) for p in parts] == [
        ("EFI-SYSTEM", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", 4096, 262144),
        ("BIOS-BOOT", "21686148-6449-6E6F-744E-656564454649", 266240, 4096),
        ("OEM", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", 270336, 262144),
        ("ROOT", "3884DD41-8582-4404-B9A8-E9B84F2DF50E", 532480, 2097152)]
    assert os.path.getsize(raw) == 2838528 * 512
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", out(base, "kurmaos.qcow2")],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2" and info["format-specific"]["data"]["compat"] == "0.10"
    qcow2_check = subprocess.run(["qemu-img", "check", out(base, "kurmaos.qcow2")], check=False, capture_output=True)
    assert qcow2_check.returncode == 0, qcow2_check.stderr
    vmdk = json.loads(subprocess.run(["qemu-img", "info", "--output=json", out(base, "kurmaos.vmdk")],
                                     capture_output=True, text=True, check=True).stdout)
    assert vmdk["format"] == "vmdk" and vmdk["virtual-size"] == os.path.getsize(raw)
    assert 'scsi0:0.fileName = "kurmaos.vmdk"' in open(out(base, "kurmaos.vmx")).read()
    log_path = str(tmp_path / "disk.log")
    res = run_module("boot_test", {"image": raw, "expect": MARKER, "timeout": 300, "accel": "tcg",
                                   "console_log": log_path, "qemu_args": ["-nic", "user,model=virtio-net-pci"]},
                     timeout=600)
    log = open(log_path, errors="replace").read()
    assert res.get("failed") is not True, (res.get("msg"), log[-3000:])
    check_console(log)


@pytest.mark.parametrize("stage", faults.stages("vm", ["stage4", "kernel", "acis", "initrd", "release", "vm"]))
def test_a_build_killed_in_a_stage_is_finished_by_the_next_run(kurma, tmp_path, stage):
    """SIGKILL to the whole build a second into `vm` (the disk's
    loop devices and mounts; the suite's sample, benchmarks/fault_sweep.sh
    kills every stage): the next run completes, leaving nothing mounted,
    attached or half-written."""
    base, extra, _results = kurma
    faults.survive_kill(PLAYBOOK, extra, "kurma", stage, str(tmp_path), delay=1.0,
                        expect=["kurmaos.raw", "kurmaos.qcow2", "kurmaos.vmdk", "kurma.tar.gz"])

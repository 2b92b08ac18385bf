"""Check mode keeps its promise in every module: run each module of
plugins/modules in check mode on valid arguments with its artifact absent,
and assert that nothing under the test's tree changed (no file or directory
appeared, went away or was modified, not even a temporary one: a directory's
mtime moves when an entry is made and removed in it) and that the result
says what the module documents (changed=true for a full check mode, the
commands it would run for a partial one, under the result key its case
names and its documentation's check_mode details name as RV(...)).

A module added to plugins/modules without an entry in CASES fails
test_every_module_has_a_case (and tests/lint/test_lint.py, which reads CASES
and the partial cases' plan keys from this file). No case builds anything:
tiny trees, a fake kernel tarball, a file and an archive served on
127.0.0.1. kernel_build does not download: a URL source is refused, naming
source and input_file, with nothing written."""

import contextlib
import hashlib
import os
import shutil
import subprocess

import pytest
import yaml

from tests import local_archive
from tests.conftest import REPO, mounts_under, needs_root, run_module

pytestmark = [needs_root]

MODULES_DIR = os.path.join(REPO, "plugins", "modules")
MANIFEST = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/check-mode",
            "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}]}
FAKE_KERNEL = b"not really a kernel"


def snapshot(top):
    """Every entry under top (and top itself): type and mode, size, mtime
    and, for a file, its sha256."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [None] + dirnames + filenames:
            full = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(full)
            digest = None
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            found[os.path.relpath(full, top)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return found


def tiny_root(top):
    """A small image root: a dpkg database, a kernel and initrd in /boot, a
    link, /bin/sh and /usr/bin/true with their libraries (what chroot_command
    and elf_closure look for)."""
    root = top / "root"
    for rel, data in (("etc/hostname", "check-mode\n"), ("etc/os-release", "ID=debian\n"),
                      ("var/lib/dpkg/status", "Package: base-files\nStatus: install ok installed\n"
                                              "Version: 12.4\nArchitecture: amd64\n\n"),
                      ("boot/vmlinuz-6.1.0-1-amd64", "kernel"), ("boot/initrd.img-6.1.0-1-amd64", "initrd")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(data)
    os.symlink("hostname", root / "etc" / "name")
    # /usr/bin/true and /bin/sh with the libraries they load, at the paths
    # the host has them.
    out = subprocess.run(["ldd", "/usr/bin/true", "/bin/sh"], capture_output=True, text=True, check=True).stdout
    libs = {w for line in out.splitlines() for w in line.split() if w.startswith("/") and not w.endswith(":")}
    for path in ["/usr/bin/true", "/bin/sh"] + sorted(libs):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), target)
    return root


def entry(args, expect=None, plan=None, runs=None):
    """A case: the module's arguments and what its check-mode result must
    hold (default changed=true). plan marks a module whose documented check
    mode is partial: the result key holding what it would run (a command
    line or a list of them), which must name the program `runs`."""
    return {"args": args, "expect": {"changed": True} if expect is None else expect, "plan": plan, "runs": runs}


# Each case: (work dir, ExitStack for servers and mounts, keys) -> entry.
# Every path a module could write (caches, keys, logs) points into the work dir.

def aci_image(w, stack, keys):
    return entry({"dest": str(w / "out" / "image.aci"), "rootfs": str(tiny_root(w)), "manifest": MANIFEST})


def archive_keyring(w, stack, keys):
    served = w / "archive"
    local_archive.publish(served, keys, keys.genuine, keys.export(keys.genuine))
    url = stack.enter_context(local_archive.serve(served))
    return entry({"suite": "jammy", "mirror": url, "fingerprints": [keys.genuine],
                  "dest": str(w / "out" / "archive.gpg")}, {"changed": True, "signed_by": keys.genuine})


def boot_test(w, stack, keys):
    kernel = w / "bzImage"
    kernel.write_bytes(b"kernel")
    # Documented partial: nothing is booted, the qemu command is returned.
    return entry({"kernel": str(kernel), "console_log": str(w / "logs" / "console.log"),
                  "kvm_probe_cache": str(w / "cache" / "kvm-probe.json"), "expect": "OK"},
                 {"changed": False, "skipped_boot": True}, plan="command", runs="qemu-system-x86_64")


def build_dirs(w, stack, keys):
    return entry({"dirs": {"test_work_dir": {"path": str(w / "work" / "a"), "mode": "0700"}}},
                 {"changed": True, "created": [str(w / "work"), str(w / "work" / "a")]})


def build_lock(w, stack, keys):
    # Check mode takes no lock, starts no holder and creates no lock file.
    (w / "work").mkdir()
    return entry({"path": str(w / "work"), "what": "check-mode work directory"},
                 {"changed": True, "held": True, "free": True})


def build_report(w, stack, keys):
    art = w / "stage1.aci"
    art.write_bytes(b"not really an aci")
    return entry({"path": str(art), "pipeline": "rkt_stage1", "title": "Stage1-kvm",
                  "stages": [{"stage": "aci", "status": "built", "seconds": 1.5}],
                  "inputs": {"kernel_version": "6.1"}, "versions": {"ansible-core": "2.19.0"},
                  "started": "2026-12-01T08:00:00Z"})


def build_stamp(w, stack, keys):
    art = w / "image.tgz"
    art.write_bytes(b"tgz")
    return entry({"artifact": str(art), "inputs": {"suite": "bookworm"}, "state": "present",
                  "writer": "pipeline:check_mode", "key_file": str(w / "keys" / "stamp.key")})


def chroot_command(w, stack, keys):
    # Documented partial: a command is not run, a change is reported and
    # the chroot command line that would run is returned.
    return entry({"root": str(tiny_root(w)), "cmd": "touch /marker", "creates": "/marker"},
                 plan="commands", runs="touch /marker")


def disk_image(w, stack, keys):
    (w / "out").mkdir()
    return entry({"src": str(tiny_root(w)), "dest": str(w / "out" / "root.img"), "size": "200M",
                  "formats": ["qcow2"], "stamp_key_file": str(w / "keys" / "stamp.key")})


def elf_closure(w, stack, keys):
    return entry({"root": str(tiny_root(w)), "dest": str(w / "closure"),
                  "files": [{"src": "/usr/bin/true", "dest": "/bin/true"}]})


def gpt_image(w, stack, keys):
    kernel = w / "bzImage"
    kernel.write_bytes(b"kernel")
    return entry({"dest": str(w / "out" / "disk.bin"), "formats": ["qcow2"],
                  "partitions": [{"label": "EFI-SYSTEM", "type": "efi", "blocks": 65536, "fs": "vfat",
                                  "files": [{"src": str(kernel), "dest": "/bzImage"}]},
                                 {"label": "ROOT", "type": "data", "blocks": 65536, "fs": "ext4",
                                  "src_dir": str(tiny_root(w))}]})


def guest_disk(w, stack, keys):
    return entry({"src": str(tiny_root(w)), "dest": str(w / "out" / "guest.img")})


def initramfs(w, stack, keys):
    return entry({"src": str(tiny_root(w)), "dest": str(w / "out" / "initrd.cpio.gz"),
                  "device_nodes": [{"path": "/dev/console", "type": "c", "major": 5, "minor": 1, "mode": "0600"}]})


def input_file(w, stack, keys):
    src = w / "agent"
    src.write_bytes(b"binary")
    return entry({"src": str(src), "sha256": hashlib.sha256(b"binary").hexdigest(),
                  "dest": str(w / "cache" / "agent")})


def input_file_url(w, stack, keys):
    served = w / "served"
    served.mkdir()
    (served / "agent").write_bytes(b"binary from the network")
    url = stack.enter_context(local_archive.serve(served))
    return entry({"src": url + "/agent", "sha256": hashlib.sha256(b"binary from the network").hexdigest(),
                  "dest": str(w / "cache" / "agent")})


def kernel_build(w, stack, keys):
    tarball = w / "linux-6.1.tar.xz"
    tarball.write_bytes(FAKE_KERNEL)
    return entry({"source": str(tarball), "source_sha256": hashlib.sha256(FAKE_KERNEL).hexdigest(),
                  "build_dir": str(w / "build"), "dest_dir": str(w / "out")},
                 {"changed": True, "source_verified": True, "rebuild_reason": "artifact missing"})


def kernel_build_unverified(w, stack, keys):
    # A local tarball without source_sha256: built unverified, with a warning.
    tarball = w / "linux-6.1.tar.xz"
    tarball.write_bytes(FAKE_KERNEL)
    return entry({"source": str(tarball), "build_dir": str(w / "build"), "dest_dir": str(w / "out")},
                 {"changed": True, "source_verified": False, "source_sha256": hashlib.sha256(FAKE_KERNEL).hexdigest()})


def release_mounts(w, stack, keys):
    # Something to release: a tmpfs mounted under the path; check mode
    # reports it and leaves it mounted (the test compares the mounts under
    # the work dir).
    point = w / "work" / "mnt"
    point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "check-mode", str(point)], check=True)
    stack.callback(subprocess.run, ["umount", str(point)], check=True)
    # And a temporary a killed write left beside an artifact: reported, kept.
    (w / "out").mkdir()
    (w / "out" / ".image.tgz.a1b2c3d4").write_bytes(b"half")
    return entry({"path": str(w / "work"), "partial_files": [str(w / "out" / "image.tgz")]})


def root_guard(w, stack, keys):
    # It only reads (documented): the same answer in check mode, no change.
    return entry({"root": str(tiny_root(w)), "paths": ["/etc/hostname", "/etc/name"]}, {"changed": False})


def rootfs_archive(w, stack, keys):
    return entry({"src": str(tiny_root(w)), "dest": str(w / "out" / "root.tar.gz"), "source_date_epoch": 1700000000})


def rootfs_bootstrap(w, stack, keys):
    (w / "out").mkdir()
    return entry({"dest": str(w / "out" / "bookworm.tar"), "suite": "bookworm", "check_mirror": False,
                  "package_cache_dir": str(w / "debs")})


def stemcell_package(w, stack, keys):
    image = w / "root.qcow2"
    image.write_bytes(b"not really a qcow2")
    return entry({"dest_dir": str(w / "out"), "version": "1.0", "infrastructure": "openstack", "hypervisor": "kvm",
                  "disk_format": "qcow2", "os_name": "ubuntu-jammy", "os_distro": "ubuntu", "image": str(image),
                  "disk_mb": 5120, "root": str(tiny_root(w))})


CASES = {
    "aci_image": aci_image,
    "archive_keyring": archive_keyring,
    "boot_test": boot_test,
    "build_dirs": build_dirs,
    "build_lock": build_lock,
    "build_report": build_report,
    "build_stamp": build_stamp,
    "chroot_command": chroot_command,
    "disk_image": disk_image,
    "elf_closure": elf_closure,
    "gpt_image": gpt_image,
    "guest_disk": guest_disk,
    "initramfs": initramfs,
    "input_file": input_file,
    "input_file:url": input_file_url,
    "kernel_build": kernel_build,
    "kernel_build:unverified": kernel_build_unverified,
    "release_mounts": release_mounts,
    "root_guard": root_guard,
    "rootfs_archive": rootfs_archive,
    "rootfs_bootstrap": rootfs_bootstrap,
    "stemcell_package": stemcell_package,
}


def modules():
    return sorted(f[:-3] for f in os.listdir(MODULES_DIR) if f.endswith(".py") and not f.startswith("_"))


def check_mode_support(module):
    with open(os.path.join(MODULES_DIR, module + ".py")) as f:
        text = f.read()
    doc = yaml.safe_load(text.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0])
    return doc["attributes"]["check_mode"]["support"]


def planned(value):
    """The commands of a plan key: one command line or a list of them."""
    return [value] if isinstance(value, str) else list(value or [])


def test_every_module_has_a_case():
    named = {name.split(":")[0] for name in CASES}
    missing = sorted(set(modules()) - named)
    assert not missing, "add a check-mode case to tests/integration/test_check_mode.py CASES for: %s" % missing
    assert not named - set(modules()), "CASES names modules that are gone: %s" % sorted(named - set(modules()))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    k = local_archive.Keys(tmp_path_factory.mktemp("gnupg"))
    k.genuine = k.generate("Genuine Archive Signing Key <archive@example.invalid>")
    yield k
    k.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_mode_writes_nothing(case, tmp_path, keys):
    module = case.split(":")[0]
    work = tmp_path / "work"
    work.mkdir()
    with contextlib.ExitStack() as stack:
        spec = CASES[case](work, stack, keys)
        support = check_mode_support(module)
        assert support == ("partial" if spec["plan"] else "full"), (
            "%s documents check_mode support %s; its case says %s" % (module, support, spec))
        # Mounts under the work dir only: other builds on the host mount and
        # unmount their own trees meanwhile.
        before, mounts = snapshot(work), mounts_under(str(work))
        res = run_module(module, spec["args"], check=True)
        after = snapshot(work)
        assert mounts_under(str(work)) == mounts, "check mode changed the mounts under the test's tree"
    assert res.get("failed") is not True, res.get("msg", res)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, "check mode of %s wrote under the test's tree: %s" % (module, changed)
    for key, want in spec["expect"].items():
        assert res.get(key) == want, "%s: %s is %r, not %r (%s)" % (module, key, res.get(key), want, res)
    if spec["plan"]:
        # A partial check mode returns what it would run, not an empty list.
        commands = planned(res.get(spec["plan"]))
        assert commands and any(spec["runs"] in c for c in commands), (
            "%s: check mode returned %s=%r, not the command it would run (%s)"
            % (module, spec["plan"], res.get(spec["plan"]), spec["runs"]))


@pytest.mark.parametrize("check", [True, False], ids=["check", "run"])
def test_kernel_build_refuses_a_url(tmp_path, check):
    """kernel_build builds, it does not download: a URL source (served on
    127.0.0.1, with its right sha256) is refused in check mode and in a real
    run, naming source and the module that fetches, and nothing is written;
    the fetch itself is input_file's (the input_file:url case)."""
    work = tmp_path / "work"
    served = work / "served"
    served.mkdir(parents=True)
    (served / "linux-6.1.tar.xz").write_bytes(FAKE_KERNEL)
    before = snapshot(work)
    with local_archive.serve(served) as url:
        for source in (url + "/linux-6.1.tar.xz", "file://%s/linux-6.1.tar.xz" % served):
            res = run_module("kernel_build", {"source": source,
                                              "source_sha256": hashlib.sha256(FAKE_KERNEL).hexdigest(),
                                              "build_dir": str(work / "build"), "dest_dir": str(work / "out")},
                             check=check)
            assert res.get("failed") is True, res
            assert res["msg"].startswith("source=%s is a URL" % source), res["msg"]
            assert "osimage.builder.input_file" in res["msg"] and "get_url" in res["msg"], res["msg"]
    assert snapshot(work) == before, "kernel_build wrote under the test's tree for a URL source"

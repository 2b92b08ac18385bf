"""The build host is never at risk, whatever the image or the variables hold
(issue 9, section 3), shown with stand-ins under the test's tmp dir:

- teardown scope: a root or a work directory that is / or a directory of the
  host's own system is refused before anything is released (a canary bind
  mount elsewhere stays mounted), and disk_image only releases its own;
- symlinks inside the image: an image whose /etc or /etc/ssh is an absolute
  symlink to a decoy "host" directory leaves the decoy untouched, through
  chroot_command's set-up and the roles' SSH-key cleanup;
- inputs that name paths: creates/removes are resolved inside the root;
- checksums: a wrong sha256 for a local kernel tarball writes nothing;
- untrusted tarballs and ACIs: escapes refused, privileges dropped.

The image roots are small busybox trees, so these run in seconds."""
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import REPO, mounts_under, needs_root, run_module, run_playbook

pytestmark = [needs_root]

APPLETS = ["sh", "rm", "test", "[", "echo", "cat", "touch", "ls", "true", "mkdir", "chmod", "stat"]


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def snapshot(top):
    """Every entry below `top` with its type, mode and content: what a
    decoy must still hold afterwards."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            data = open(full, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(full, top)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), data)
    return out


@pytest.fixture
def canary(tmp_path):
    """A bind mount that a sweep of / (or of /tmp, where tmp_path lives)
    would take away."""
    src, point = tmp_path / "canary-src", tmp_path / "canary"
    src.mkdir()
    point.mkdir()
    subprocess.run(["mount", "--bind", str(src), str(point)], check=True)
    try:
        yield str(point)
    finally:
        if is_mounted(str(point)):
            subprocess.run(["umount", str(point)], check=True)


def make_root(path):
    """A busybox image root: enough for chroot_command to run a shell."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.skip("busybox-static is not installed (./osimage setup installs it)")
    (path / "bin").mkdir(parents=True)
    shutil.copy(busybox, path / "bin" / "busybox")
    for applet in APPLETS:
        (path / "bin" / applet).symlink_to("busybox")
    for d in ("usr/sbin", "dev", "proc", "sys", "root"):
        (path / d).mkdir(parents=True, exist_ok=True)
    return str(path)


@pytest.fixture
def decoy(tmp_path):
    """The "host's" own files, that nothing may touch."""
    host = tmp_path / "host"
    (host / "etc/ssh").mkdir(parents=True)
    (host / "sbin").mkdir()
    (host / "proc").mkdir()
    for key in ("ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_ed25519_key"):
        (host / "etc/ssh" / key).write_text("HOST KEY %s\n" % key)
    (host / "etc/ssh/sshd_config").write_text("# the host's sshd_config\n")
    (host / "etc/resolv.conf").write_text("nameserver 192.0.2.1  # the host's\n")
    (host / "etc/hostname").write_text("buildhost\n")
    (host / "etc/fstab").write_text("# the host's fstab\n")
    return str(host)


# -- 1. teardown scope -------------------------------------------------------

@pytest.mark.parametrize("root", ["/", "/var/tmp", "/tmp", "/home", "/proc/..", "/usr"])
def test_chroot_command_refuses_the_hosts_own_directories_before_releasing(canary, root):
    res = run_module("chroot_command", {"root": root, "cmd": "true"})
    assert res.get("failed") is True and "root=%s cannot be an image root" % root in res["msg"], res
    assert is_mounted(canary)


@pytest.mark.parametrize("path,check", [("/", False), ("/", True), ("/var/tmp", False), ("/tmp", False),
                                        ("/run", False), ("/home/", False)])
def test_release_mounts_refuses_the_hosts_own_directories(canary, path, check):
    res = run_module("release_mounts", {"path": path}, check=check)
    assert res.get("failed") is True and "path=%s would release every mount" % path in res["msg"], res
    assert is_mounted(canary)


def test_release_mounts_refuses_roots_outside_its_path(tmp_path, canary):
    (tmp_path / "work").mkdir()
    res = run_module("release_mounts", {"path": str(tmp_path / "work"), "roots": [str(tmp_path)]})
    assert res.get("failed") is True and "roots: %s is not under path=" % tmp_path in res["msg"]
    assert is_mounted(canary)


def _disk_src(tmp_path, decoy):
    src = tmp_path / "src"
    (src / "boot").mkdir(parents=True)
    (src / "etc").symlink_to(os.path.join(decoy, "etc"))  # fstab goes through it unless resolved in the image
    (src / "usr/bin").mkdir(parents=True)
    (src / "usr/bin/tool").write_text("#!/bin/sh\n")
    return str(src)


def test_disk_image_refuses_a_dest_in_slash(tmp_path, canary, decoy):
    os.makedirs(os.path.join(decoy, "etc"), exist_ok=True)
    res = run_module("disk_image", {"src": _disk_src(tmp_path, decoy), "dest": "/osimage-host-safety-test.img",
                                    "size": "128M", "bootloader": "none"})
    assert res.get("failed") is True and "dest=/osimage-host-safety-test.img" in res["msg"], res
    assert not [n for n in os.listdir("/") if "osimage-host-safety-test" in n]
    assert is_mounted(canary)


def test_disk_image_in_a_shared_directory_releases_only_its_own(tmp_path, decoy):
    """dest sits in a directory shared with another build (a bind mount
    stands for it): the build never releases it, and the image's /etc
    symlink to the "host's" /etc never leads the fstab write there."""
    shared = tmp_path / "shared"
    other_src, other = tmp_path / "other-src", shared / "other-build"
    other_src.mkdir()
    other.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(other_src), str(other)], check=True)
    before = snapshot(decoy)
    args = {"src": _disk_src(tmp_path, decoy), "dest": str(shared / "disk.img"), "size": "128M",
            "bootloader": "none", "fs_uuid": "0b1c5a2e-7c52-4d1e-9d0a-2f6f6b0c9a11"}
    try:
        res = run_module("disk_image", args)
        assert res.get("changed") is True, res.get("msg")
        assert is_mounted(str(other))
        assert sorted(os.listdir(shared)) == ["disk.img", "disk.img.stamp.json", "other-build"]
        assert run_module("disk_image", args)["changed"] is False
        assert is_mounted(str(other))
    finally:
        if is_mounted(str(other)):
            subprocess.run(["umount", str(other)], check=True)
    assert snapshot(decoy) == before


# -- 2. symlinks inside the image ---------------------------------------------

@pytest.fixture(params=["etc", "etc/ssh"])
def linked_root(request, tmp_path, decoy):
    """An image root whose /etc (or /etc/ssh) is an absolute symlink to the
    decoy's, with its own keys where chroot resolves that symlink inside it;
    /usr/sbin and /proc point at the decoy too."""
    root = tmp_path / "root"
    make_root(root)
    link = request.param
    if link != "etc":
        (root / "etc").mkdir()
    (root / link).symlink_to(os.path.join(decoy, link))
    own = root / os.path.join(decoy, "etc/ssh").lstrip("/")  # what /etc/ssh names inside the image
    own.mkdir(parents=True)
    (own / "ssh_host_rsa_key").write_text("IMAGE KEY\n")
    shutil.rmtree(root / "usr/sbin")
    (root / "usr/sbin").symlink_to(os.path.join(decoy, "sbin"))
    shutil.rmtree(root / "proc")
    (root / "proc").symlink_to(os.path.join(decoy, "proc"))
    (root / "root/firstboot_done").write_text("")
    return str(root), str(own)


@pytest.fixture
def readonly_decoy(decoy):
    """The decoy, read-only for the duration: a write that follows the
    image's symlinks onto it fails there and then, even one a teardown
    would have undone (resolv.conf renamed aside and back)."""
    subprocess.run(["mount", "--bind", decoy, decoy], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", decoy, decoy], check=True)
    try:
        yield decoy
    finally:
        subprocess.run(["umount", decoy], check=True)


def test_chroot_command_set_up_never_touches_the_decoy(linked_root, readonly_decoy):
    root, _own = linked_root
    decoy = readonly_decoy
    before = snapshot(decoy)
    # /proc/self/status is only there when proc was mounted where the
    # image's /proc symlink leads inside the root, not on the decoy.
    res = run_module("chroot_command", {
        "root": root,
        "cmd": "test -s /etc/resolv.conf && test -x /usr/sbin/policy-rc.d && test -e /proc/self/status"
               " && test -d /dev/pts && echo set-up-ok"})
    assert res.get("failed") is not True and "set-up-ok" in res["stdout"], res
    assert snapshot(decoy) == before
    assert mounts_under(decoy) == [os.path.realpath(decoy)] and mounts_under(root) == []
    # Inside the image the set-up is undone as well.
    assert not os.path.lexists(os.path.join(root, decoy.lstrip("/"), "sbin", "policy-rc.d"))


def test_chroot_command_apt_cache_bind_is_resolved_in_the_root(tmp_path, decoy):
    root = tmp_path / "root"
    make_root(root)
    (root / "var").symlink_to(decoy)  # /var/cache/apt/archives would be <decoy>/cache/apt/archives
    before = snapshot(decoy)
    res = run_module("chroot_command", {"root": str(root), "packages": ["less"], "update_cache": False,
                                        "apt_cache_dir": str(tmp_path / "cache")})
    # The busybox root has no apt-get: the command fails, after the cache
    # was bind-mounted (inside the root) and released again.
    assert res.get("failed") is True and "apt install inside" in res["msg"], res
    assert snapshot(decoy) == before
    assert mounts_under(str(root)) == [] and mounts_under(decoy) == []
    assert os.path.isdir(os.path.join(str(root), decoy.lstrip("/"), "cache/apt/archives"))


@pytest.mark.parametrize("task_file,var", [("roles/stemcell/tasks/bosh_clean_ssh.yml", "__stemcell_chroot"),
                                           ("roles/os_image/tasks/clean_machine_id.yml", "__os_image_chroot")])
def test_role_ssh_key_cleanup_never_touches_the_decoy(tmp_path, linked_root, decoy, task_file, var):
    root, own = linked_root
    before = snapshot(decoy)
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {var: root, "ansible_python_interpreter": sys.executable},
        "tasks": [{"name": "The role's task file", "ansible.builtin.include_tasks": os.path.join(REPO, task_file)}],
    }]))
    rc, stats, results = run_playbook(str(play), inventory="localhost,")
    assert rc == 0, [r.get("msg") for r in results if r.get("failed")]
    assert snapshot(decoy) == before
    assert not os.path.exists(os.path.join(own, "ssh_host_rsa_key"))
    if "stemcell" in task_file:
        assert not os.path.exists(os.path.join(root, "root/firstboot_done"))
    assert stats["changed"] >= 1
    if "os_image" in task_file:
        # Its apt-lists sweep empties the image's /tmp, where this test's
        # stand-in for the host lives inside the image: no second run.
        return
    rc, stats, results = run_playbook(str(play), inventory="localhost,")
    assert rc == 0, [r.get("msg") for r in results if r.get("failed")]
    assert stats["changed"] == 0


# -- 3. inputs that name paths ------------------------------------------------

def test_creates_and_removes_are_resolved_inside_the_root(tmp_path, decoy):
    root = tmp_path / "root"
    make_root(root)
    (root / "etc").symlink_to(os.path.join(decoy, "etc"))
    # <decoy>/etc/hostname exists on the host but not in the image.
    ran = run_module("chroot_command", {"root": str(root), "cmd": "echo ran", "creates": "/etc/hostname"})
    assert ran["changed"] is True and "ran" in ran["stdout"], ran
    skipped = run_module("chroot_command", {"root": str(root), "cmd": "echo ran", "removes": "/etc/hostname"})
    assert skipped["changed"] is False and "does not exist in the root" in skipped["skipped_reason"]
    for key in ("creates", "removes"):
        res = run_module("chroot_command", {"root": str(root), "cmd": "true", key: "../../../etc/hostname"})
        assert res.get("failed") is True and "%s=../../../etc/hostname" % key in res["msg"]
        assert "climbs out of the image root" in res["msg"]


# -- 4. checksums that cannot fail --------------------------------------------

def _kernel_args(tmp_path, **extra):
    tarball = tmp_path / "linux-6.1.tar.xz"
    if not tarball.exists():
        tarball.write_bytes(b"not really a kernel")
    a = {"source": str(tarball), "build_dir": str(tmp_path / "build"), "dest_dir": str(tmp_path / "out")}
    a.update(extra)
    return a


def test_kernel_build_refuses_a_wrong_sha256_and_writes_nothing(tmp_path):
    for check in (False, True):
        res = run_module("kernel_build", _kernel_args(tmp_path, source_sha256="0" * 64), check=check)
        assert res.get("failed") is True and "refusing to build it" in res["msg"], res
    assert sorted(os.listdir(tmp_path)) == ["linux-6.1.tar.xz"]


def test_kernel_build_refuses_a_url_and_reports_a_local_tarball_unverified(tmp_path):
    # kernel_build does not download: input_file or get_url fetch first.
    url = run_module("kernel_build", _kernel_args(tmp_path, source="https://127.0.0.1:9/linux-6.1.tar.xz"))
    assert url.get("failed") is True and "is a URL" in url["msg"] and "input_file" in url["msg"], url
    bad = run_module("kernel_build", _kernel_args(tmp_path, source_sha256="abc"))
    assert bad.get("failed") is True and "source_sha256=abc is not a sha256" in bad["msg"]
    res = run_module("kernel_build", _kernel_args(tmp_path), check=True)
    assert res.get("failed") is not True and res["source_verified"] is False, res
    assert res["source_sha256"] == hashlib.sha256(b"not really a kernel").hexdigest()
    assert any("unverified" in w for w in res.get("warnings", []))
    good = run_module("kernel_build", _kernel_args(tmp_path, source_sha256=res["source_sha256"]), check=True)
    assert good["source_verified"] is True
    assert sorted(os.listdir(tmp_path)) == ["linux-6.1.tar.xz"]


# -- 5. untrusted tarballs ----------------------------------------------------

def _tarball(path, members):
    """members: (name, kind, extra) with kind file/dir/sym/hard/chr and extra
    the content, link target or mode."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = extra
                tar.addfile(info)
            elif kind == "chr":
                info.type, info.mode, info.devmajor, info.devminor = tarfile.CHRTYPE, 0o666, 1, 3
                tar.addfile(info)
            else:
                data, mode = extra if isinstance(extra, tuple) else (extra, 0o644)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
    return str(path)


PLAIN = [("./", "dir", None), ("./etc", "dir", None), ("./etc/hostname", "file", b"image\n"),
         ("./usr", "dir", None), ("./usr/bin", "dir", None), ("./usr/bin/su", "file", (b"#!/bin/sh\n", 0o4755)),
         ("./usr/bin/wall", "file", (b"#!/bin/sh\n", 0o2755)), ("./bin", "sym", "usr/bin"),
         ("./etc/localtime", "sym", "/usr/share/zoneinfo/UTC"), ("./dev", "dir", None),
         ("./dev/null", "chr", None)]


def test_untrusted_tarball_is_unpacked_without_its_privileges(tmp_path):
    tgz = _tarball(tmp_path / "vendor.tgz", PLAIN)
    dest = str(tmp_path / "chroot")
    args = {"src": tgz, "dest": dest, "state": "unpacked", "trusted": False}
    check = run_module("rootfs_archive", args, check=True)
    assert check["changed"] is True and check["dropped"] == {"devices": ["dev/null"],
                                                             "setid": ["usr/bin/su", "usr/bin/wall"]}, check
    assert not os.path.exists(dest)
    res = run_module("rootfs_archive", args)
    assert res["changed"] is True and res["dropped"]["devices"] == ["dev/null"], res
    assert stat.S_IMODE(os.stat(os.path.join(dest, "usr/bin/su")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(dest, "usr/bin/wall")).st_mode) == 0o755
    assert not os.path.lexists(os.path.join(dest, "dev/null"))
    assert os.readlink(os.path.join(dest, "etc/localtime")) == "/usr/share/zoneinfo/UTC"
    assert run_module("rootfs_archive", args)["changed"] is False
    # Trusted again (the default): a different unpack, privileges kept.
    trusted = run_module("rootfs_archive", dict(args, trusted=True))
    assert trusted["changed"] is True and "dropped" not in trusted
    assert stat.S_IMODE(os.stat(os.path.join(dest, "usr/bin/su")).st_mode) == 0o4755


@pytest.mark.parametrize("extra,words", [
    ([("/etc/cron.d/evil", "file", b"x")], "escapes the root"),
    ([("./usr/../../evil", "file", b"x")], "escapes the root"),
    ([("./usr/bin/shadow", "hard", "/etc/shadow")], "points out of the root"),
    ([("./host", "sym", "/"), ("./host/etc/cron.d/evil", "file", b"x")], "is written through the symlink 'host'"),
])
def test_untrusted_tarball_that_escapes_is_refused_with_nothing_written(tmp_path, extra, words):
    tgz = _tarball(tmp_path / "vendor.tgz", PLAIN + extra)
    for check in (True, False):
        res = run_module("rootfs_archive", {"src": tgz, "dest": str(tmp_path / "chroot"), "state": "unpacked",
                                            "trusted": False}, check=check)
        assert res.get("failed") is True and "refused with trusted=false" in res["msg"] and words in res["msg"], res
    assert sorted(os.listdir(tmp_path)) == ["vendor.tgz"]


def _aci(path, members):
    buf = io.BytesIO()
    manifest = json.dumps({"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/test",
                           "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}]})
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, extra in [("manifest", "file", manifest.encode()), ("rootfs", "dir", None)] + members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind in ("sym", "hard"):
                info.type, info.linkname = (tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE), extra
                tar.addfile(info)
            elif kind in ("chr", "blk", "fifo"):
                info.type = {"chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
                tar.addfile(info)
            else:
                info.size = len(extra)
                tar.addfile(info, io.BytesIO(extra))
    with gzip.open(path, "wb") as f:
        f.write(buf.getvalue())
    return str(path)


@pytest.mark.parametrize("members,words", [
    ([("rootfs/dev", "dir", None), ("rootfs/dev/sda", "blk", None)], "is a device node"),
    ([("rootfs/etc", "sym", "../../etc")], "points out of rootfs"),
    ([("rootfs/shadow", "hard", "/etc/shadow")], "does not point to an earlier member of rootfs"),
    ([("rootfs/host", "sym", "/"), ("rootfs/host/x", "file", b"x")], "is written through the symlink"),
])
def test_aci_validation_checks_member_types_and_link_targets(tmp_path, members, words):
    res = run_module("aci_image", {"dest": _aci(tmp_path / "bad.aci", members), "state": "validated"})
    assert res.get("failed") is True and words in res["msg"], res.get("msg")


def test_aci_validation_accepts_links_that_stay_inside_rootfs(tmp_path):
    members = [("rootfs/bin", "dir", None), ("rootfs/bin/busybox", "file", b"x"), ("rootfs/bin/sh", "sym", "busybox"),
               ("rootfs/bin/ash", "hard", "rootfs/bin/busybox"), ("rootfs/etc", "dir", None),
               ("rootfs/etc/localtime", "sym", "/usr/share/zoneinfo/UTC"), ("rootfs/run", "dir", None),
               ("rootfs/run/fifo", "fifo", None)]
    res = run_module("aci_image", {"dest": _aci(tmp_path / "good.aci", members), "state": "validated"})
    assert res.get("failed") is not True, res.get("msg")
    # appc spec: the image id is the sha512 of the uncompressed tar; the
    # manifest is handed back as read.
    plain = gzip.decompress((tmp_path / "good.aci").read_bytes())
    assert res["image_id"] == "sha512-" + hashlib.sha512(plain).hexdigest() and res["changed"] is False, res
    assert res["manifest"]["name"] == "example.com/test"


# -- 2b. the roles' own host-side writes (copy, template, lineinfile) -------

@pytest.mark.parametrize("linked_root,role,stage,written", [
    ("etc", "os_image", "base_ssh", "/etc/ssh/sshd_config"),
    ("etc/ssh", "os_image", "base_ssh", "/etc/ssh/sshd_config"),
    ("etc", "stemcell", "bosh_harden", "/etc/hosts"),
], indirect=["linked_root"])
def test_a_stage_refuses_an_image_whose_symlinks_lead_onto_the_host(tmp_path, linked_root, decoy, role, stage,
                                                                    written):
    """The pipeline runner runs the role's root_guard (pipeline_before_each_stage)
    before the stage: every path the role writes from the host (sshd_config,
    hosts) is checked, an image whose /etc or /etc/ssh leads to the host is
    refused, and the host's files stay as they were. One stage of the
    runner, with the role's own variables (its defaults and vars/main.yml)."""
    root, _own = linked_root
    before = snapshot(decoy)
    role_dir = os.path.join(REPO, "roles", role)
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "vars_files": [os.path.join(role_dir, "defaults", "main.yml"), os.path.join(role_dir, "vars", "main.yml")],
        "tasks": [{"name": "One stage of the role on the runner", "ansible.builtin.include_role": {
            "name": "osimage.builder.pipeline", "tasks_from": "_stage.yml"},
            "vars": {"__%s_chroot" % role: root, "__pipeline_stage": stage,
                     "__pipeline_stage_index": 1, "__pipeline_resume_index": 0, "__pipeline_timings": [],
                     "pipeline_stage_dir": os.path.join(role_dir, "tasks"),
                     "pipeline_work_dir": str(tmp_path / "work"),
                     "pipeline_before_each_stage": os.path.join(role_dir, "tasks", "_root_guard.yml")}}],
    }]))
    rc, _stats, results = run_playbook(str(play), inventory="localhost,")
    msgs = [r.get("msg", "") for r in results if r.get("failed")]
    assert rc != 0 and len(msgs) == 1, msgs
    assert "stage %s: the image root %s is refused" % (stage, root) in msgs[0]
    assert "leads out of the image on the build host" in msgs[0] and written in msgs[0]
    assert snapshot(decoy) == before


def test_root_guard_accepts_links_that_stay_inside_and_replaced_links(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text("ID=debian\n")
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    (root / "etc/localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    (root / "etc/mtab").symlink_to("../../../../../../../proc/self/mounts")
    args = {"root": str(root), "paths": ["/etc/os-release", "/etc/localtime", "/etc/missing/file"],
            "replaced": ["/etc/localtime"]}
    res = run_module("root_guard", args)
    assert res.get("failed") is not True and res["changed"] is False and res["checked"] == 3, res
    assert run_module("root_guard", args, check=True)["changed"] is False
    # The same link written through (lineinfile) leads to the host's zoneinfo: refused.
    res = run_module("root_guard", dict(args, replaced=[]))
    assert res.get("failed") is True and "/etc/localtime is a symlink to /usr/share/zoneinfo/Etc/UTC" in res["msg"]
    # A relative link that climbs out of the root is caught as well.
    res = run_module("root_guard", {"root": str(root), "paths": ["/etc/*"]})
    assert res.get("failed") is True and "/etc/mtab is a symlink to ../../../../../../../proc/self/mounts" in res["msg"]
    assert run_module("root_guard", {"root": "/", "paths": ["/etc"]})["msg"].startswith("root=/ is the build host")

"""The build host's one table of programs and packages: every program the
pipelines run is there with the package that really provides it, and a module
that runs a program the host lacks says which one and which package to
install, before it writes anything."""
import os
import shutil
import subprocess

from ansible_collections.osimage.builder.plugins.module_utils._build_host import (
    PROGRAMS,
    missing_message,
    packages,
)
from tests.conftest import loops_under, needs_root, run_module

pytestmark = [needs_root]

SEARCH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def path_without(tmp_path, program):
    """A PATH holding every program of this machine except `program`: one
    directory of symlinks. (Ansible's get_bin_path always adds /sbin,
    /usr/sbin and /usr/local/sbin, so only a program outside those can be
    hidden this way.)"""
    d = tmp_path / ("path-without-" + program)
    d.mkdir()
    for directory in SEARCH.split(":"):
        if directory.endswith("sbin") or not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            if name != program and not (d / name).exists() and os.access(target, os.X_OK):
                (d / name).symlink_to(target)
    assert shutil.which(program, path=str(d)) is None
    return str(d)


def owning_package(path):
    """The Debian package dpkg says owns a file (trying the /usr-merged twin too)."""
    real = os.path.realpath(path)
    candidates = {path, real}
    for p in list(candidates):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
            if p.startswith(a):
                candidates.add(b + p[len(a):])
            elif p.startswith(b):
                candidates.add(a + p[len(b):])
    for p in sorted(candidates):
        out = subprocess.run(["dpkg-query", "-S", p], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if ": " in line and not line.startswith("diversion "):
                return {n.strip().split(":")[0] for n in line.split(": ", 1)[0].split(",")}
    return set()


def test_every_program_is_provided_by_the_package_the_table_names():
    wrong = {}
    for program, package in PROGRAMS.items():
        path = shutil.which(program, path=SEARCH)
        assert path, missing_message(program) + " although ./osimage setup installed the build-host packages"
        owners = owning_package(path)
        # gcc is the unversioned driver; dpkg lists the versioned package (gcc-12) as the owner.
        if package not in owners and not any(o.startswith(package + "-") for o in owners):
            wrong[program] = (package, sorted(owners))
    assert wrong == {}


def test_the_package_list_holds_every_programs_package_and_is_installed():
    names = packages(tests=True)
    assert set(PROGRAMS.values()) <= set(names) and "grub2-common" in names
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n"] + names,
                         capture_output=True, text=True, check=False).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    assert sorted(set(names) - installed) == []


def test_a_module_names_the_missing_program_and_its_package(tmp_path):
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"not a kernel")
    log = tmp_path / "console" / "boot.log"
    res = run_module("boot_test", {"kernel": str(kernel), "console_log": str(log)},
                     env={"PATH": path_without(tmp_path, "qemu-system-x86_64")})
    assert res.get("failed") is True
    assert res["msg"] == "qemu-system-x86_64 not found on the build host (Debian package: qemu-system-x86)"
    assert not log.parent.exists()


def test_a_disk_whose_converter_is_missing_fails_before_anything_is_written(tmp_path):
    src = tmp_path / "root"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_text("x\n")
    out = tmp_path / "out"
    out.mkdir()
    args = {"src": str(src), "dest": str(out / "root.img"), "size": "200M", "bootloader": "none",
            "formats": ["qcow2"]}
    res = run_module("disk_image", args, env={"PATH": path_without(tmp_path, "qemu-img")})
    assert res.get("failed") is True, res
    assert "qemu-img not found on the build host (Debian package: qemu-utils)" in res["msg"]
    assert os.listdir(out) == [] and loops_under(str(tmp_path)) == []


def test_boot_test_in_check_mode_boots_nothing_and_writes_nothing(tmp_path):
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"not a kernel")
    log = tmp_path / "console" / "boot.log"
    cache = tmp_path / "cache" / "kvm-probe.json"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = run_module("boot_test", {"kernel": str(kernel), "console_log": str(log), "kvm_probe_cache": str(cache)},
                     check=True)
    assert res.get("failed") is not True and res["changed"] is False and res["skipped_boot"] is True
    assert res["command"].startswith("qemu-system-x86_64 -accel tcg") and str(kernel) in res["command"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before

"""chroot_command on a real image root: what it provides, that it always
tears it down (success, failure, signals, a killed run), idempotence."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import BIN, ansible_env, mounts_under, needs_root, run_module

pytestmark = [needs_root, pytest.mark.slow]


def test_provides_proc_dev_resolv_conf_and_policy_rc_d_then_removes_them(image_root):
    had_resolv = os.path.lexists(os.path.join(image_root, "etc/resolv.conf"))
    res = run_module("chroot_command", {
        "root": image_root,
        "cmd": "test -e /proc/self/status && test -c /dev/null && test -d /dev/pts && test -d /sys/kernel"
               " && test -s /etc/resolv.conf && /usr/sbin/policy-rc.d; echo policy=$?"})
    assert res["changed"] is True and res["rc"] == 0, res
    assert "policy=101" in res["stdout"]
    assert mounts_under(image_root) == []
    assert not os.path.exists(os.path.join(image_root, "usr/sbin/policy-rc.d"))
    assert os.path.lexists(os.path.join(image_root, "etc/resolv.conf")) == had_resolv


def test_failure_names_the_command_and_releases_everything(image_root):
    res = run_module("chroot_command", {"root": image_root, "cmd": "echo boom >&2; exit 3"})
    assert res.get("failed") is True
    assert res["rc"] == 3 and "boom" in res["stderr"]
    assert "command inside %s failed" % image_root in res["msg"] and "exit 3" in res["msg"]
    assert mounts_under(image_root) == []


def test_creates_and_removes_and_check_mode(image_root):
    args = {"root": image_root, "cmd": "touch /marker", "creates": "/marker"}
    check = run_module("chroot_command", args, check=True)
    assert check["changed"] is True and not os.path.exists(os.path.join(image_root, "marker"))
    assert run_module("chroot_command", args)["changed"] is True
    again = run_module("chroot_command", args)
    assert again["changed"] is False and "creates=/marker exists" in again["skipped_reason"]
    gone = run_module("chroot_command", {"root": image_root, "cmd": "true", "removes": "/nonexistent"})
    assert gone["changed"] is False


def test_packages_are_installed_once(image_root, package_cache):
    args = {"root": image_root, "packages": ["less"], "apt_cache_dir": package_cache}
    check = run_module("chroot_command", args, check=True)
    assert check["changed"] is True and check["packages_changed"] == ["less"]
    assert not os.path.exists(os.path.join(image_root, "usr/bin/less"))
    first = run_module("chroot_command", args)
    assert first["changed"] is True, first
    assert os.path.exists(os.path.join(image_root, "usr/bin/less"))
    second = run_module("chroot_command", args)
    assert second["changed"] is False and second["packages_changed"] == []
    assert any(n.startswith("less_") for n in os.listdir(package_cache))
    assert mounts_under(image_root) == []


def test_missing_package_fails_clearly(image_root, package_cache):
    res = run_module("chroot_command", {"root": image_root, "packages": ["no-such-package-osimage-builder"],
                                        "apt_cache_dir": package_cache})
    assert res.get("failed") is True
    assert "apt install inside" in res["msg"] and "no-such-package-osimage-builder" in res["msg"]
    assert mounts_under(image_root) == []


def test_bad_root_is_an_error(tmp_path):
    res = run_module("chroot_command", {"root": str(tmp_path), "cmd": "true"})
    assert res.get("failed") is True and "is not an image root" in res["msg"]


def _start(image_root, cmd):
    argv = [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + sys.executable, "-m", "osimage.builder.chroot_command",
            "-a", '{"root": "%s", "cmd": "%s"}' % (image_root, cmd)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ansible_env(),
                            start_new_session=True)
    for _attempt in range(300):
        if len(mounts_under(image_root)) >= 4:
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("chroot mounts never appeared")


def _pids(proc, pattern):
    """Descendants of this test's ansible run whose command line has `pattern`
    (ansible's workers start sessions of their own, so no process group)."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=False).stdout
    rows = [line.split(None, 2) for line in out.splitlines()]
    children = {}
    for pid, ppid, *args in rows:
        children.setdefault(int(ppid), []).append((int(pid), args[0] if args else ""))
    found, todo = [], [proc.pid]
    while todo:
        for pid, args in children.get(todo.pop(), []):
            todo.append(pid)
            if pattern in args and not args.startswith("/bin/sh"):
                found.append(pid)
    return found


def test_ctrl_c_tears_everything_down(image_root):
    proc = _start(image_root, "sleep 60")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    proc.communicate(timeout=60)
    assert mounts_under(image_root) == []
    assert not os.path.exists(os.path.join(image_root, "usr/sbin/policy-rc.d"))


def test_sigterm_to_the_module_tears_everything_down(image_root):
    proc = _start(image_root, "sleep 60")
    pids = _pids(proc, "AnsiballZ_chroot_command")
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert mounts_under(image_root) == []


def test_a_killed_run_is_cleaned_up_by_the_next(image_root):
    proc = _start(image_root, "sleep 60")
    pids = _pids(proc, "AnsiballZ_chroot_command") + _pids(proc, "sleep 60")
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert len(mounts_under(image_root)) >= 4, "SIGKILL should have left the mounts (nothing can run on SIGKILL)"
    res = run_module("chroot_command", {"root": image_root, "cmd": "true"})
    assert res["rc"] == 0
    assert len(res["released"]) >= 4
    assert mounts_under(image_root) == []
    assert not os.path.exists(os.path.join(image_root, "usr/sbin/policy-rc.d"))

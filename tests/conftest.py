"""Shared test helpers: run the collection's modules and playbooks for real,
through ansible itself, and read their JSON results."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, "collections")
BIN = os.path.dirname(sys.executable)
JUNIT_DIR = os.environ.get("OSIMAGE_TEST_JUNIT_DIR") or os.path.join(tempfile.gettempdir(), "osimage-test-junit")

# Make `ansible_collections.osimage.builder...` importable for unit tests.
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


# What a whole run needs under pytest's base temp (the OS image, the stemcell,
# the guest and KurmaOS builds, the fresh root) plus the caches it fills.
MIN_FREE_GIB = float(os.environ.get("OSIMAGE_TEST_MIN_FREE_GIB", "30"))


def _free_gib(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 2 ** 30


def pytest_report_header(config):
    tmp = tempfile.gettempdir()
    return "free space: %s %.1f GiB (the whole suite needs about %.0f GiB)" % (tmp, _free_gib(tmp), MIN_FREE_GIB)


def pytest_sessionstart(session):
    """Refuse to start a run that would fill the disk an hour in. Only runs
    that include the slow tests need the space; `-m "not slow"` runs anyway."""
    config = session.config
    markexpr = config.getoption("markexpr", "") or ""
    if "not slow" not in markexpr and not config.getoption("collectonly", False):
        tmp = tempfile.gettempdir()
        free = _free_gib(tmp)
        if free < MIN_FREE_GIB:
            pytest.exit("only %.1f GiB free under %s; the whole suite needs about %.0f GiB (its images). Remove old "
                        "runs' directories (%s/pytest-of-*) or set OSIMAGE_TEST_MIN_FREE_GIB."
                        % (free, tmp, MIN_FREE_GIB, tmp), returncode=3)
    # The JUnit files describe the last run only.
    if "OSIMAGE_TEST_JUNIT_DIR" not in os.environ and os.path.isdir(JUNIT_DIR):
        for name in os.listdir(JUNIT_DIR):
            if name.endswith(".xml"):
                os.unlink(os.path.join(JUNIT_DIR, name))


def ansible_env(**extra):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        # Every playbook run of the suite also leaves a JUnit file (a test case
        # per task, grouped by task file: the stages), for CI systems to show
        # per-task results: OSIMAGE_TEST_JUNIT_DIR, or a directory under /tmp.
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.junit",
        "JUNIT_OUTPUT_DIR": JUNIT_DIR,
        "JUNIT_TASK_CLASS": "true",
        "JUNIT_HIDE_TASK_ARGUMENTS": "true",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "PATH": BIN + os.pathsep + env.get("PATH", ""),
    })
    env.update(extra)
    return env


def _task_results(out):
    data = json.loads(out[out.index("{"):])
    results = []
    for play in data["plays"]:
        for task in play["tasks"]:
            for res in task["hosts"].values():
                res = dict(res)
                res["_task"] = task["task"]["name"].split(" : ", 1)[-1]
                results.append(res)
    return data, results


def run_module(module, args, check=False, timeout=900, env=None):
    """Run osimage.builder.<module> on localhost; return its result dict.
    `env` overrides variables of the module's environment (PATH, ...)."""
    argv = [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + sys.executable,
            "-m", "osimage.builder." + module, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(**(env or {})), timeout=timeout,
                          cwd=REPO, check=False)
    try:
        _data, results = _task_results(proc.stdout)
    except ValueError as exc:
        raise AssertionError("no JSON from ansible: rc=%s\n%s\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr)) from exc
    return results[-1]


def run_playbook(playbook, extra_vars=None, inventory=None, timeout=3600, env=None):
    """Run a playbook; return (rc, stats of localhost, task results)."""
    argv = [os.path.join(BIN, "ansible-playbook"), playbook]
    if inventory:
        argv += ["-i", inventory]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(**(env or {})),
                          timeout=timeout, cwd=REPO, check=False)
    try:
        data, results = _task_results(proc.stdout)
    except ValueError as exc:
        raise AssertionError("no JSON from ansible-playbook: rc=%s\n%s\n%s"
                             % (proc.returncode, proc.stdout[-5000:], proc.stderr[-5000:])) from exc
    stats = next(iter(data["stats"].values())) if data["stats"] else {}
    return proc.returncode, stats, results


def failed_msgs(results):
    return [r.get("msg", "") for r in results if r.get("failed")]


def mounts_under(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f
                if line.split()[4] == path or line.split()[4].startswith(path.rstrip("/") + "/")]


def loops_under(path):
    out = subprocess.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
                         capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if os.path.realpath(path) in line]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chroot, mounts and loop devices")


def _ubuntu_archive_answers():
    """debootstrap's own default mirror for jammy, as the role would use it."""
    import urllib.request

    from ansible_collections.osimage.builder.plugins.module_utils._debian import debootstrap_default_mirror
    try:
        with open("/usr/share/debootstrap/scripts/jammy") as f:
            mirror = debootstrap_default_mirror(f.read(), "amd64")
        urllib.request.urlopen(mirror + "/dists/jammy/InRelease", timeout=20).read(64)
        return None
    except Exception as exc:
        return "Ubuntu's archive does not answer from this machine (%s)" % exc


def pytest_terminal_summary(terminalreporter):
    """The fault tests' tally (tests/faults.py): `faults survived: S/T, leaked: L`."""
    from tests import faults

    lines = faults.summary()
    if lines:
        terminalreporter.section("faults")
        for line in lines:
            terminalreporter.write_line(line)

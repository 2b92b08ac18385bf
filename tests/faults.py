"""Fault injection for the pipelines: kill a build with SIGKILL at the start
of a stage, then check what the next run finds and leaves.

The kill point is the runner's own hook: a pre-stage hook on the chosen stage
(`<role>_pre_stage_hooks`) writes a marker file as the stage starts, and
`delay` seconds after the marker appears the whole build gets SIGKILL: the
controller, its workers (each in a session of its own: killing the
controller's process group alone leaves the running module going) and the
modules and programs they run (kill_tree), so nothing of the build can clean
up after itself. With a delay the kill lands inside the stage's first tasks.

Used by the suite's sample (one stage per pipeline, in each pipeline's test
file) and by benchmarks/fault_sweep.sh, which kills every stage of every
pipeline and prints `faults survived: S/T, leaked: L`."""

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests.conftest import BIN, REPO, ansible_env, failed_msgs, loops_under, mounts_under, run_playbook

# OSIMAGE_FAULT_SWEEP=all: every stage of every pipeline (benchmarks/fault_sweep.sh);
# otherwise each pipeline's test kills its one sample stage.
SWEEP = os.environ.get("OSIMAGE_FAULT_SWEEP") == "all"
PAYLOADS = os.path.join(tempfile.gettempdir(), "ansible_*_payload_*")
# One row per kill, for the summary the suite prints (tests/conftest.py).
RESULTS = []


def stages(sample, every):
    """The stages to kill: `sample` in the suite, `every` in the sweep."""
    return list(every) if SWEEP else ([sample] if sample else [
        pytest.param(None, marks=pytest.mark.skip(reason="only in the full sweep (OSIMAGE_FAULT_SWEEP=all)"))])


def summary():
    """`faults survived: S/T, leaked: L` and a line per kill, or []."""
    if not RESULTS:
        return []
    lines = ["faults survived: %d/%d, leaked: %d" % (
        sum(1 for r in RESULTS if r["survived"]), len(RESULTS), sum(1 for r in RESULTS if r["leaked"]))]
    for r in RESULTS:
        lines.append("  %-12s %-28s killed at %6.1f s  %s%s" % (
            r["pipeline"], r["stage"], r["killed_at"], "survived" if r["survived"] else "FAILED: " + r["why"],
            ("; leaked " + ", ".join(r["leaked"])) if r["leaked"] else ""))
    return lines


HOOK = """---
- name: Mark the start of the stage for the fault test
  ansible.builtin.copy:
    dest: {marker}
    content: "{{{{ __pipeline_stage }}}}\\n"
    mode: "0644"
"""


class StageNeverStarted(AssertionError):
    """The build ended (or failed) before the stage to kill was reached."""


def kill_at_stage(playbook, extra_vars, prefix, stage, scratch, delay=0.0, timeout=1800):
    """Run `playbook` with `extra_vars`, SIGKILL its process group `delay`
    seconds after `stage` starts. `prefix` is the role's variable prefix
    (`os_image`, `stemcell`, ...). Returns the seconds from the start of the
    run to the kill."""
    os.makedirs(scratch, exist_ok=True)
    marker = os.path.join(scratch, "stage-started")
    if os.path.exists(marker):
        os.unlink(marker)
    hook = os.path.join(scratch, "mark-stage.yml")
    with open(hook, "w") as f:
        f.write(HOOK.format(marker=json.dumps(marker)))
    vars_ = dict(extra_vars)
    vars_["%s_pre_stage_hooks" % prefix] = {stage: hook}
    log = open(os.path.join(scratch, "killed-run.log"), "w")
    payloads = set(glob.glob(PAYLOADS))
    started = time.monotonic()
    proc = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), playbook, "-e", json.dumps(vars_)],
                            cwd=REPO, env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default"),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not os.path.exists(marker):
            if proc.poll() is not None:
                raise StageNeverStarted("%s ended (rc %s) before stage %s started; see %s"
                                        % (os.path.basename(playbook), proc.returncode, stage, log.name))
            if time.monotonic() - started > timeout:
                raise StageNeverStarted("stage %s did not start within %d s" % (stage, timeout))
            time.sleep(0.05)
        time.sleep(delay)
        killed_at = time.monotonic() - started
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=60)
        log.close()
        # Ansible's own leftovers of the killed module (its unpacked module
        # code under the temporary directory): the test's litter, not the build's.
        for stale in set(glob.glob(PAYLOADS)) - payloads:
            shutil.rmtree(stale, ignore_errors=True)
    return round(killed_at, 1)


def _children():
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=False).stdout
    kids = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        kids.setdefault(ppid, []).append(pid)
    return kids


def kill_tree(top):
    """SIGKILL `top` and everything it started, at once: what a lost machine,
    the OOM killer or a CI timeout does to a build. Ansible's workers run in
    sessions of their own (setsid), so the controller's process group alone
    is not the build: the whole tree is frozen first (SIGSTOP, until no new
    process appears, so nothing forks or reparents away), then killed."""
    stopped = set()
    while True:
        kids, tree, todo = _children(), {top}, [top]
        while todo:
            for pid in kids.get(todo.pop(), []):
                if pid not in tree:
                    tree.add(pid)
                    todo.append(pid)
        new = tree - stopped
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def qemu_processes(*paths):
    """qemu processes whose command line names one of `paths`."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=False).stdout
    found = []
    for line in out.splitlines():
        pid, _sep, args = line.strip().partition(" ")
        if "qemu-system" in args and any(os.path.realpath(p) in args for p in paths):
            found.append(int(pid))
    return found


def partial_files(directory):
    """Files in `directory` that are temporaries of an unfinished write (the
    modules write `.<name>.<random>` or `<name>.tmp*` and rename)."""
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory)
                  if (n.startswith(".") and n != ".osimage.lock") or ".tmp" in n or n.endswith(".part"))


def leaks(*paths):
    """What a build left behind under `paths`: mounts, loop devices, qemu."""
    found = []
    for path in paths:
        found += ["mount %s" % m for m in mounts_under(path)]
        found += ["loop %s" % line for line in loops_under(path)]
    found += ["qemu pid %d" % pid for pid in qemu_processes(*paths)]
    return found


def survive_kill(playbook, extra_vars, prefix, stage, scratch, delay=1.0, expect=()):
    """Kill a build `delay` s into `stage` (resumed at that stage, so the
    earlier stages come from the build already in `extra_vars`' work
    directory), then re-run it the same way: the re-run must complete, and
    afterwards nothing may be mounted, attached or running under the work and
    output directories and the output directory must hold no temporaries.
    `expect`: names that must be in the output directory afterwards.
    Returns (seconds to the kill, the re-run's results)."""
    vars_ = dict(extra_vars)
    vars_["%s_resume_from" % prefix] = stage
    work, out = vars_["osimage_work_dir"], vars_["osimage_output_dir"]
    row = {"pipeline": prefix, "stage": stage, "killed_at": 0.0, "survived": False, "leaked": [], "why": ""}
    RESULTS.append(row)
    row["killed_at"] = kill_at_stage(playbook, vars_, prefix, stage, scratch, delay=delay)
    rc, _stats, results = run_playbook(playbook, vars_)
    row["leaked"] = leaks(work, out) + ["temporary %s" % n for n in partial_files(out)]
    missing = [n for n in expect if not os.path.exists(os.path.join(out, n))]
    if rc != 0:
        row["why"] = "the re-run failed: %s" % failed_msgs(results)
    elif missing:
        row["why"] = "missing from %s after the re-run: %s" % (out, missing)
    elif row["leaked"]:
        row["why"] = "left behind"
    row["survived"] = not row["why"]
    assert row["survived"], "after a SIGKILL in %s: %s%s" % (
        stage, row["why"], ("; left behind: %s" % row["leaked"]) if row["leaked"] else "")
    return row["killed_at"], results

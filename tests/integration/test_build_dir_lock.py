"""Two builds at once on one build host (issue 11).

kernel_build takes its build_dir's lock around everything it does in the
object and source trees: with the lock held by another process, a short
OSIMAGE_LOCK_TIMEOUT fails with a message naming build_dir and the holder,
and nothing was unpacked. No kernel is built.

The pipeline runner holds its work directory's lock for a whole build
(osimage.builder.build_lock), shown with the toy pipeline of
test_pipeline_runner.py (no root, no image): a second build with the same
work directory fails after a short wait naming the build that holds it, or
with a long wait takes its turn; another work directory runs side by side;
a SIGKILLed build leaves no held lock."""

import hashlib
import json
import os
import signal
import subprocess
import time

from tests.conftest import BIN, REPO, _task_results, ansible_env, failed_msgs, run_module, run_playbook
from tests.lock_holder import hold

TARBALL = b"not really a kernel"


def test_kernel_build_waits_for_a_held_build_dir_then_fails_naming_it(tmp_path):
    tarball = tmp_path / "linux-6.1.tar.xz"
    tarball.write_bytes(TARBALL)
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    holder = hold(build_dir, 60)
    try:
        res = run_module("kernel_build", {"source": str(tarball), "source_sha256": hashlib.sha256(TARBALL).hexdigest(),
                                          "build_dir": str(build_dir), "dest_dir": str(tmp_path / "out")},
                         env={"OSIMAGE_LOCK_TIMEOUT": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert res.get("failed") is True, res
    assert "kernel build_dir %s is in use by another build (pid %d)" % (build_dir, holder.pid) in res["msg"], res
    assert res["lock_holder_pid"] == holder.pid
    # Nothing unpacked or configured while another build held the tree.
    assert sorted(os.listdir(build_dir)) == [".osimage.lock"]
    assert not (tmp_path / "out").exists()


# The toy pipeline; the first build waits in a pre-stage hook of stage one
# until the test lets it go.
TOY = os.path.join(REPO, "tests", "integration", "files", "toy_pipeline.yml")


def lock_record(work):
    try:
        with open(os.path.join(work, ".osimage.lock")) as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def openers(path):
    """The pids that have `path` open."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == path:
                    found.append(int(pid))
                    break
            except OSError:
                pass
    return found


def process_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Build:
    """A toy build in the background, in its own process group, that holds
    its work directory's lock until release() (its stage one waits for a
    file)."""

    def __init__(self, tmp_path, name, env=None):
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.go = self.dir / "go"
        hook = self.dir / "wait.yml"
        hook.write_text("- name: Wait for the test\n  ansible.builtin.wait_for:\n    path: %s\n    timeout: 600\n"
                        % self.go)
        self.out = open(self.dir / "stdout.json", "w+")
        argv = [os.path.join(BIN, "ansible-playbook"), TOY, "-e",
                json.dumps({"toy_dir": str(self.dir), "toy_pre_stage_hooks": {"one": str(hook)}})]
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, cwd=REPO,
                                     env=ansible_env(**(env or {})), start_new_session=True)
        self.work = str(self.dir / "work")

    def wait_locked(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = lock_record(self.work)
            if rec.get("pid") == self.proc.pid and os.path.exists(self.dir / "work" / "logs"):
                return rec
            assert self.proc.poll() is None, self.output()
            time.sleep(0.2)
        raise AssertionError("build did not take its lock: %s" % self.output())

    def release(self, timeout=600):
        self.go.write_text("go")
        self.proc.wait(timeout=timeout)
        return self.result()

    def output(self):
        self.out.flush()
        self.out.seek(0)
        return self.out.read()[-3000:]

    def result(self):
        with open(self.out.name) as f:
            _data, results = _task_results(f.read())
        return self.proc.returncode, results

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.out.close()


def lock_task(results):
    return [r for r in results if r["_task"] == "Lock the work directory for this build"][-1]


def test_two_builds_with_one_work_dir_take_turns_and_other_dirs_run_side_by_side(tmp_path):
    first = Build(tmp_path, "shared")
    try:
        rec = first.wait_locked()
        assert rec["owner"] == "ansible controller" and process_alive(rec["holder_pid"]), rec
        work = first.work
        # The same work directory, a short wait (pipeline_lock_timeout):
        # fails in the plan, naming the directory and the build that holds
        # it; nothing written.
        started = time.monotonic()
        rc, _stats, results = run_playbook(TOY, {"toy_dir": str(first.dir), "pipeline_lock_timeout": 2})
        assert rc != 0
        msg = failed_msgs(results)[-1]
        assert ("Toy work directory %s is in use by another build (pid %d, started %s: "
                % (work, first.proc.pid, rec["started"])) in msg, msg
        assert "lock holder pid %d" % rec["holder_pid"] in msg and "stayed locked for 2 seconds" in msg, msg
        assert "OSIMAGE_LOCK_TIMEOUT" in msg
        assert not [r for r in results if r["_task"].startswith("Release mounts")], "ran past the lock"
        assert os.listdir(first.dir / "output") == []
        print("second build failed after %.1f s" % (time.monotonic() - started))

        # Another work directory runs side by side, to the end.
        rc, _stats, results = run_playbook(TOY, {"toy_dir": str(tmp_path / "other")}, env={"OSIMAGE_LOCK_TIMEOUT": "2"})
        assert rc == 0, failed_msgs(results)
        assert (tmp_path / "other" / "output" / "toy.txt").read_text() == "hellohello"
        assert first.proc.poll() is None and lock_record(work)["pid"] == first.proc.pid

        # The same work directory with a long wait: waits, then builds.
        waiter = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), TOY, "-e",
                                   json.dumps({"toy_dir": str(first.dir), "toy_word": "later"})],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                  env=ansible_env(OSIMAGE_LOCK_TIMEOUT="600"), start_new_session=True)
        try:
            # Its plan reaches the lock and waits: a process besides the
            # holder has the lock file open.
            deadline = time.monotonic() + 300
            while set(openers(os.path.join(work, ".osimage.lock"))) <= {rec["holder_pid"]}:
                assert waiter.poll() is None and time.monotonic() < deadline, waiter.stdout.read()
                time.sleep(0.2)
            time.sleep(2)
            assert waiter.poll() is None, waiter.stdout.read()
            assert not (first.dir / "output" / "toy.txt").exists()
            rc, results = first.release()
            assert rc == 0, failed_msgs(results)
            out, _err = waiter.communicate(timeout=600)
        finally:
            if waiter.poll() is None:
                os.killpg(waiter.pid, signal.SIGKILL)
                waiter.wait()
        assert waiter.returncode == 0, out[-3000:]
        _data, results = _task_results(out)
        assert lock_task(results)["waited"] > 1, lock_task(results)
        assert (first.dir / "output" / "toy.txt").read_text() == "laterlater"
        # Released at the end: the holder is gone, the lock is free.
        rec = lock_record(work)
        assert rec["pid"] == waiter.pid and not process_alive(rec["holder_pid"]), rec
    finally:
        first.kill()


def test_a_killed_build_leaves_no_held_lock(tmp_path):
    first = Build(tmp_path, "killed")
    try:
        rec = first.wait_locked()
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        # The holder is in a session of its own (a kill of the build's process
        # group misses it): it notices that the build is gone and ends.
        deadline = time.monotonic() + 10
        while process_alive(rec["holder_pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(rec["holder_pid"]), "the lock holder outlived the killed build"
    finally:
        first.kill()
    rc, _stats, results = run_playbook(TOY, {"toy_dir": str(first.dir)}, env={"OSIMAGE_LOCK_TIMEOUT": "5"})
    assert rc == 0, failed_msgs(results)
    assert lock_task(results)["waited"] < 1
    assert (first.dir / "output" / "toy.txt").read_text() == "hellohello"


def test_build_lock_module_is_idempotent_and_refuses_a_missing_directory(tmp_path):
    # One ad hoc `ansible` run is the build: the lock is taken, and it ends
    # with that run (the holder watches it).
    res = run_module("build_lock", {"path": str(tmp_path / "nope")})
    assert res.get("failed") is True and "path=%s is not a directory" % (tmp_path / "nope") in res["msg"], res
    res = run_module("build_lock", {"path": str(tmp_path), "timeout": -1})
    assert res.get("failed") is True and res["msg"].startswith("timeout=-1.0"), res
    res = run_module("build_lock", {"path": str(tmp_path), "state": "absent"})
    assert res.get("failed") is not True and res["changed"] is False, res
    res = run_module("build_lock", {"path": str(tmp_path)})
    assert res["changed"] is True and res["held"] is True and res["holder"]["owner"] == "ansible controller", res
    holder = res["holder"]["holder_pid"]
    deadline = time.monotonic() + 10
    while process_alive(holder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(holder), "the holder outlived the ansible run that took the lock"

"""A pipeline's lock across processes (_lock.hold_for_build, with a real
holder process and a real owner process) and the disk-full messages of
_space, with real errors and real directories."""

import errno
import os
import subprocess
import time

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _lock, _space


def wait_until(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def owner():
    """A process standing in for the build (ansible-playbook)."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_build_holds_its_lock_in_a_holder_until_released(tmp_path, owner):
    build = _lock.build_owner(owner.pid)
    assert build[0] == owner.pid and build[2] == "owner_pid"
    record = _lock.hold_for_build(str(tmp_path), build, timeout=1, what="Toy work directory")
    assert record["pid"] == owner.pid and record["build"] == "sleep 60" and record["holder_pid"] != os.getpid()
    assert not _lock.is_free(str(tmp_path)) and _lock.held_by(str(tmp_path), build) == record
    # Another build waits, then fails naming the directory and the build.
    other = _lock.build_owner(os.getpid())
    assert _lock.held_by(str(tmp_path), other) is None
    with pytest.raises(_lock.LockTimeout) as err:
        _lock.hold_for_build(str(tmp_path), other, timeout=0.5, what="Toy work directory")
    assert ("Toy work directory %s is in use by another build (pid %d, started %s: sleep 60; lock holder pid %d)"
            % (tmp_path, owner.pid, record["started"], record["holder_pid"])) in str(err.value)
    assert _lock.release_build_lock(record)
    assert _lock.is_free(str(tmp_path)) and not _lock.alive(record["holder_pid"], record["holder_start"])


def test_the_holder_ends_when_the_build_is_killed(tmp_path, owner):
    record = _lock.hold_for_build(str(tmp_path), _lock.build_owner(owner.pid), timeout=1)
    owner.kill()
    owner.wait()
    assert wait_until(lambda: _lock.is_free(str(tmp_path)), 5), "the lock outlived the build"
    assert not _lock.alive(record["holder_pid"], record["holder_start"])


@pytest.mark.parametrize("task", ["sleep 60", "setsid sleep 60"], ids=["same group", "own session"])
def test_a_build_lives_while_a_process_it_started_does(tmp_path, task):
    # The controller (sh) starts a task (sleep): in its group, or in a session
    # of its own as Ansible's workers are (setsid).
    build = subprocess.Popen(["sh", "-c", "%s & wait" % task], start_new_session=True)
    try:
        children = "/proc/%d/task/%d/children" % (build.pid, build.pid)
        assert wait_until(lambda: open(children).read().strip()), "sh started no task"
        kid = int(open(children).read().split()[0])
        assert wait_until(lambda: open("/proc/%d/cmdline" % kid).read().startswith("sleep")), "no sleep yet"
        record = _lock.hold_for_build(str(tmp_path), _lock.build_owner(build.pid), timeout=1)
        time.sleep(1.5)  # the holder has seen the task
        os.kill(build.pid, 9)  # only the controller
        build.wait()
        time.sleep(2.5)
        assert not _lock.is_free(str(tmp_path)), "released while a task of the build still ran"
        os.kill(kid, 9)  # the task
        assert wait_until(lambda: _lock.is_free(str(tmp_path)), 5), "the lock outlived the build's last process"
        assert not _lock.alive(record["holder_pid"], record["holder_start"])
    finally:
        try:
            os.killpg(build.pid, 9)
        except ProcessLookupError:
            pass
        build.wait()


def test_a_gone_owner_is_no_build_and_a_free_lock_file_is_not_created(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert _lock.build_owner(dead.pid) is None
    assert _lock.is_free(str(tmp_path)) and not os.listdir(tmp_path)


def test_a_cache_lock_lies_beside_the_cache(tmp_path):
    cache = tmp_path / "debs"
    with _lock.cache_lock(str(cache), "package_cache_dir"):
        assert os.listdir(cache) == []
        assert (tmp_path / ".debs.osimage.lock").is_file()
        with pytest.raises(_lock.LockTimeout) as err:
            with _lock.build_dir_lock(str(cache), timeout=0.2, what="package_cache_dir", beside=True):
                pytest.fail("took a held cache lock")
        assert "package_cache_dir %s is in use by another build (pid %d" % (cache, os.getpid()) in str(err.value)
    with _lock.cache_lock(None, "package_cache_dir"):
        pass


def test_a_full_disk_names_the_directory_the_need_and_the_free_space(tmp_path):
    calls = []

    def fail(**kw):
        calls.append(kw)
        raise SystemExit(1)

    dest = tmp_path / "out" / "image.raw"
    dest.parent.mkdir()
    with pytest.raises(SystemExit):
        with _space.disk_full_is_an_error(fail, str(dest), "writing image.raw", needed=3 * 2 ** 20):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    msg = calls[0]["msg"]
    assert msg.startswith("writing image.raw: no space left in %s: needed 3145728 bytes (3.0 MiB), " % dest.parent)
    assert calls[0]["directory"] == str(dest.parent) and calls[0]["needed_bytes"] == 3 * 2 ** 20
    assert isinstance(calls[0]["free_bytes"], int) and "free there" in msg
    # Without a fail callback: an exception with the message; other errors pass.
    with pytest.raises(_space.NoSpace) as err:
        with _space.disk_full_is_an_error(None, str(dest), "writing image.raw"):
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    assert str(err.value).startswith("writing image.raw: no space left in %s: needed more room" % dest.parent)
    with pytest.raises(PermissionError):
        with _space.disk_full_is_an_error(fail, str(dest), "writing image.raw"):
            raise PermissionError(errno.EACCES, "denied")


def test_a_program_that_filled_the_disk_is_recognised_and_its_directories_named(tmp_path):
    assert _space.program_ran_out_of_space("cp: error writing 'x': No space left on device")
    assert _space.program_ran_out_of_space(b"/usr/bin/tar: ./payload.bin: Wrote only 6656 of 10240 bytes")
    assert not _space.program_ran_out_of_space("tar: ./payload.bin: Cannot open: Permission denied")
    temp = tmp_path / ".root.unpack-abc"
    temp.mkdir()
    parts = _space.space_of_paths(["tar", "--extract", "--directory=%s" % temp, "--file=%s/x.tar" % tmp_path,
                                   "/dev/null", "relative/path"])
    assert len(parts) == 1 and parts[0].startswith("%s: " % tmp_path) and parts[0].endswith(" free"), parts
    assert _space.human(1536) == "1536 bytes (1.5 KiB)" and _space.human(None) == "unknown"

"""The build-directory lock, with real processes: a second holder waits, times
out with a message naming the directory and the holder's pid, and gets the
lock once the first exits (also when it is killed)."""

import os
import signal
import time

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _lock
from tests.lock_holder import hold


def test_a_held_lock_times_out_naming_the_directory_and_the_holder(tmp_path):
    holder = hold(tmp_path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(_lock.LockTimeout) as err:
            with _lock.build_dir_lock(str(tmp_path), timeout=0.5, what="kernel build_dir"):
                pytest.fail("took a lock another process holds")
        waited = time.monotonic() - start
        assert 0.5 <= waited < 5, waited
        msg = str(err.value)
        assert "kernel build_dir %s is in use by another build (pid %d)" % (tmp_path, holder.pid) in msg, msg
        assert _lock.TIMEOUT_ENV in msg
        assert _lock.holder_pid(str(tmp_path)) == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_fail_callback_gets_the_message_instead_of_an_exception(tmp_path):
    holder = hold(tmp_path, 30)
    calls = []

    def fail(**kwargs):
        calls.append(kwargs)
        raise SystemExit(1)  # as fail_json does

    try:
        with pytest.raises(SystemExit):
            with _lock.build_dir_lock(str(tmp_path), timeout=0.2, fail=fail):
                pytest.fail("took a lock another process holds")
        assert calls and calls[0]["lock_holder_pid"] == holder.pid and str(tmp_path) in calls[0]["msg"]
    finally:
        holder.kill()
        holder.wait()


def test_a_waiter_gets_the_lock_when_the_holder_finishes(tmp_path):
    holder = hold(tmp_path, 1.5)
    start = time.monotonic()
    with _lock.build_dir_lock(str(tmp_path), timeout=30):
        waited = time.monotonic() - start
        # The holder printed "released" only after it let go.
        assert holder.stdout.readline().strip() == "released"
        assert _lock.holder_pid(str(tmp_path)) == os.getpid()
    assert 1.0 <= waited < 10, waited
    holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = hold(tmp_path, 60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    # The lock file (with the dead pid) stays; the lock itself is free.
    assert _lock.holder_pid(str(tmp_path)) == holder.pid
    start = time.monotonic()
    with _lock.build_dir_lock(str(tmp_path), timeout=5):
        assert time.monotonic() - start < 1


def test_the_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(_lock.TIMEOUT_ENV, "7")
    assert _lock.timeout_from_env() == 7
    monkeypatch.setenv(_lock.TIMEOUT_ENV, "soon")
    assert _lock.timeout_from_env() == _lock.DEFAULT_TIMEOUT
    monkeypatch.delenv(_lock.TIMEOUT_ENV)
    assert _lock.timeout_from_env() == _lock.DEFAULT_TIMEOUT

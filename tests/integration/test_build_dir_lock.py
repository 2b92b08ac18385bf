"""kernel_build takes its build_dir's lock around everything it does in the
object and source trees: with the lock held by another process, a short
OSIMAGE_LOCK_TIMEOUT fails with a message naming build_dir and the holder,
and nothing was unpacked. No kernel is built."""

import hashlib
import os

from tests.conftest import run_module
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

"""A process that holds a build directory's lock (plugins/module_utils/_lock.py),
for the tests of the lock and of the modules that take it."""

import subprocess
import sys
import textwrap

from tests.conftest import COLLECTIONS

HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, %r)
    from ansible_collections.osimage.builder.plugins.module_utils._lock import build_dir_lock
    with build_dir_lock(sys.argv[1], timeout=30):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", flush=True)
""" % COLLECTIONS)


def hold(directory, seconds):
    """A process that holds the lock of `directory` for `seconds`, started
    once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc

"""What the tests' guests share: the console line a test guest prints when
it has booted, the device node its initramfs needs, and the busybox tree that
prints it. Imported by the test modules that boot a guest, so that no test
module imports another."""

import os
import shutil

import pytest

# The line a test guest's /init prints once the kernel has started it.
MARKER = "OSIMAGE-BOOT-OK"
# The kernel opens /dev/console for init's stdio before any devtmpfs exists.
NODES = [{"path": "/dev/console", "type": "c", "major": 5, "minor": 1, "mode": "0600"}]


def busybox_init_root(root, halt="poweroff"):
    """Make `root` (a pathlib.Path) a minimal initramfs tree: a static
    busybox and an /init that prints MARKER, then `halt`s (poweroff, or
    reboot for a guest run with -no-reboot). Skips the test when
    busybox-static is not installed. Returns str(root)."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.skip("busybox-static is not installed (./osimage setup installs it)")
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "init").write_text("#!/bin/busybox sh\n/bin/busybox echo %s\n/bin/busybox %s -f\n" % (MARKER, halt))
    os.chmod(root / "init", 0o755)
    return str(root)

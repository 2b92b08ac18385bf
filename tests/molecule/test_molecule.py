"""Molecule scenarios: a real SSH build host (sshd on the loopback address,
paramiko), converge, idempotence, verify."""
import os
import subprocess

import pytest

from tests.conftest import BIN, REPO, needs_root

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]


# Molecule's layout for collections: scenarios under extensions/molecule, run
# from extensions/ (the base configuration is the checkout's .config/molecule).
EXTENSIONS = os.path.join(REPO, "extensions")
SCENARIOS = os.path.join(EXTENSIONS, "molecule")
# Scenarios whose whole run another scenario's run contains (CI time is kept
# for what only one scenario shows).
COVERED = {"os_image": "the stemcell scenario builds the OS image over SSH first (build-stemcell.yml) and its "
                       "verify imports the os_image scenario's verify: `molecule test -s os_image` runs it alone",
           "stemcell": "the suite builds the OS image and the stemcell end to end twice already (the integration "
                       "tests and the fresh root's `./osimage build`), and the pipelines over SSH are the other "
                       "scenarios: `molecule test -s stemcell` runs it (about 10 minutes)"}


@pytest.mark.parametrize("scenario", sorted(
    d for d in os.listdir(SCENARIOS) if os.path.exists(os.path.join(SCENARIOS, d, "molecule.yml"))))
def test_scenario(scenario):
    if scenario in COVERED:
        pytest.skip(COVERED[scenario])
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1",
               PY_COLORS="0", NO_COLOR="1")
    # The default scenario as a plain `molecule test` (no -s), the others by name.
    argv = [os.path.join(BIN, "molecule"), "test"] + ([] if scenario == "default" else ["-s", scenario])
    proc = subprocess.run(argv, cwd=EXTENSIONS, env=env,
                          capture_output=True, text=True, timeout=3000, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    assert "idempotence" in log and "failed=0" in log

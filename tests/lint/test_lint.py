"""Linters are tests too: ruff over the Python, ansible-lint (production
profile) over roles, playbooks and molecule scenarios."""
import os
import subprocess

from tests.conftest import BIN, REPO


def run(argv):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1")
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_ruff():
    proc = run([os.path.join(BIN, "ruff"), "check", "plugins", "tests", "benchmarks"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_lint_production_profile():
    proc = run([os.path.join(BIN, "ansible-lint"), "--offline", "--profile", "production", "roles", "playbooks",
                "molecule"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-8000:]

"""Linters are tests too: ruff over the Python, ansible-lint (production
profile) over roles, playbooks and molecule scenarios."""
import os
import subprocess
import tempfile

from tests.conftest import BIN, REPO

# A HOME of the linters' own: ansible-lint and ansible-doc also look in
# ~/.ansible/collections, where a copy of this collection installed earlier
# (by hand, or by a tool run elsewhere) would shadow the checkout.
LINT_HOME = tempfile.mkdtemp(prefix="osimage-lint-home-")


def run(argv):
    # The checkout's own collection, never a copy installed elsewhere.
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1", HOME=LINT_HOME,
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "collections"))
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_ruff():
    proc = run([os.path.join(BIN, "ruff"), "check", "plugins", "tests", "benchmarks"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_module_documentation_parses():
    """ansible-doc reads every module's DOCUMENTATION/EXAMPLES/RETURN."""
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(REPO, "plugins", "modules")) if n.endswith(".py"))
    assert modules
    for name in modules:
        proc = run([os.path.join(BIN, "ansible-doc"), "-t", "module", "--json", "osimage.builder." + name])
        assert proc.returncode == 0, "%s: %s" % (name, proc.stderr)
        doc = __import__("json").loads(proc.stdout)["osimage.builder." + name]
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"], name
        assert doc["doc"]["attributes"]["check_mode"]["support"] in ("full", "partial"), name


def test_ansible_lint_production_profile():
    # .ansible-lint: production profile, offline, the whole collection (galaxy.yml, roles, playbooks, molecule).
    proc = run([os.path.join(BIN, "ansible-lint")])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-8000:]

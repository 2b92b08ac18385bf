"""The collection as the Ansible ecosystem uses it: `ansible-galaxy collection
build` makes a tarball without the checkout's state (virtualenv, build output,
caches, molecule state, the collections/ self-link), `ansible-galaxy
collection install` installs it, and a playbook runs by FQCN from the
installed copy only, away from the checkout and its ansible.cfg."""

import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from tests.conftest import BIN, REPO, needs_root

GALAXY = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml")))
TARBALL = "%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])

# What a checkout accumulates and a collection tarball must never carry:
# path planted in the copy that is built -> why it is there.
JUNK = {
    ".venv/bin/python3": "the controller's virtualenv",
    "output/debian-bookworm-os-image.tgz": "a build's artifacts",
    "output/bosh-stemcell-0000-openstack-kvm-debian-bookworm-go_agent-raw.tgz": "a build's artifacts",
    ".cache/osimage/x": "a cache",
    ".pytest_cache/v/cache/lastfailed": "pytest's cache",
    "tests/.pytest_cache/README.md": "pytest's cache, run from a subdirectory",
    ".ruff_cache/0.17.6/123": "ruff's cache",
    ".ansible/collections/x": "ansible-lint's cache",
    "plugins/module_utils/__pycache__/_runner.cpython-311.pyc": "bytecode",
    "molecule/os_image/.molecule/state.yml": "molecule state",
    "extensions/molecule/stemcell/.molecule/state.yml": "molecule state (new layout)",
    "benchmarks/results/os_image.txt": "benchmark results",
    "osimage-builder-0.0.1.tar.gz": "an earlier collection build",
    "rootfs.tar.gz": "a stray tarball",
    "changelogs/.plugin-cache.yaml": "antsibull-changelog's cache",
    "context/_build/bindep.txt": "ansible-builder's build context",
}
JUNK_PREFIXES = (".venv/", "output/", "context/", ".cache/", ".pytest_cache/", ".ruff_cache/", ".ansible/",
                 "collections/", "molecule/os_image/.molecule", "extensions/molecule/stemcell/.molecule",
                 "benchmarks/results", ".git/")
MUST_HOLD = ("MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md", "LICENSE", "NOTICE",
             "plugins/modules/rootfs_bootstrap.py", "plugins/module_utils/_build_host.py",
             "plugins/lookup/build_host.py", "roles/build_host/tasks/main.yml", "roles/os_image/tasks/main.yml",
             "roles/stemcell/tasks/main.yml", "playbooks/build_host.yml", "playbooks/build_stemcell.yml",
             "playbooks/build_os_image.yml", "playbooks/build_stage1_kvm.yml", "playbooks/build-stemcell.yml",
             "changelogs/changelog.yaml")


def isolated_env(tmp, collections):
    """Nothing of the checkout: no ANSIBLE_* from outside, a config of our own,
    the collections path the tarball is installed to and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    cfg = os.path.join(tmp, "ansible.cfg")
    with open(cfg, "w") as f:
        f.write("[defaults]\ncollections_path = %s\ngathering = explicit\nretry_files_enabled = False\n"
                % collections)
    env.update({"ANSIBLE_CONFIG": cfg, "ANSIBLE_COLLECTIONS_PATH": collections, "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_HOME": os.path.join(tmp, "ansible-home"),
                "PATH": BIN + os.pathsep + env.get("PATH", "")})
    return env


def run(argv, cwd, env, timeout=600):
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc


def _checkout_state(directory, names):
    rel = os.path.relpath(directory, REPO)
    top = {".git", ".venv", "output", ".cache", ".ansible", "context"} if rel == "." else set()
    return [n for n in names
            if n in top or n in ("__pycache__", ".pytest_cache", ".ruff_cache", ".molecule") or n.endswith(".tar.gz")
            or (rel == "benchmarks" and n == "results")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the checkout with a used checkout's state planted in it, built
    with ansible-galaxy; returns (tmp dir, tarball path, member names)."""
    tmp = str(tmp_path_factory.mktemp("collection"))
    src = os.path.join(tmp, "src")
    # The checkout's files (tracked or not); its own state stays behind
    # (output/ may hold GiBs), the planted junk below stands in for it.
    shutil.copytree(REPO, src, symlinks=True, ignore=_checkout_state)
    for rel in JUNK:
        path = os.path.join(src, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"x" * 1024)
    # the self-link a checkout uses for FQCNs (see ansible.cfg)
    assert os.path.islink(os.path.join(src, "collections/ansible_collections/osimage/builder"))

    dist = os.path.join(tmp, "dist")
    env = isolated_env(tmp, os.path.join(tmp, "collections"))
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", dist, src], tmp, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarball = os.path.join(dist, TARBALL)
    assert os.path.isfile(tarball), os.listdir(dist)
    with tarfile.open(tarball) as tar:
        names = [m.name.rstrip("/") for m in tar.getmembers()]
    return tmp, tarball, names


def test_tarball_leaves_the_checkouts_state_out(built):
    _tmp, tarball, names = built
    bad = sorted(n for n in names
                 if n in JUNK or n.startswith(JUNK_PREFIXES) or n.endswith((".pyc", ".tar.gz"))
                 or "/__pycache__" in "/" + n or "/.pytest_cache" in "/" + n or "/.molecule" in "/" + n)
    assert not bad, "packed although build_ignore should leave them out: %s" % bad
    # small: the collection is text; a packed image or virtualenv is not
    assert os.path.getsize(tarball) < 5 * 1024 * 1024, os.path.getsize(tarball)


def test_tarball_holds_the_collection(built):
    _tmp, _tarball, names = built
    missing = [n for n in MUST_HOLD if n not in names]
    assert not missing, missing
    assert any(n.startswith("roles/stemcell/") for n in names)
    assert sum(n.startswith("plugins/modules/") and n.endswith(".py") for n in names) >= 10


@needs_root
def test_installed_collection_runs_a_playbook_by_fqcn(built):
    """ansible-playbook osimage.builder.build_host from the installed copy, in a
    directory that is not the checkout, with a config that is not the checkout's."""
    tmp, tarball, _names = built
    collections = os.path.join(tmp, "collections")
    env = isolated_env(tmp, collections)
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--force",
                "-p", collections, tarball], tmp, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = os.path.join(collections, "ansible_collections", "osimage", "builder")
    assert os.path.isfile(os.path.join(installed, "MANIFEST.json"))
    assert not os.path.islink(installed)

    cwd = os.path.join(tmp, "elsewhere")
    os.makedirs(cwd)
    argv = [os.path.join(BIN, "ansible-playbook"), "-vv", "-i", "localhost,",
            "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=" + sys.executable,
            "-e", '{"osimage_hosts": "localhost", "build_host_install_packages": false}',
            "osimage.builder.build_host"]
    proc = run(argv, cwd, env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "failed=0" in out, out[-3000:]
    # The role ran from the installed copy (default callback, -vv: "task path: ...").
    task_paths = [line.split("task path: ", 1)[1] for line in out.splitlines() if "task path: " in line]
    role_tasks = os.path.join(installed, "roles", "build_host", "tasks", "main.yml")
    assert any(p.startswith(role_tasks + ":") for p in task_paths), task_paths
    assert all(p.startswith(installed + os.sep) for p in task_paths), task_paths
    for part in ("roles", "plugins", "playbooks"):
        assert os.path.join(REPO, part) not in out, "the checkout's %s was used" % part


def test_hyphenated_playbooks_import_their_fqcn_twins():
    """playbooks/build-*.yml (checkout commands, molecule, ./osimage) only import
    playbooks/build_*.yml, the names the collection loader accepts; every
    playbook passes --syntax-check from the checkout."""
    playbooks = os.path.join(REPO, "playbooks")
    names = sorted(n for n in os.listdir(playbooks) if n.endswith(".yml"))
    hyphenated = [n for n in names if "-" in n]
    assert hyphenated
    for name in hyphenated:
        twin = name.replace("-", "_")
        assert twin in names, "%s has no playbooks/%s to run by FQCN" % (name, twin)
        plays = yaml.safe_load(open(os.path.join(playbooks, name)))
        assert [p.get("ansible.builtin.import_playbook") for p in plays] == [twin], (
            "%s must stay a one-play wrapper importing %s; put changes in %s" % (name, twin, twin))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "collections"),
               PATH=BIN + os.pathsep + env.get("PATH", ""))
    for name in names:
        proc = run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                    os.path.join(playbooks, name)], REPO, env)
        assert proc.returncode == 0, "%s: %s" % (name, proc.stdout + proc.stderr)

"""The execution environment: bindep.txt is the build-host table (no drift),
`ansible-builder create` renders a build context from execution-environment.yml
(no container engine needed), and the installed collection hands ansible-builder
its own dependencies (meta/execution-environment.yml) and not the development
tools of requirements.txt."""
import os
import re
import shutil
import subprocess

import pytest
import yaml
from bindep.depends import Depends

from tests import bindep as bindep_txt
from tests.conftest import BIN, REPO

EE_FILE = os.path.join(REPO, "execution-environment.yml")
GALAXY = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml")))
TARBALL = "%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])


def run(argv, cwd, **env):
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1", **env)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def pins(path):
    """name -> requirement line of a pip requirements file."""
    out = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            out[re.split(r"[=<>!~\[ ]", line, maxsplit=1)[0].lower()] = line
    return out


def bindep_names(text, profiles):
    return sorted(rule[0] for rule in Depends(text).active_rules(profiles))


def test_bindep_txt_is_the_build_host_table():
    with open(bindep_txt.BINDEP) as f:
        text = f.read()
    assert text == bindep_txt.render(), (
        "bindep.txt has drifted from plugins/module_utils/_build_host.py: run .venv/bin/python -m tests.bindep")
    table = bindep_txt.build_host_table()
    assert bindep_names(text, ["default", "platform:dpkg"]) == table.packages()
    assert bindep_names(text, ["default", "platform:dpkg", "test"]) == table.packages(tests=True)
    # Debian package names only: nothing for an rpm platform.
    assert bindep_names(text, ["default", "platform:rpm"]) == []


def test_requirements_ee_pins_are_the_controllers():
    dev, ee = pins(os.path.join(REPO, "requirements.txt")), pins(os.path.join(REPO, "requirements-ee.txt"))
    assert {"paramiko", "jmespath", "netaddr", "ansible", "ansible-core"} <= set(ee)
    for name, line in ee.items():
        assert dev.get(name) == line, "requirements-ee.txt pins %s, requirements.txt %s" % (line, dev.get(name))


def test_execution_environment_names_this_version_and_pins():
    ee = yaml.safe_load(open(EE_FILE))
    assert ee["version"] == 3
    assert "{{" not in ee["images"]["base_image"]["name"]
    galaxy = ee["dependencies"]["galaxy"]["collections"]
    assert [os.path.basename(c["name"]) for c in galaxy] == [TARBALL], (
        "execution-environment.yml installs %s, galaxy.yml builds %s" % (galaxy, TARBALL))
    assert [f["src"] for f in ee["additional_build_files"]] == [TARBALL]
    assert ee["dependencies"]["ansible_core"]["package_pip"] == pins(os.path.join(REPO, "requirements.txt"))[
        "ansible-core"]
    assert ee["dependencies"]["system"] == "bindep.txt"
    assert ee["dependencies"]["python"] == "requirements-ee.txt"


@pytest.fixture(scope="module")
def ee_dir(tmp_path_factory):
    """execution-environment.yml, its files and the collection tarball built
    beside it, as a user has them after `ansible-galaxy collection build`."""
    d = tmp_path_factory.mktemp("ee")
    for name in ("execution-environment.yml", "bindep.txt", "requirements-ee.txt"):
        shutil.copy(os.path.join(REPO, name), d)
    cfg = d / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(d), REPO],
               str(d), ANSIBLE_CONFIG=str(cfg))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (d / TARBALL).is_file()
    return d


def test_ansible_builder_create_renders_the_build_context(ee_dir, tmp_path):
    context = tmp_path / "context"
    proc = run([os.path.join(BIN, "ansible-builder"), "create", "-f", str(ee_dir / "execution-environment.yml"),
                "-c", str(context), "-v", "3"], str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "No matches" not in out and "does not exist" not in out, out
    build = context / "_build"
    assert (build / "bindep.txt").read_text() == (ee_dir / "bindep.txt").read_text()
    assert (build / "requirements.txt").read_text() == (ee_dir / "requirements-ee.txt").read_text()
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    (entry,) = requirements["collections"]
    # the galaxy stage copies _build to /build and installs from there
    assert entry["type"] == "file" and entry["name"].startswith("/build/")
    assert (build / entry["name"][len("/build/"):]).is_file()
    containerfile = next(p for p in (context / "Containerfile", context / "Dockerfile") if p.exists()).read_text()
    assert 'ARG PKGMGR="/usr/bin/apt-get"' in containerfile
    assert 'ARG EE_BASE_IMAGE="debian:bookworm"' in containerfile
    assert "ansible-core==2.19.14" in containerfile


def test_installed_collection_brings_its_own_ee_dependencies(ee_dir, tmp_path):
    """What ansible-builder's introspection takes from the installed collection:
    bindep.txt and requirements-ee.txt (meta/execution-environment.yml), not the
    development tools of requirements.txt."""
    collections = tmp_path / "collections"
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\ncollections_path = %s\n" % collections)
    proc = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections),
                str(ee_dir / TARBALL)], str(tmp_path), ANSIBLE_CONFIG=str(cfg),
               ANSIBLE_COLLECTIONS_PATH=str(collections))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    context = tmp_path / "context"
    proc = run([os.path.join(BIN, "ansible-builder"), "create", "-f", str(ee_dir / "execution-environment.yml"),
                "-c", str(context)], str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    proc = run([os.path.join(BIN, "python"), str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                "--write-pip", str(pip_out), "--write-bindep", str(bindep_out), str(collections)], str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = bindep_txt.build_host_table()
    assert bindep_names(bindep_out.read_text(), ["default", "platform:dpkg"]) == table.packages()
    python = set(pins(str(pip_out)))
    # ansible and ansible-core are left out by introspection (the EE has them)
    assert python == {"paramiko", "jmespath", "netaddr", "passlib"}, python

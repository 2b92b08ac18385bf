"""The README's two commands on a fresh Debian 12 machine.

A green run on a machine where someone once installed a package by hand
cannot show a missing install step; this test can. It bootstraps a fresh
Debian 12 root with mmdebstrap (required + important, what a freshly
installed Debian has), with the build host's own Debian apt sources, copies
the checkout into it with `git archive` (untracked files cannot help), gives
it /dev, /proc and /sys, and inside it runs the README's first command
exactly as written, checks the stemcell it wrote, then runs the README's test
command on the fast tests. Only package caches (apt's, pip's and the
builder's .deb cache) are shared with the host, to save downloads.
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _debian
from tests import stemcell_spec
from tests.conftest import REPO, loops_under, needs_root

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]

SUITE = "bookworm"
CACHE = os.path.join(os.environ.get("OSIMAGE_TEST_CACHE", "/var/cache/osimage/tests"), "fresh-root")
STEMCELL = "bosh-stemcell-0000-openstack-kvm-debian-bookworm-go_agent-raw.tgz"
# Package caches only: what the fresh machine downloads, never what it built.
SHARED_CACHES = {
    "apt": "var/cache/apt/archives",
    "pip": "root/.cache/pip",
    "osimage-debs": "var/cache/osimage/debs",
}
BASE_MAX_AGE = 7 * 86400
# Site configuration of the machine, not packages: local CA certificates (the
# ca-certificates package adds them to the system bundle when the set-up
# installs it) and pip's site settings.
SITE_CONFIG = ["/usr/local/share/ca-certificates", "/etc/pip.conf"]
# What the fresh root runs of the suite besides collecting all of it: the
# tests whose tools only the test set-up brings (gpg-agent: the trust-chain
# tests; git and ansible-galaxy: the collection tarball; ruff, ansible-lint,
# antsibull-changelog, ansible-builder: the lint tests) and the unit tests.
FRESH_ROOT_TESTS = ['-m "not slow"', "tests/unit", "tests/lint/test_changelog.py",
                    "tests/lint/test_execution_environment.py", "tests/integration/test_archive_keyring.py",
                    "tests/integration/test_collection_install.py"]


def readme_commands():
    """The two commands of the README's 'The two commands' block, as written."""
    text = open(os.path.join(REPO, "README.md")).read()
    block = re.search(r"## The two commands.*?```sh\n(.*?)```", text, re.S).group(1)
    cmds = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert len(cmds) == 2, cmds
    return cmds


def host_debian_sources():
    """The build host's own Debian apt sources, one-line format, so the fresh
    root uses the same archive (entries of other distributions are left out)."""
    lines = []
    for e in _debian.read_host_sources():
        if "deb" not in e["types"] or not e["suites"]:
            continue
        if any(_debian.distribution_of(s) != "debian" for s in e["suites"]):
            continue
        opt = " [signed-by=%s]" % e["signed_by"] if e["signed_by"].startswith("/") else ""
        for uri in e["uris"]:
            for suite in e["suites"]:
                lines.append("deb%s %s %s %s" % (opt, uri, suite, " ".join(e["components"] or ["main"])))
    if not lines:
        pytest.skip("the build host has no Debian apt source to give the fresh root")
    return "\n".join(lines) + "\n"


def fresh_base(sources):
    """A fresh Debian 12 root as a tarball, made by mmdebstrap and reused for
    a week (a week-old fresh install is still a fresh install)."""
    os.makedirs(CACHE, mode=0o700, exist_ok=True)
    key = hashlib.sha256(("%s|important|%s" % (SUITE, sources)).encode()).hexdigest()[:16]
    tarball = os.path.join(CACHE, "debian-%s-important-%s.tar" % (SUITE, key))
    if os.path.exists(tarball) and time.time() - os.path.getmtime(tarball) < BASE_MAX_AGE:
        return tarball
    src = os.path.join(CACHE, "sources.list")
    with open(src, "w") as f:
        f.write(sources)
    tmp = tarball[:-len(".tar")] + ".tmp.tar"
    proc = subprocess.run(["mmdebstrap", "--variant=important", "--format=tar", "--quiet", SUITE, tmp, src],
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    os.rename(tmp, tarball)
    return tarball


def checkout_tar():
    """The checkout as git sees it: HEAD plus tracked changes not yet
    committed (`git stash create`), never an untracked file.
    OSIMAGE_FRESH_ROOT_REV picks another revision (to show an old one fail)."""
    rev = os.environ.get("OSIMAGE_FRESH_ROOT_REV") or subprocess.run(
        ["git", "-C", REPO, "stash", "create"], capture_output=True, text=True, check=True).stdout.strip() or "HEAD"
    # Modes as a clone by root (umask 022) has them: git archive's own
    # default (tar.umask 002) makes group-writable directories, which the
    # build rightly refuses above its output directory.
    return subprocess.run(["git", "-C", REPO, "-c", "tar.umask=0022", "archive", "--format=tar", "--prefix=osimage/",
                           rev],
                          capture_output=True, check=True).stdout


def mounts_below(path):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def processes_in(root):
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                r = os.readlink("/proc/%s/root" % pid)
            except OSError:
                continue
            if r == root or r.startswith(root + "/"):
                pids.append(int(pid))
    return pids


def release(root):
    """Everything the fresh root's builds may have left: processes, mounts
    (deepest first), loop devices backed by its files."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_in(root):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(1)
    for point in sorted(mounts_below(root), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    for line in loops_under(root):
        subprocess.run(["losetup", "-d", line.split()[0]], capture_output=True, check=False)


@pytest.fixture(scope="module")
def fresh_root():
    sources = host_debian_sources()
    base = fresh_base(sources)
    root = os.path.realpath(tempfile.mkdtemp(prefix="osimage-fresh-root-", dir="/var/tmp"))
    try:
        subprocess.run(["tar", "-xpf", base, "--numeric-owner", "-C", root], check=True)
        tar = checkout_tar()
        subprocess.run(["tar", "-x", "-C", os.path.join(root, "root")], input=tar, check=True)
        # What a fresh machine of this site has that no package brings: name
        # resolution, the site's own trust anchors and pip settings (an
        # egress proxy with a CA of its own), and services that do not start
        # on package install (policy-rc.d, as on every machine here).
        shutil.copyfile("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
        for conf in SITE_CONFIG:
            if os.path.isdir(conf):
                shutil.copytree(conf, os.path.join(root, conf.lstrip("/")), dirs_exist_ok=True)
            elif os.path.isfile(conf):
                shutil.copyfile(conf, os.path.join(root, conf.lstrip("/")))
        policy = os.path.join(root, "usr/sbin/policy-rc.d")
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
        subprocess.run(["mount", "--rbind", "/dev", os.path.join(root, "dev")], check=True)
        subprocess.run(["mount", "--make-rslave", os.path.join(root, "dev")], check=True)
        subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], check=True)
        subprocess.run(["mount", "--rbind", "/sys", os.path.join(root, "sys")], check=True)
        subprocess.run(["mount", "--make-rslave", os.path.join(root, "sys")], check=True)
        for name, inside in SHARED_CACHES.items():
            host = os.path.join(CACHE, name)
            os.makedirs(host, exist_ok=True)
            target = os.path.join(root, inside)
            os.makedirs(target, exist_ok=True)
            subprocess.run(["mount", "--bind", host, target], check=True)
        yield root
    finally:
        release(root)
        assert mounts_below(root) == []
        shutil.rmtree(root, ignore_errors=True)


def inside(root, command, log, timeout):
    """Run a shell command in the fresh root as a new root login would,
    with a clean environment; its output goes to `log`."""
    env = ["/usr/bin/env", "-i", "HOME=/root", "TERM=dumb", "LANG=C.UTF-8",
           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    with open(log, "w") as f:
        proc = subprocess.run(["chroot", root] + env + ["/bin/bash", "-c", "cd /root/osimage && " + command],
                              stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout,
                              check=False)
    return proc.returncode, open(log, errors="replace").read()


def test_readme_commands_work_on_a_fresh_debian_12(fresh_root, tmp_path):
    build, test = readme_commands()
    assert build == "./osimage build" and test == "./osimage test"
    # The fresh machine really is fresh: none of what the set-up installs.
    assert not os.path.exists(os.path.join(fresh_root, "usr/sbin/grub-install"))
    assert not os.path.exists(os.path.join(fresh_root, "usr/bin/qemu-system-x86_64"))

    rc, out = inside(fresh_root, build, str(tmp_path / "build.log"), timeout=3600)
    assert rc == 0, "`%s` failed on a fresh Debian 12 root (rc %d):\n%s" % (build, rc, out[-6000:])
    output = os.path.join(fresh_root, "root/osimage/output")
    assert STEMCELL in os.listdir(output), os.listdir(output)
    # The stemcell's members and stemcell.MF (its sha1 is the image's); the
    # build itself booted the disk to its login prompt before packaging it.
    mf = stemcell_spec.check_tarball(os.path.join(output, STEMCELL), str(tmp_path / "unpacked"))
    assert mf["cloud_properties.infrastructure"] == "openstack"
    assert re.search(r"boot test: .*login:", out), out[-3000:]

    # The same fresh machine runs the README's test command: its set-up
    # (test packages, the test tools in the venv), every test module imports
    # and collects, and the tests that stand on what only the test set-up
    # installs (gpg-agent, git, ansible-galaxy, the linters, antsibull,
    # ansible-builder) pass. The rest of the suite runs on the build host
    # itself (this test's own run), which had no hand-installed package
    # either (the fresh root is what proves that).
    rc, out = inside(fresh_root, test + " --collect-only -q -p no:cacheprovider",
                     str(tmp_path / "collect.log"), timeout=1800)
    assert rc == 0, "`%s --collect-only` failed on the fresh root (rc %d):\n%s" % (test, rc, out[-6000:])
    collected = int(re.search(r"(\d+) tests? collected", out).group(1))
    assert collected >= 300, out[-2000:]
    rc, out = inside(fresh_root, test + " -p no:cacheprovider -q " + " ".join(FRESH_ROOT_TESTS),
                     str(tmp_path / "test.log"), timeout=3600)
    assert rc == 0, "`%s` failed on the fresh root (rc %d):\n%s" % (test, rc, out[-6000:])
    assert re.search(r"\d+ passed", out) and " failed" not in out, out[-2000:]

"""No secret in logs or in what leaves the build host: the os_image tasks
that carry the password run with -vvv and a distinctive password, then the
whole output and the whole output directory (the tarball unpacked too) are
searched for the password and its plain digests. The image's crypt hash is
salted per image, not from the password."""
import gzip
import hashlib
import hmac
import json
import os
import subprocess

import pytest

from tests.conftest import BIN, REPO, ansible_env, needs_root

pytestmark = [needs_root, pytest.mark.slow, pytest.mark.network]

PLAYBOOK = os.path.join(REPO, "tests", "integration", "files", "os_image_passwords.yml")
PASSWORD = "Vaulted-Osimage-Test-Passw0rd-5c07"


def leaks(data):
    """Which forms of the password occur in data (bytes)."""
    forms = {"password": PASSWORD.encode()}
    for algo in ("md5", "sha1", "sha256", "sha512"):
        digest = hashlib.new(algo, PASSWORD.encode()).hexdigest()
        forms[algo] = digest.encode()
        forms[algo + " (upper)"] = digest.upper().encode()
    return sorted(name for name, form in forms.items() if form in data)


@pytest.fixture(scope="module")
def run(tmp_path_factory, base_tarball):
    base = tmp_path_factory.mktemp("secrets")
    # The image root where the role keeps it, as base_debootstrap would leave it.
    root = base / "work" / "os_image" / "debian-bookworm-amd64" / "chroot"
    root.mkdir(parents=True)
    subprocess.run(["tar", "-xf", base_tarball, "--numeric-owner", "-C", str(root)], check=True)
    extra = {"osimage_work_dir": str(base / "work"), "osimage_output_dir": str(base / "output"),
             "osimage_cache_dir": str(base / "cache"), "os_image_users_password": PASSWORD}
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), PLAYBOOK, "-vvv", "-e", json.dumps(extra)],
                          capture_output=True, env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default"),
                          cwd=REPO, timeout=1800, check=False)
    return base, root, proc


def test_the_password_tasks_succeed(run):
    _base, _root, proc = run
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:].decode(errors="replace")


def test_no_secret_in_the_verbose_log(run):
    _base, _root, proc = run
    # The stage's task, run by the pipeline runner.
    assert b"Set the passwords of vcap and root]" in proc.stdout
    assert leaks(proc.stdout + proc.stderr) == []


def test_no_secret_in_the_output_directory(run):
    base, _root, _proc = run
    out = base / "output"
    names = sorted(os.listdir(str(out)))
    tgz = "debian-bookworm-os-image.tgz"
    assert names == ["debian-bookworm-os-image-packages.txt", tgz, tgz + ".report.json", tgz + ".report.md",
                     tgz + ".stamp.json"]
    for name in names:
        data = (out / name).read_bytes()
        assert leaks(data) == [], name
        if name.endswith(".tgz"):
            assert leaks(gzip.decompress(data)) == [], name + " (unpacked)"


def test_the_stamp_holds_a_keyed_digest_and_no_default_password_note(run):
    base, _root, _proc = run
    stamp = json.loads((base / "output" / "debian-bookworm-os-image.tgz.stamp.json").read_text())
    stamp = stamp["records"]["pipeline:os_image"]
    key = (base / "cache" / "keys" / "stamp.key").read_bytes()
    assert "users_password_sha256" not in stamp["inputs"]
    assert stamp["inputs"]["users_password_hmac"] == hmac.new(
        key, b"osimage.builder secret\0users_password\0" + PASSWORD.encode(), hashlib.sha256).hexdigest()
    assert "notes" not in stamp
    report = json.loads((base / "output" / "debian-bookworm-os-image.tgz.report.json").read_text())
    assert "users_password_hmac" not in report["inputs"] and report["notes"] == []


def test_the_os_image_is_private(run):
    base, _root, _proc = run
    assert oct(os.stat(str(base / "output" / "debian-bookworm-os-image.tgz")).st_mode & 0o777) == "0o600"
    assert oct(os.stat(str(base / "output")).st_mode & 0o777) == "0o700"


def test_the_crypt_salt_is_not_derived_from_the_password(run):
    _base, root, _proc = run
    shadow = dict(line.split(":", 2)[:2] for line in (root / "etc" / "shadow").read_text().splitlines())
    assert shadow["vcap"] == shadow["root"]
    # $6$[rounds=N$]salt$hash (passlib writes the rounds when they are not 5000).
    fields = shadow["vcap"].split("$")
    assert fields[1] == "6"
    salt = fields[-2]
    assert len(salt) == 16
    assert salt != hashlib.sha1(PASSWORD.encode()).hexdigest()[:16]
    from passlib.hash import sha512_crypt
    assert sha512_crypt.verify(PASSWORD, shadow["vcap"])

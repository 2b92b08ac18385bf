"""disk_image as a module, on a small tree: changed then not changed, check
mode writes nothing, a size too small is refused before any write, and the
grub password reaches its stamp only as an HMAC keyed with the build host's
stamp key."""
import hashlib
import json
import os
import stat

from tests.conftest import loops_under, mounts_under, needs_root, run_module

pytestmark = [needs_root]

PASSWORD = "disk-image-test-secret-7f3a"


def small_tree(tmp_path):
    src = tmp_path / "root"
    for d in ("etc", "boot", "usr/bin"):
        (src / d).mkdir(parents=True)
    (src / "etc/hostname").write_text("disk-image-test\n")
    (src / "usr/bin/tool").write_bytes(os.urandom(4096))
    # grub.cfg names the newest kernel and its initrd; they need not boot here.
    (src / "boot/vmlinuz-6.1.0-1-amd64").write_bytes(b"kernel")
    (src / "boot/initrd.img-6.1.0-1-amd64").write_bytes(b"initrd")
    return str(src)


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _dirs, fs in os.walk(path) for f in fs)


def test_disk_image_twice_check_mode_and_too_small(tmp_path):
    src = small_tree(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    key = tmp_path / "keys" / "stamp.key"
    args = {"src": src, "dest": str(out / "root.img"), "size": "200M", "formats": ["qcow2"],
            "grub_superuser": "vcap", "grub_password": PASSWORD, "stamp_key_file": str(key)}

    check = run_module("disk_image", args, check=True)
    assert check.get("failed") is not True and check["changed"] is True, check
    assert os.listdir(out) == [] and not key.exists()

    first = run_module("disk_image", args)
    assert first.get("failed") is not True and first["changed"] is True, first
    assert sorted(os.listdir(out)) == ["root.img", "root.img.stamp.json", "root.qcow2"]
    assert first["artifact"]["sha256"] == hashlib.sha256(open(out / "root.img", "rb").read()).hexdigest()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600

    # The password is in the stamp only as a keyed HMAC: no plain digest of it.
    text = (out / "root.img.stamp.json").read_text()
    stamp = json.loads(text)["records"]["disk_image"]
    assert len(stamp["inputs"]["grub_password_hmac"]) == 64
    assert stamp["outputs"] == {str(out / "root.img"): first["artifact"]["sha256"],
                                str(out / "root.qcow2"): first["converted"][0]["sha256"]}
    for algo in ("md5", "sha1", "sha256", "sha512"):
        assert hashlib.new(algo, PASSWORD.encode()).hexdigest() not in text
    assert PASSWORD not in text

    second = run_module("disk_image", args)
    assert second["changed"] is False, second
    # Another password rebuilds (the HMAC differs).
    third = run_module("disk_image", dict(args, grub_password=PASSWORD + "-2"))
    assert third["changed"] is True, third

    small = run_module("disk_image", dict(args, dest=str(tmp_path / "small" / "root.img"), size="4M"))
    assert small.get("failed") is True and "size=4M is too small" in small["msg"]
    assert not (tmp_path / "small").exists() or files_under(str(tmp_path / "small")) == []
    assert mounts_under(str(tmp_path)) == [] and loops_under(str(tmp_path)) == []

"""Checks of a built BOSH stemcell tarball and its disk: the tarball's
members and stemcell.MF, the disk's partition table, fstab, grub.cfg, and
the OS image hardening still holding on the final disk (mounted read-only).
Used by the pytest suite and by the molecule verify step
(`python3 -m tests.stemcell_spec STEMCELL.tgz WORKDIR`)."""

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import tarfile

try:
    from tests import os_image_spec
except ImportError:  # run as a script next to os_image_spec.py
    import os_image_spec

MEMBERS = ["image", "stemcell.MF", "packages.txt", "dev_tools_file_list.txt", "sbom.spdx.json"]


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


def parse_mf(text):
    """The few stemcell.MF fields as a flat dict (top-level and cloud_properties.*)."""
    out, section = {}, None
    for line in text.splitlines():
        m = re.match(r"^(\s*)(\w+):\s*(.*)$", line)
        if not m:
            continue
        indent, key, value = m.groups()
        value = value.strip().strip('"')
        if not indent:
            section = key if not value else None
            out[key] = value
        elif section:
            out["%s.%s" % (section, key)] = value
    return out


def extract(tar, work):
    try:
        tar.extractall(work, filter="fully_trusted")
    except TypeError:  # a Python without extraction filters
        tar.extractall(work)


def unpack(stemcell, work):
    with tarfile.open(stemcell) as tar:
        names = tar.getnames()
        extract(tar, work)
    return names


@contextlib.contextmanager
def mounted_disk(img, mnt):
    dev = run(["losetup", "--find", "--show", "--read-only", img]).strip()
    try:
        run(["partx", "--add", dev])
        os.makedirs(mnt, exist_ok=True)
        run(["mount", "-o", "ro,noload", dev + "p1", mnt])
        try:
            yield dev
        finally:
            subprocess.run(["umount", mnt], check=False)
    finally:
        subprocess.run(["partx", "--delete", dev], check=False)
        subprocess.run(["losetup", "--detach", dev], check=False)


def check_tarball(stemcell, work):
    names = unpack(stemcell, work)
    assert sorted(n.lstrip("./") for n in names if n not in (".", "./")) == sorted(MEMBERS), names
    mf = parse_mf(open(os.path.join(work, "stemcell.MF")).read())
    image = os.path.join(work, "image")
    sha1 = hashlib.sha1(open(image, "rb").read()).hexdigest()
    assert mf["sha1"] == sha1, "stemcell.MF sha1 %s != sha1 of image %s" % (mf["sha1"], sha1)
    base = os.path.basename(stemcell)
    assert base.startswith("bosh-stemcell-%s-" % mf["version"])
    for key in ("name", "version", "bosh_protocol", "api_version", "operating_system", "cloud_properties.name",
                "cloud_properties.infrastructure", "cloud_properties.hypervisor", "cloud_properties.disk",
                "cloud_properties.disk_format", "cloud_properties.container_format", "cloud_properties.os_type",
                "cloud_properties.os_distro", "cloud_properties.architecture"):
        assert mf.get(key), "stemcell.MF lacks %s" % key
    assert "ii  openssh-server" in open(os.path.join(work, "packages.txt")).read()
    import json
    sbom = json.load(open(os.path.join(work, "sbom.spdx.json")))
    assert sbom["spdxVersion"] == "SPDX-2.3" and len(sbom["packages"]) > 100
    return mf


def check_disk(work, mf):
    with tarfile.open(os.path.join(work, "image")) as tar:
        assert tar.getnames() == ["root.img"]
        extract(tar, work)
    img = os.path.join(work, "root.img")
    if mf["cloud_properties.disk_format"] == "qcow2":
        run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, img + ".raw"])
        os.rename(img + ".raw", img)
    table = run(["parted", "-s", "-m", img, "unit", "MiB", "print"]).splitlines()
    assert table[1].split(":")[5] == "msdos", table
    part = table[2].split(":")
    assert part[0] == "1" and part[4] == "ext4" and "boot" in part[6], table
    mnt = os.path.join(work, "mnt")
    failures = []
    with mounted_disk(img, mnt) as dev:
        uuid = run(["blkid", "-s", "UUID", "-o", "value", dev + "p1"]).strip()
        fstab = open(os.path.join(mnt, "etc/fstab")).read()
        assert re.search(r"^UUID=%s / ext4 " % uuid, fstab, re.M), fstab
        cfg = os.path.join(mnt, "boot/grub/grub.cfg")
        assert os.stat(cfg).st_mode & 0o777 == 0o600, "grub.cfg is not 0600"
        text = open(cfg).read()
        assert re.search(r"^password_pbkdf2 \S+ grub\.pbkdf2\.sha512\.", text, re.M), "grub.cfg has no password"
        assert "root=UUID=%s" % uuid in text
        assert [n for n in os.listdir(os.path.join(mnt, "etc/ssh")) if n.startswith("ssh_host_")] == []
        assert open(os.path.join(mnt, "var/vcap/bosh/etc/stemcell_version")).read() == mf["version"]
        assert open(os.path.join(mnt, "var/vcap/bosh/etc/infrastructure")).read() == \
            mf["cloud_properties.infrastructure"]
        failures = os_image_spec.run_all(mnt)
    assert failures == [], failures
    return img


if __name__ == "__main__":
    stemcell, workdir = sys.argv[1], sys.argv[2]
    os.makedirs(workdir, exist_ok=True)
    manifest = check_tarball(stemcell, workdir)
    if manifest["cloud_properties.disk_format"] in ("raw", "qcow2"):
        print("disk image:", check_disk(workdir, manifest))
    print("stemcell checks passed")

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _disk as disk
from ansible_collections.osimage.builder.plugins.module_utils import _stemcell as sc


@pytest.mark.parametrize("infra,hyp,fmt,expect", [
    ("openstack", "kvm", "raw", "kvm"),
    ("openstack", "kvm", "qcow2", "kvm"),
    ("aws", "xen", "raw", "xen-hvm"),
    ("aws", "xen-hvm", "raw", "xen-hvm"),
    ("warden", "boshlite", "files", "boshlite"),
])
def test_resolve_known_combinations(infra, hyp, fmt, expect):
    assert sc.resolve(infra, hyp, fmt) == (expect, None)


@pytest.mark.parametrize("infra,hyp,fmt,words", [
    ("vsphere", "esxi", "ovf", "not one BOSH builds"),
    ("openstack", "xen", "raw", "no openstack stemcell for hypervisor=xen"),
    ("aws", "xen", "qcow2", "disk_format=qcow2"),
    ("warden", "boshlite", "raw", "disk_format=raw"),
])
def test_resolve_rejects_what_bosh_does_not_build(infra, hyp, fmt, words):
    hyp_out, err = sc.resolve(infra, hyp, fmt)
    assert hyp_out is None and words in err


def test_filenames_follow_bosh():
    assert sc.stemcell_filename("1.5", "openstack", "kvm", "debian-bookworm", "raw") == \
        "bosh-stemcell-1.5-openstack-kvm-debian-bookworm-go_agent-raw.tgz"
    assert sc.stemcell_filename("1.5", "openstack", "kvm", "debian-bookworm", "qcow2") == \
        "bosh-stemcell-1.5-openstack-kvm-debian-bookworm-go_agent.tgz"
    assert sc.stemcell_filename("1.5", "aws", "xen-hvm", "ubuntu-jammy", "raw") == \
        "bosh-stemcell-1.5-aws-xen-hvm-ubuntu-jammy-go_agent.tgz"


def test_manifest_fields():
    mf = sc.manifest("1.5", "openstack", "kvm", "debian-bookworm", "debian", "raw", "ab" * 20, 5120)
    assert mf["name"] == "bosh-openstack-kvm-debian-bookworm-go_agent"
    assert mf["sha1"] == "ab" * 20 and mf["bosh_protocol"] == "1" and mf["api_version"] == 3
    assert mf["stemcell_formats"] == ["openstack-raw"]
    cp = mf["cloud_properties"]
    assert (cp["infrastructure"], cp["hypervisor"], cp["disk"], cp["disk_format"], cp["container_format"],
            cp["os_type"], cp["os_distro"], cp["architecture"], cp["auto_disk_config"]) == (
        "openstack", "kvm", 5120, "raw", "bare", "linux", "debian", "x86_64", True)
    aws = sc.manifest("1.5", "aws", "xen-hvm", "debian-bookworm", "debian", "raw", "00", 5120)
    assert aws["cloud_properties"]["virtualization_type"] == "hvm"
    assert aws["cloud_properties"]["root_device_name"] == "/dev/sda1"


def test_to_yaml_is_block_yaml():
    text = sc.to_yaml({"a": "1", "b": [1, "x"], "c": {"d": True}, "e": {}})
    assert text == 'a: "1"\nb:\n  - 1\n  - "x"\nc:\n  d: true\ne: {}'


def test_member_problems():
    assert sc.member_problems(sc.MEMBERS) == []
    assert sc.member_problems(["./" + m for m in sc.MEMBERS] + ["./"]) == []
    probs = sc.member_problems(["image", "stemcell.MF", "extra.txt", "image"])
    assert "missing members: dev_tools_file_list.txt, packages.txt, sbom.spdx.json" in probs
    assert "extra members: extra.txt" in probs and "duplicate members: image" in probs


def test_spdx_sbom():
    doc = sc.spdx_sbom("n", [{"name": "libc6", "version": "2.36", "architecture": "amd64", "distro": "debian"}],
                       "2023-11-14T22:13:20Z", "seed")
    assert doc["spdxVersion"] == "SPDX-2.3"
    ref = doc["packages"][0]["externalRefs"][0]["referenceLocator"]
    assert ref == "pkg:deb/debian/libc6@2.36?arch=amd64"
    assert doc["relationships"][0]["relatedSpdxElement"] == doc["packages"][0]["SPDXID"]


def test_parse_size():
    assert disk.parse_size("5G") == 5 * 1024 ** 3
    assert disk.parse_size("5120M") == 5120 * 1024 ** 2
    assert disk.parse_size("512MiB") == 512 * 1024 ** 2
    with pytest.raises(ValueError):
        disk.parse_size("five gigs")


def test_layouts_and_parted_script():
    msdos = disk.layout("msdos", "grub-i386-pc", 1024 * disk.MIB)
    assert [p["role"] for p in msdos] == ["root"]
    assert disk.parted_script("msdos", msdos) == ["mklabel", "msdos", "mkpart", "primary", "ext4", "1MiB", "100%",
                                                  "set", "1", "boot", "on"]
    gpt = disk.layout("gpt", "grub-i386-pc", 1024 * disk.MIB)
    assert [p["role"] for p in gpt] == ["bios_grub", "root"]
    efi = disk.layout("gpt", "grub-x86_64-efi", 1024 * disk.MIB)
    assert [p["role"] for p in efi] == ["esp", "root"] and efi[1]["start_mib"] == 65
    assert "esp" in disk.parted_script("gpt", efi)


def test_grub_cfg_and_fstab():
    cfg = disk.grub_cfg("u-u", "/boot/vmlinuz-6", "/boot/initrd.img-6", "console=ttyS0", "T", "vcap", "grub.pbkdf2.x")
    assert 'set superusers="vcap"' in cfg and "password_pbkdf2 vcap grub.pbkdf2.x" in cfg
    assert "menuentry 'T' --unrestricted {" in cfg
    assert "linux /boot/vmlinuz-6 root=UUID=u-u ro console=ttyS0" in cfg
    assert disk.fstab("u-u", "ext4").splitlines()[1] == "UUID=u-u / ext4 defaults 0 1"


def test_newest_kernel_and_required_size():
    names = ["vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64",
             "initrd.img-6.1.0-10-amd64", "vmlinuz-6.1.0-11-amd64"]
    assert disk.newest_kernel(names) == ("vmlinuz-6.1.0-10-amd64", "initrd.img-6.1.0-10-amd64")
    assert disk.newest_kernel([]) == (None, None)
    # The docstring's contract: data + 256 bytes of inode table per inode + a
    # 64 MiB journal, 10% headroom on that, and 5% reserved for root on top.
    content, inodes = 1000 * disk.MIB, 10000
    need = content + inodes * 256 + 64 * disk.MIB
    size = disk.required_root_bytes(content, inodes)
    assert need * 1.10 / 0.95 - 1 < size <= need * 1.10 / 0.95, size
    assert disk.required_root_bytes(content, 2 * inodes) - size >= inodes * 256
    assert disk.required_root_bytes(0, 0) >= 64 * disk.MIB


@pytest.mark.parametrize("table,bootloader,before", [
    ("msdos", "grub-i386-pc", 1), ("gpt", "grub-i386-pc", 2), ("gpt", "grub-x86_64-efi", 65), ("msdos", "none", 1)])
def test_min_disk_mb_is_the_size_disk_image_accepts(table, bootloader, before):
    """The plan's floor (the min_disk_mb filter) and disk_image's check agree:
    at that size the root partition holds the content's need, one MiB less
    it does not."""
    from ansible_collections.osimage.builder.plugins.filter.tables import min_disk_mb as the_filter

    content, inodes = 1400 * 10 ** 6, 40000
    need = disk.required_root_bytes(content, inodes)
    mb = disk.min_disk_mb(content, inodes, table, bootloader)
    assert the_filter(str(content), inodes, table, bootloader) == mb
    assert mb == -(-need // disk.MIB) + before + 2
    root = disk.layout(table, bootloader, mb * disk.MIB)[-1]["size_bytes"]
    assert root >= need
    assert disk.layout(table, bootloader, (mb - 2) * disk.MIB)[-1]["size_bytes"] < need

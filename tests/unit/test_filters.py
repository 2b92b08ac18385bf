from ansible_collections.osimage.builder.plugins.filter.build_report import (
    artifact_row,
    format_missing,
    human_size,
    stage_row,
)


def test_stage_row():
    assert stage_row({"stage": "base_ssh", "seconds": 1.25, "skipped": False}).split() == ["base_ssh", "1.2", "s"]
    assert stage_row({"stage": "base_apt", "seconds": 0, "skipped": True}).split() == ["base_apt", "resumed"]


def test_human_size_and_artifact_row():
    assert human_size(512) == "512 B"
    assert human_size(3 * 1024 * 1024) == "3.0 MiB"
    row = artifact_row({"path": "/o/x.tgz", "size": 2048, "sha256": "ab"})
    assert row == "/o/x.tgz  2.0 KiB  sha256:ab"


def test_format_missing():
    # The build_host role's list uses the modules' own wording, from the one table.
    assert format_missing("qemu-img") == "qemu-img not found on the build host (Debian package: qemu-utils)"
    assert format_missing({"name": "grub-install"}) == \
        "grub-install not found on the build host (Debian package: grub2-common)"

"""The GPT layout of module_utils/_gpt.py against kurmaos' disk_layout.json
figures (spec: starts 4096, 266240, 270336, 532480; 2838528 sectors for the
base layout, 13676544 for vm), and its refusals."""
import re

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _gpt as gpt

BASE = [{"label": "EFI-SYSTEM", "type": "efi", "blocks": 262144, "fs": "vfat", "legacy_boot": True},
        {"label": "BIOS-BOOT", "type": "bios", "blocks": 4096},
        {"label": "OEM", "type": "data", "blocks": 262144, "fs": "ext4"},
        {"label": "ROOT", "type": "coreos-resize", "blocks": 2097152, "fs": "ext4"}]


def test_the_base_layout():
    layout, total = gpt.plan(BASE)
    assert [x[3] for x in layout] == [4096, 266240, 270336, 532480]
    assert total == 2838528 and total * 512 == 1453326336
    script = gpt.sfdisk_script(layout)
    assert "1 : start=4096, size=262144, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=EFI-SYSTEM, " \
           'attrs="LegacyBIOSBootable"' in script
    assert "4 : start=532480, size=2097152, type=3884DD41-8582-4404-B9A8-E9B84F2DF50E, name=ROOT\n" in script


def test_the_vm_layout():
    _layout, total = gpt.plan(BASE[:3] + [dict(BASE[3], blocks=12943360)])
    assert total == 13676544


def test_the_last_partition_fills_a_given_size():
    layout, total = gpt.plan(BASE[:3] + [{"label": "ROOT", "fs": "ext4"}], disk_blocks=2838528)
    assert total == 2838528 and layout[-1][4] == 2838528 - 34 - 532480


@pytest.mark.parametrize("parts,size,needle", [
    (BASE, 1000000, "the partitions need 2629666 blocks with the backup GPT, the disk has 1000000"),
    (BASE[:1] + [dict(BASE[1], label="EFI-SYSTEM")], None, "label EFI-SYSTEM is used twice"),
    ([dict(BASE[0], type="nope")], None, "type 'nope' is neither a GUID"),
    ([dict(BASE[0], fs="ntfs")], None, "fs 'ntfs'"),
    ([dict(BASE[0], label="a b")], None, "label 'a b'"),
    ([{"label": "A"}, {"label": "B", "blocks": 8}], None, "partitions[0] (A) has no blocks"),
    ([{"label": "A", "blocks": 8}, {"label": "B"}], 4096, "partitions[1] (B) does not fit"),
])
def test_layouts_that_do_not_fit_or_make_no_sense_are_refused(parts, size, needle):
    with pytest.raises(gpt.LayoutError, match=re.escape(needle)):
        gpt.plan(parts, disk_blocks=size)


def test_types_by_guid():
    assert gpt.type_guid("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7") == "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"

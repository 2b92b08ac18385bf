"""The guest image's byte layout (plugins/module_utils/_dax.py) against the
spec (Kata image_builder.sh + nsdax.gpl.c): the nd_pfn_sb and its Fletcher-64
checksum, both MBRs of the DAX header, the size rules, the dm-verity line and
kernel parameters; and guest_disk's xfs prototype."""
import os
import struct

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _dax as dax
from ansible_collections.osimage.builder.plugins.modules import guest_disk

MIB = 1024 * 1024


def test_fletcher64_by_hand():
    assert dax.fletcher64(b"\0" * 16) == 0
    # words 1, 2, 3: lo = 1, 3, 6; hi = 1, 4, 10
    assert dax.fletcher64(struct.pack("<III", 1, 2, 3)) == (10 << 32) | 6
    # lo wraps modulo 2^32, and so does hi
    assert dax.fletcher64(struct.pack("<II", 0xFFFFFFFF, 2)) == ((0xFFFFFFFF + 1) % 2 ** 32) << 32 | 1
    with pytest.raises(ValueError):
        dax.fletcher64(b"abc")


def test_the_pfn_superblock_has_the_spec_layout():
    sb = dax.nd_pfn_sb()
    assert len(sb) == 4096
    assert sb[0:16] == b"NVDIMM_PFN_INFO\0"
    assert sb[16:48] == b"\0" * 32
    assert struct.unpack_from("<I", sb, 48) == (0,)          # flags
    assert struct.unpack_from("<HH", sb, 52) == (0, 2)       # version 0.2
    assert struct.unpack_from("<Q", sb, 56) == (2097152,)    # dataoff
    assert struct.unpack_from("<Q", sb, 64) == (0,)          # npfns
    assert struct.unpack_from("<I", sb, 72) == (1,)          # PFN_MODE_RAM
    assert struct.unpack_from("<III", sb, 76) == (0, 0, 2097152)  # start_pad, end_trunc, align
    assert sb[88:4088] == b"\0" * 4000
    # The checksum over the block with the checksum field zeroed, computed
    # here independently of the module.
    lo = hi = 0
    for (w,) in struct.iter_unpack("<I", sb[:4088] + b"\0" * 8):
        lo = (lo + w) & 0xFFFFFFFF
        hi += lo
    assert struct.unpack_from("<Q", sb, 4088)[0] == ((hi & 0xFFFFFFFF) << 32) | lo


def test_a_flipped_byte_breaks_the_checksum():
    sb = bytearray(dax.nd_pfn_sb())
    assert dax.parse_nd_pfn_sb(bytes(sb))["checksum_ok"]
    sb[60] ^= 1
    fields = dax.parse_nd_pfn_sb(bytes(sb))
    assert not fields["checksum_ok"] and fields["dataoff"] != 2097152
    with pytest.raises(ValueError):
        dax.parse_nd_pfn_sb(b"\0" * 512)


def test_the_dax_header_of_a_128_mib_image():
    # Spec §4: MBR #1 6144..262143, MBR #2 2048..258047 (relative).
    header = dax.dax_header(128, 126, False, 0x12345678)
    assert len(header) == 2 * MIB
    one = dax.parse_mbr(header[:512])
    assert one["disk_id"] == 0x12345678
    assert [(p["start"], p["end"], p["type"]) for p in one["partitions"]] == [(6144, 262143, 0x83)]
    assert dax.parse_nd_pfn_sb(header[4096:8192])["checksum_ok"]
    assert header[512:4096] == b"\0" * 3584 and header[8192:] == b"\0" * (2 * MIB - 8192)
    two = dax.parse_mbr(dax.disk_mbr(126, False, 0x12345678))
    assert [(p["start"], p["end"]) for p in two["partitions"]] == [(2048, 258047)]
    assert one["partitions"][0]["sectors"] == two["partitions"][0]["sectors"] == 256000


def test_the_verity_layout_splits_at_99_percent():
    assert dax.partitions_mb(126, True) == [(1, 124), (124, 126)]
    two = dax.parse_mbr(dax.disk_mbr(126, True, 1))["partitions"]
    assert [(p["start"], p["end"], p["boot"]) for p in two] == [
        (2048, 124 * 2048 - 1, True), (124 * 2048, 126 * 2048 - 1, False)]
    one = dax.parse_mbr(dax.dax_header(128, 126, True, 1)[:512])["partitions"]
    assert [(p["start"], p["end"]) for p in one] == [(6144, 126 * 2048 - 1), (126 * 2048, 128 * 2048 - 1)]


def test_mbr_rules():
    sector = dax.mbr([(2048, 4096, 0x83)], disk_id=7)
    assert len(sector) == 512 and sector[510:] == b"\x55\xaa"
    with pytest.raises(ValueError):
        dax.mbr([(1, 1, 0x83)] * 5)
    with pytest.raises(ValueError):
        dax.mbr([(2048, 0xFFFFFFFF, 0x83)])
    with pytest.raises(ValueError):
        dax.parse_mbr(b"\0" * 512)


@pytest.mark.parametrize("given,total,notice", [
    (100, 128, "rounded up to 128 MiB"),
    (128, 128, None),
    (300, 384, "rounded up to 384 MiB"),
])
def test_a_given_size_is_rounded_up_to_128(given, total, notice):
    got, disk, note = dax.image_size_mb("ext4", 50, 0, True, False, given)
    assert (got, disk) == (total, total - 2)
    assert (note is None) if notice is None else (notice in note)


def test_computed_sizes():
    # ext4/xfs: fs + 1 MiB + free + DAX, rounded up to 128.
    assert dax.image_size_mb("ext4", 125, 0, True, False) == (128, 126, None)
    assert dax.image_size_mb("ext4", 126, 0, True, False) == (256, 254, None)
    assert dax.image_size_mb("ext4", 100, 40, False, False) == (256, 256, None)
    # erofs is not rounded: fs + 1 MiB + 1 + DAX.
    assert dax.image_size_mb("erofs", 20, 0, True, False) == (24, 22, None)


@pytest.mark.parametrize("given,words", [
    (0, "positive"),
    (-5, "positive"),
    (128, "smaller than the 203 MiB"),
])
def test_sizes_that_cannot_be(given, words):
    with pytest.raises(ValueError, match=words):
        dax.image_size_mb("ext4", 200, 0, True, False, given)


VERITY_OUT = """\
VERITY header information for data.img
UUID:
Hash type:              1
Data blocks:            31744
Data block size:        4096
Hash block size:        4096
Hash algorithm:         sha256
Salt:                   3bd6da99
Root hash:              ed7d146a
"""


def test_the_verity_line_and_kernel_parameters():
    info = dax.parse_veritysetup(VERITY_OUT)
    assert dax.root_hash_line(info) == \
        "root_hash=ed7d146a,salt=3bd6da99,data_blocks=31744,data_block_size=4096,hash_block_size=4096"
    assert dax.verity_kernel_params(info, "ext4", nvdimm=False) == (
        'dm-mod.create="dm-verity,,,ro,0 253952 verity 1 /dev/vda1 /dev/vda2 4096 4096 31744 0 sha256 ed7d146a '
        '3bd6da99" root=/dev/dm-0 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4')
    assert "/dev/pmem0p1 /dev/pmem0p2" in dax.verity_kernel_params(info, "erofs", nvdimm=True)
    assert dax.verity_kernel_params(info, "erofs", nvdimm=True).endswith("rootflags=ro rootfstype=erofs")
    with pytest.raises(ValueError, match="printed no .*root_hash"):
        dax.parse_veritysetup("Salt: 00\n")


def test_root_flags_follow_the_runtime():
    assert dax.root_flags("ext4", True) == "dax,data=ordered,errors=remount-ro ro"
    assert dax.root_flags("ext4", False) == "data=ordered,errors=remount-ro ro"
    assert dax.root_flags("xfs", True) == "dax ro" and dax.root_flags("erofs", False) == "ro"


def test_the_xfs_prototype(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("x")
    os.chmod(root / "etc" / "hosts", 0o4755)
    os.symlink("usr/bin", root / "bin")
    proto = guest_disk.xfs_protofile(str(root)).splitlines()
    assert proto[:2] == ["/dev/null", "0 0"]
    assert proto[2].startswith("d--") and proto[-1] == "$"
    assert " bin l--777 " in " " + proto[3] and proto[3].endswith(" usr/bin")
    assert proto[4].startswith(" etc d--755 ")
    assert proto[5].strip().startswith("hosts -u-755 ") and proto[5].endswith(str(root / "etc" / "hosts"))
    (root / "etc" / "a b").write_text("")
    with pytest.raises(ValueError, match="blank"):
        guest_disk.xfs_protofile(str(root))

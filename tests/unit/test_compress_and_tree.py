"""The shared compression, tree walk and streaming digests, on real data."""

import gzip
import hashlib
import io
import lzma
import os
import stat

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _compress as c
from ansible_collections.osimage.builder.plugins.module_utils import _digest as d
from ansible_collections.osimage.builder.plugins.module_utils._tree import walk_tree

DATA = b"".join(b"line %d of a reproducible archive\n" % i for i in range(20000))


def test_gzip_has_no_name_nor_time_and_round_trips():
    out = c.compress_bytes(DATA, "gzip")
    assert out[:3] == b"\x1f\x8b\x08" and out[3] == 0  # FLG: no FNAME, no FCOMMENT
    assert out[4:8] == b"\0\0\0\0"  # MTIME 0
    assert gzip.decompress(out) == DATA
    assert out == c.compress_bytes(DATA, "gzip")


@pytest.mark.parametrize("check,flag", [("crc32", 0x01), ("crc64", 0x04)])
def test_xz_check_is_the_one_asked_for(check, flag):
    # xz file format 1.0.4, 2.1.1.2: the second stream-flags byte holds the check type.
    out = c.compress_bytes(DATA, "xz", xz_check=check)
    assert out[:6] == b"\xfd7zXZ\x00" and out[7] == flag
    assert lzma.decompress(out) == DATA


def test_streamed_file_and_bytes_give_the_same_bytes(tmp_path):
    src, dst = tmp_path / "plain", tmp_path / "packed"
    src.write_bytes(DATA)
    for compression in ("gzip", "xz", "none"):
        c.compress_file(str(src), str(dst), compression)
        assert dst.read_bytes() == c.compress_bytes(DATA, compression), compression
    assert c.compress_bytes(DATA, "none") == DATA


def test_zstd_needs_the_program_through_a_runner():
    with pytest.raises(ValueError, match="runner"):
        c.compress_bytes(DATA, "zstd")
    with pytest.raises(ValueError):
        c.compress_bytes(DATA, "lz4")


def test_open_compressor_leaves_the_target_open():
    out = io.BytesIO()
    with c.open_compressor(out, "none") as w:
        w.write(b"x")
    with c.open_compressor(out, "gzip") as w:
        w.write(b"y")
    assert not out.closed and out.getvalue()[:1] == b"x" and gzip.decompress(out.getvalue()[1:]) == b"y"


def test_digest_writer_and_reader_see_every_byte():
    sink = io.BytesIO()
    w = d.DigestWriter("sha512", sink)
    w.write(DATA[:100])
    w.write(DATA[100:])
    assert w.hexdigest() == hashlib.sha512(DATA).hexdigest() and w.tell() == len(DATA) == w.size
    assert sink.getvalue() == DATA
    r = d.DigestReader(io.BytesIO(DATA))
    assert r.read(10) == DATA[:10]
    assert r.drain().hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_walk_is_sorted_by_path_and_never_follows_a_link(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    (tmp_path / "a-b").write_text("dash")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "z").write_text("z")
    os.symlink("b", tmp_path / "link")
    rels = [rel for rel, _full, _st in walk_tree(str(tmp_path))]
    # Plain string order ("a" < "a-b" < "a/z"): what the cpio and ACI writers
    # have always used; a parent before its children; the link not entered.
    assert rels == ["a", "a-b", "a/z", "b", "b/x", "link"]
    full, st = {r: (f, s) for r, f, s in walk_tree(str(tmp_path))}["link"]
    assert full == str(tmp_path / "link") and stat.S_ISLNK(st.st_mode)  # lstat, not the directory it names


def test_tree_digest_sees_a_symlink_to_a_directory(tmp_path):
    (tmp_path / "t" / "d").mkdir(parents=True)
    before = d.tree_digest([str(tmp_path / "t")])
    os.symlink("d", tmp_path / "t" / "link")
    assert d.tree_digest([str(tmp_path / "t")]) != before

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compressions the collection writes, in one place: the programs a
streamed tar | compressor pipeline runs (rootfs_archive, stemcell_package),
and in-process compression of a file or of bytes (aci_image, initramfs).
Every variant is reproducible: no name or time in a gzip header, fixed
levels and presets."""

from __future__ import annotations

import gzip
import io
import lzma
import shutil

CHUNK = 1024 * 1024

# Programs for a streamed pipeline, in order of preference.
COMPRESSORS = {"gzip": (["pigz", "-n", "-6"], ["gzip", "-n", "-6"]),
               "xz": (["xz", "-T0", "-6"],), "zstd": (["zstd", "-q", "-T0", "-19"],), "none": ()}

# xz integrity checks. The kernel's xz decompressor (initramfs, CONFIG_RD_XZ)
# knows CRC32 only; everything else gets xz's default CRC64.
XZ_CHECKS = {"crc32": lzma.CHECK_CRC32, "crc64": lzma.CHECK_CRC64}
XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6}]
GZIP_LEVEL = 9


def pick_compressor(module, compression):
    """The argv of the first installed program for `compression` (None for
    none); fails naming the programs when none is installed."""
    for argv in COMPRESSORS[compression]:
        if module.get_bin_path(argv[0]):
            return argv
    if compression != "none":
        module.fail_json(msg="compression=%s needs %s on the build host"
                             % (compression, " or ".join(a[0] for a in COMPRESSORS[compression])))
    return None


class _Plain:
    """compression=none as a writer: passes writes on; closing it leaves
    the underlying file open, as GzipFile and LZMAFile do."""

    def __init__(self, fout):
        self.fout = fout

    def write(self, data):
        return self.fout.write(data)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_compressor(fout, compression, xz_check="crc64"):
    """A binary writer that compresses into the file object `fout` with gzip,
    xz or none (the in-process compressions); closing it ends the stream and
    leaves `fout` open."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=fout, mode="wb", compresslevel=GZIP_LEVEL, mtime=0, filename="")
    if compression == "xz":
        return lzma.LZMAFile(fout, "wb", format=lzma.FORMAT_XZ, check=XZ_CHECKS[xz_check], filters=XZ_FILTERS)
    if compression == "none":
        return _Plain(fout)
    raise ValueError("compression %r is not done in-process (gzip, xz, none)" % compression)


def compress_stream(fin, fout, compression, runner=None, xz_check="crc64"):
    """Compress the binary file `fin` into the binary file `fout` with gzip,
    xz, zstd (through `runner`, a CommandRunner: the zstd program) or none."""
    if compression == "zstd":
        if runner is None:
            raise ValueError("compression=zstd runs the zstd program: pass a runner")
        _rc, out, _err = runner.run(COMPRESSORS["zstd"][0] + ["-c"], "compress with zstd (compression=zstd)",
                                    data=fin.read(), binary_data=True, encoding=None)
        fout.write(out)
        return
    with open_compressor(fout, compression, xz_check) as out:
        shutil.copyfileobj(fin, out, CHUNK)


def compress_file(src, dst, compression, runner=None, xz_check="crc64"):
    """Write `src` compressed to `dst`."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        compress_stream(fin, fout, compression, runner, xz_check)


def compress_bytes(data, compression, runner=None, xz_check="crc64"):
    """`data` compressed."""
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, compression, runner, xz_check)
    return out.getvalue()

"""The ELF closure helpers of the KurmaOS pipeline (module_utils/_elf.py):
the glibc loader's trace parsed as kurmaos' init-rapid.conf reads it, paths
resolved inside a root as chroot would, program headers read without running
anything."""
import os
import shutil

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _elf as elf

TRACE = (
    "\tlinux-vdso.so.1 (0x00007ffd5b7e5000)\n"
    "\tlibjq.so.1 => /lib/x86_64-linux-gnu/libjq.so.1 (0x00007f85ed3a2000)\n"
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f85ed1c0000)\n"
    "\t/lib64/ld-linux-x86-64.so.2 (0x00007f85ed40c000)\n"
)


def test_the_trace_gives_sonames_and_paths_without_the_vdso():
    assert elf.parse_trace(TRACE) == [("libjq.so.1", "/lib/x86_64-linux-gnu/libjq.so.1"),
                                      ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
                                      ("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2")]


def test_lines_not_starting_with_a_tab_are_dropped():
    assert elf.parse_trace("/usr/bin/jq:\n" + TRACE)[0][0] == "libjq.so.1"
    assert elf.parse_trace("\tstatically linked\n") == []


def test_a_missing_library_is_an_error_naming_it():
    with pytest.raises(elf.ElfError, match="not found: libonig.so.5, libm.so.6"):
        elf.parse_trace(TRACE + "\tlibonig.so.5 => not found\n\tlibm.so.6 => not found\n")


def test_paths_resolve_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr" / "lib" / "x86_64-linux-gnu" / "libc.so.6").write_text("libc")
    os.symlink("usr/lib", root / "lib")
    os.symlink("/lib/x86_64-linux-gnu/libc.so.6", root / "usr" / "lib" / "x86_64-linux-gnu" / "libc.so")
    os.symlink("../../../../../../etc/passwd", root / "escape")
    got = elf.resolve_in_root(str(root), "/lib/x86_64-linux-gnu/libc.so")
    assert got == str(root / "usr" / "lib" / "x86_64-linux-gnu" / "libc.so.6")
    # An absolute or climbing link never leaves the root.
    assert elf.resolve_in_root(str(root), "/escape") == str(root / "etc" / "passwd")
    os.symlink("loop", root / "loop")
    with pytest.raises(elf.ElfError, match="too many symlinks"):
        elf.resolve_in_root(str(root), "/loop")


def test_find_library_searches_the_multiarch_directories(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr" / "lib" / "x86_64-linux-gnu" / "libnss_dns.so.2").write_text("x")
    assert elf.find_library(str(root), "libnss_dns.so.2") == "/usr/lib/x86_64-linux-gnu/libnss_dns.so.2"
    assert elf.find_library(str(root), "libnss_files.so.2") is None


def test_nss_services_name_their_modules():
    assert elf.nss_library("files") == "libnss_files.so.2"
    for bad in ["../x", "dns files", "", "Files"]:
        with pytest.raises(elf.ElfError):
            elf.nss_library(bad)


def test_program_headers_of_real_binaries(tmp_path):
    # coreutils' ls: a dynamically linked PIE on every Debian host
    is_elf, interp, has_dynamic = elf.elf_info(os.path.realpath(shutil.which("ls", path="/usr/bin:/bin")))
    assert is_elf and interp.startswith("/lib") and has_dynamic
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\n")
    assert elf.elf_info(str(script)) == (False, None, False)
    static = "/bin/busybox"
    if os.path.exists(static) and elf.elf_info(static)[1] is None:
        assert elf.elf_info(static)[0] is True

"""The checks made before a tarball this build did not make is unpacked
(rootfs_archive trusted=false), on real TarInfo members and a real tree."""
import io
import os
import stat
import tarfile

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _archive as archive


def _member(name, kind="file", linkname="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                 "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}[kind]
    info.linkname, info.mode = linkname, mode
    return info


def test_a_plain_root_has_no_problems():
    members = [_member("./", "dir"), _member("./etc", "dir"), _member("./etc/localtime", "sym", "/usr/share/x"),
               _member("./bin", "sym", "usr/bin"), _member("./usr/bin/su", mode=0o4755),
               _member("./usr/bin/wall", mode=0o2755), _member("./usr/bin/su2", "hard", "./usr/bin/su"),
               _member("./dev/null", "chr"), _member("./dev/sda", "blk")]
    problems, devices, setid = archive.untrusted_member_problems(members)
    assert problems == []
    assert devices == ["./dev/null", "./dev/sda"]
    assert setid == ["./usr/bin/su", "./usr/bin/wall"]


@pytest.mark.parametrize("members,words", [
    ([_member("/etc/passwd")], "escapes the root"),
    ([_member("../../etc/passwd")], "escapes the root"),
    ([_member("./usr/../../etc/passwd")], "escapes the root"),
    ([_member("./x", "hard", "/etc/shadow")], "points out of the root"),
    ([_member("./x", "hard", "../etc/shadow")], "points out of the root"),
    ([_member("./etc", "sym", "/etc"), _member("./etc/cron.d/evil")], "is written through the symlink 'etc'"),
])
def test_untrusted_members_that_escape_are_refused(members, words):
    problems, _devices, _setid = archive.untrusted_member_problems(members)
    assert any(words in p for p in problems), problems


def test_read_members_of_a_compressed_tarball(tmp_path):
    path = str(tmp_path / "x.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("./a")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"1"))
    assert [m.name for m in archive.read_members(path)] == ["./a"]


def test_make_unprivileged_clears_setid_and_removes_devices(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    (tmp_path / "dev").mkdir()
    os.mknod(tmp_path / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (tmp_path / "su").write_text("x")
    os.chmod(tmp_path / "su", 0o4755)
    (tmp_path / "link").symlink_to("su")
    devices, setid = archive.make_unprivileged(str(tmp_path))
    assert devices == ["dev/null"] and setid == ["su"]
    assert not os.path.lexists(tmp_path / "dev/null")
    assert stat.S_IMODE(os.stat(tmp_path / "su").st_mode) == 0o755


def test_summary_caps_the_list():
    assert archive.summary(["a", "b"]) == "a, b"
    assert archive.summary(str(i) for i in range(25)).endswith("and 5 more")

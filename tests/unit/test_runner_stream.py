"""CommandRunner.stream: a pipeline whose output is read as it comes (tar |
compressor, zstd -dc of a tarball), under the runner's rules: programs
resolved, the line recorded, a failing command reported by what it does with
its stderr, nothing left running."""
import io
import shutil
import subprocess
import tarfile
import time

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _archive as archive
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


class Failed(Exception):
    pass


class Module:
    """The part of AnsibleModule CommandRunner uses."""

    params = {}

    def get_bin_path(self, name, required=False):
        return shutil.which(name)

    def fail_json(self, **kwargs):
        raise Failed(kwargs)

    def run_command(self, argv, **kwargs):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr


def test_a_pipeline_streams_and_is_recorded():
    runner = CommandRunner(Module())
    with runner.stream([["printf", "a%sb", "-"], ["tr", "ab", "xy"]], ["print", "translate"]) as out:
        assert out.read() == b"x-y"
    assert runner.commands == ["%s a%%sb - | %s ab xy" % (shutil.which("printf"), shutil.which("tr"))]


def test_the_failing_command_is_named_with_its_stderr():
    runner = CommandRunner(Module())
    with pytest.raises(Failed) as info:
        with runner.stream([["sh", "-c", "echo broken >&2; exit 3"], ["cat"]], ["make the stream", "copy"]) as out:
            out.read()
    msg = info.value.args[0]["msg"]
    assert msg.startswith("make the stream failed: ") and msg.endswith("broken"), msg
    assert info.value.args[0]["rc"] == 3


def test_an_error_in_the_block_kills_the_pipeline():
    runner = CommandRunner(Module())
    began = time.monotonic()
    with pytest.raises(RuntimeError):
        with runner.stream([["sleep", "60"]], ["sleep"]):
            raise RuntimeError("the reader failed")
    # Killed and reaped on the way out, not waited for.
    assert time.monotonic() - began < 10


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")
def test_read_members_of_a_zstd_tarball_goes_through_the_runner(tmp_path):
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        info = tarfile.TarInfo("./a")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"1"))
    (tmp_path / "x.tar").write_bytes(plain.getvalue())
    runner = CommandRunner(Module())
    runner.run(["zstd", "-q", "-f", str(tmp_path / "x.tar"), "-o", str(tmp_path / "x.tar.zst")], "compress")
    assert [m.name for m in archive.read_members(str(tmp_path / "x.tar.zst"), runner)] == ["./a"]
    assert runner.commands[-1].endswith("-dc %s" % (tmp_path / "x.tar.zst"))
    broken = tmp_path / "broken.tar.zst"
    broken.write_bytes((tmp_path / "x.tar.zst").read_bytes()[:12])
    with pytest.raises(Failed) as info:
        archive.read_members(str(broken), runner)
    assert "decompress %s failed" % broken in info.value.args[0]["msg"]

"""release_mounts, input_file and build_stamp against real mounts, loop
devices and files."""
import hashlib
import json
import os
import subprocess

from tests import local_archive
from tests.conftest import loops_under, mounts_under, needs_root, run_module

pytestmark = [needs_root]


def test_release_mounts_unmounts_deepest_first_and_detaches_loops(tmp_path):
    work = tmp_path / "work"
    (work / "mnt").mkdir(parents=True)
    img = work / "disk.img"
    subprocess.run(["truncate", "-s", "16M", str(img)], check=True)
    subprocess.run(["mkfs.ext4", "-q", str(img)], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True,
                         check=True).stdout.strip()
    subprocess.run(["mount", dev, str(work / "mnt")], check=True)
    (work / "mnt/proc").mkdir()
    subprocess.run(["mount", "-t", "proc", "proc", str(work / "mnt/proc")], check=True)
    try:
        check = run_module("release_mounts", {"path": str(work)}, check=True)
        assert check["changed"] is True and check["unmounted"][0].endswith("/mnt/proc")
        assert len(mounts_under(str(work))) == 2
        res = run_module("release_mounts", {"path": str(work)})
        assert res["changed"] is True
        assert res["unmounted"] == [str(work / "mnt/proc"), str(work / "mnt")]
        assert res["detached"] == [dev]
        assert mounts_under(str(work)) == [] and loops_under(str(work)) == []
        assert run_module("release_mounts", {"path": str(work)})["changed"] is False
    finally:
        # A failing module must not leave the test's own mounts on the host.
        subprocess.run(["umount", "-R", str(work / "mnt")], check=False, capture_output=True)
        subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)


def test_release_mounts_removes_what_killed_writes_left_and_nothing_else(tmp_path):
    out = tmp_path / "output"
    (out / ".kurmaos.raw.gpt_image-k2j4h1x9").mkdir(parents=True)  # a module's work directory
    (out / ".kurmaos.raw.gpt_image-k2j4h1x9" / "root.img").write_bytes(b"half")
    (out / ".kurma.tar.gz.stamp.json.a1b2c3d4").write_text("{")  # the stamp's temporary
    (out / ".ansible_tmpq8w7e6r5kurmaos.vmx").write_text("half")  # Ansible's copy/template
    keep = [".gitignore", ".other.img.a1b2c3d4", "kurmaos.raw", ".kurmaos.raw"]
    for name in keep:
        (out / name).write_text("keep")
    files = [str(out / "kurma.tar.gz"), str(out / "kurmaos.raw"), str(out / "kurmaos.vmx")]
    stale = sorted(str(out / n) for n in (".kurma.tar.gz.stamp.json.a1b2c3d4", ".kurmaos.raw.gpt_image-k2j4h1x9",
                                          ".ansible_tmpq8w7e6r5kurmaos.vmx"))
    check = run_module("release_mounts", {"path": str(tmp_path / "work"), "partial_files": files}, check=True)
    assert check["changed"] is True and sorted(check["removed"]) == stale
    assert len(os.listdir(out)) == 3 + len(keep)
    res = run_module("release_mounts", {"path": str(tmp_path / "work"), "partial_files": files})
    assert res["changed"] is True and sorted(res["removed"]) == stale
    assert sorted(os.listdir(out)) == sorted(keep)
    again = run_module("release_mounts", {"path": str(tmp_path / "work"), "partial_files": files})
    assert again["changed"] is False and again["removed"] == []


def test_release_mounts_refuses_root():
    res = run_module("release_mounts", {"path": "/"})
    assert res.get("failed") is True and "path=/" in res["msg"]


def test_input_file_verifies_the_checksum(tmp_path):
    src = tmp_path / "agent"
    src.write_bytes(b"binary")
    good = hashlib.sha256(b"binary").hexdigest()
    dest = tmp_path / "cache/agent"
    bad = run_module("input_file", {"src": str(src), "sha256": "0" * 64, "dest": str(dest)})
    assert bad.get("failed") is True and "refusing to use it" in bad["msg"] and good in bad["msg"]
    assert os.listdir(tmp_path / "cache") == []
    first = run_module("input_file", {"src": "file://" + str(src), "sha256": good, "dest": str(dest), "mode": "0755"})
    assert first["changed"] is True and first["artifact"]["sha256"] == good
    assert oct(os.stat(dest).st_mode & 0o777) == "0o755"
    assert run_module("input_file", {"src": str(src), "sha256": good, "dest": str(dest), "mode": "0755"})[
        "changed"] is False
    missing = run_module("input_file", {"src": str(tmp_path / "nope"), "sha256": good, "dest": str(tmp_path / "x")})
    assert missing.get("failed") is True and "does not exist" in missing["msg"]
    notsha = run_module("input_file", {"src": str(src), "sha256": "abc", "dest": str(tmp_path / "x")})
    assert notsha.get("failed") is True and "sha256=abc is not a sha256" in notsha["msg"]


def test_build_stamp_query_record_and_tamper(tmp_path):
    art = tmp_path / "image.tgz"
    extra = tmp_path / "packages.txt"
    args = {"artifact": str(art), "outputs": [str(extra)], "inputs": {"suite": "bookworm", "n": 1},
            "writer": "pipeline:test"}
    nowriter = run_module("build_stamp", {k: v for k, v in args.items() if k != "writer"})
    assert nowriter.get("failed") is True and "writer" in nowriter["msg"], nowriter
    q = run_module("build_stamp", args)
    assert q["changed"] is False and q["uptodate"] is False and q["reason"].startswith("missing:")
    art.write_bytes(b"tgz")
    extra.write_text("pkgs")
    assert run_module("build_stamp", dict(args, state="present"), check=True)["changed"] is True
    assert not os.path.exists(str(art) + ".stamp.json")
    # An old layout's stamp is not trusted; recording removes it.
    (tmp_path / "image.tgz.pipeline.json").write_text(json.dumps({"inputs": args["inputs"], "outputs": {}}))
    assert run_module("build_stamp", args)["reason"] == "no stamp beside the artifact"
    rec = run_module("build_stamp", dict(args, state="present"))
    assert rec["changed"] is True
    assert sorted(os.listdir(tmp_path)) == ["image.tgz", "image.tgz.stamp.json", "packages.txt"]
    # Another writer's record of the same stamp is its own: asking for it finds none, writing it keeps ours.
    other = dict(args, writer="stemcell_package", outputs=[])
    assert run_module("build_stamp", other)["reason"] == "no stamp beside the artifact"
    assert run_module("build_stamp", dict(other, state="present"))["changed"] is True
    records = json.loads((tmp_path / "image.tgz.stamp.json").read_text())["records"]
    assert sorted(records) == ["pipeline:test", "stemcell_package"]
    assert records["pipeline:test"]["outputs"] == {str(art): hashlib.sha256(b"tgz").hexdigest(),
                                                   str(extra): hashlib.sha256(b"pkgs").hexdigest()}
    assert run_module("build_stamp", dict(args, state="present"))["changed"] is False
    assert run_module("build_stamp", args)["uptodate"] is True
    changed = run_module("build_stamp", dict(args, inputs={"suite": "bookworm", "n": 2}))
    assert changed["uptodate"] is False and changed["reason"] == "inputs changed: n"
    newer = run_module("build_stamp", dict(args, versions={"roles/x": "2"}))
    assert newer["uptodate"] is False and newer["reason"] == "inputs changed: versions (roles/x)"
    extra.write_text("tampered")
    assert run_module("build_stamp", args)["reason"] == "modified since built: %s" % extra


def test_input_file_by_url_needs_a_sha256_and_leaves_nothing_on_a_mismatch(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "agent").write_bytes(b"binary from the network")
    good = hashlib.sha256(b"binary from the network").hexdigest()
    cache = tmp_path / "cache"
    with local_archive.serve(served) as url:
        nosha = run_module("input_file", {"src": url + "/agent", "dest": str(cache / "agent")})
        assert nosha.get("failed") is True and "sha256" in nosha["msg"], nosha
        bad = run_module("input_file", {"src": url + "/agent", "sha256": "0" * 64, "dest": str(cache / "agent")})
        assert bad.get("failed") is True and "refusing to use it" in bad["msg"] and good in bad["msg"], bad
        assert os.listdir(cache) == []  # the temporary download is gone
        gone = run_module("input_file", {"src": url + "/nope", "sha256": good, "dest": str(cache / "agent")})
        assert gone.get("failed") is True and "could not be downloaded" in gone["msg"], gone
        assert os.listdir(cache) == []
        args = {"src": url + "/agent", "sha256": good, "dest": str(cache / "agent")}
        assert run_module("input_file", args, check=True)["changed"] is True and os.listdir(cache) == []
        first = run_module("input_file", args)
        assert first["changed"] is True and first["artifact"]["sha256"] == good, first
        (served / "agent").unlink()  # the cache is keyed on the checksum: no download
        assert run_module("input_file", args)["changed"] is False
        assert os.listdir(cache) == ["agent"]


def test_input_file_refuses_a_mode_that_is_not_octal(tmp_path):
    src = tmp_path / "agent"
    src.write_bytes(b"binary")
    res = run_module("input_file", {"src": str(src), "sha256": hashlib.sha256(b"binary").hexdigest(),
                                    "dest": str(tmp_path / "cache/agent"), "mode": "rwx"})
    assert res.get("failed") is True and "mode=rwx is not an octal file mode" in res["msg"], res
    assert not (tmp_path / "cache").exists()


def test_build_dirs_made_private_once_check_mode_writes_nothing(tmp_path):
    dirs = {"x_work_dir": {"path": str(tmp_path / "a" / "work"), "mode": "0700"},
            "x_output_dir": {"path": str(tmp_path / "out"), "mode": "0700"}}
    check = run_module("build_dirs", {"dirs": dirs}, check=True)
    assert check["changed"] is True and str(tmp_path / "a") in check["created"]
    assert not (tmp_path / "a").exists() and not (tmp_path / "out").exists()
    first = run_module("build_dirs", {"dirs": dirs})
    assert first["changed"] is True and oct(os.stat(tmp_path / "a" / "work").st_mode & 0o777) == "0o700"
    assert run_module("build_dirs", {"dirs": dirs})["changed"] is False
    os.chmod(tmp_path / "out", 0o777)
    bad = run_module("build_dirs", {"dirs": dirs})
    assert bad.get("failed") is True and bad["msg"].startswith("x_output_dir=%s: " % (tmp_path / "out"))

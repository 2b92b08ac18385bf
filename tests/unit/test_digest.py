import hashlib
import json
import os

import pytest

from ansible_collections.osimage.builder.plugins.module_utils import _digest as d


def test_inputs_digest_ignores_key_order():
    assert d.inputs_digest({"a": 1, "b": [1, 2]}) == d.inputs_digest({"b": [1, 2], "a": 1})
    assert d.inputs_digest({"a": 1}) != d.inputs_digest({"a": 2})


def test_changed_inputs_names_added_removed_and_changed_keys():
    assert d.changed_inputs({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 4}) == ["b", "c", "d"]
    assert d.changed_inputs({"a": [1]}, {"a": [1]}) == []
    assert d.changed_inputs(None, {"a": 1}) == ["a"]


def test_rebuild_reason(tmp_path):
    art = tmp_path / "x.tar"
    assert d.rebuild_reason(None, {"a": 1}, False) == "artifact missing"
    art.write_bytes(b"x")
    assert d.rebuild_reason(None, {"a": 1}, True) == "no stamp beside the artifact"
    record = d.write_stamp(str(art), "rootfs_bootstrap", {"a": 1, "b": 2})
    assert os.path.exists(str(art) + ".stamp.json")
    assert d.read_stamp(str(art), "rootfs_bootstrap") == record
    assert d.read_stamp(str(art), "pipeline:os_image") is None
    assert d.rebuild_reason(record, {"a": 1, "b": 2}, True) is None
    assert d.rebuild_reason(record, {"a": 1, "b": 3}, True) == "inputs changed: b"
    assert oct(os.stat(str(art) + ".stamp.json").st_mode & 0o777) == "0o644"


def test_the_stamp_has_one_schema(tmp_path):
    art = tmp_path / "x.tgz"
    art.write_bytes(b"x")
    sha = d.sha256_file(str(art))
    record = d.write_stamp(str(art), "disk_image", {"a": 1}, {str(art): sha}, versions={"qemu-img": "7.2"})
    stamp = json.loads((tmp_path / "x.tgz.stamp.json").read_text())
    assert stamp == {"schema": 1, "records": {"disk_image": record}}
    assert record == {"inputs": {"a": 1}, "versions": {"qemu-img": "7.2"}, "outputs": {str(art): sha},
                      "digest": hashlib.sha256(d.canonical_json({"inputs": {"a": 1}, "versions": {"qemu-img": "7.2"}})
                                               .encode()).hexdigest()}
    # outputs are a flat path -> sha256 map, nothing nested
    with pytest.raises(ValueError, match="path to its sha256"):
        d.write_stamp(str(art), "disk_image", {"a": 1}, {"sha256": {str(art): sha}})
    with pytest.raises(ValueError, match="writer"):
        d.write_stamp(str(art), "", {"a": 1})
    assert d.read_stamp(str(art), "disk_image") == record  # a refused write changed nothing


def test_two_writers_share_the_stamp_and_keep_each_others_record(tmp_path):
    art = tmp_path / "bosh-stemcell.tgz"
    art.write_bytes(b"stemcell")
    sha = d.sha256_file(str(art))
    module = d.write_stamp(str(art), "stemcell_package", {"version": "1"}, {str(art): sha},
                           facts={"image_sha1": "ab"})
    pipeline = d.write_stamp(str(art), "pipeline:stemcell", {"stemcell_version": "1"}, {str(art): sha},
                             versions={"roles/stemcell": "cd"}, notes=["a note"])
    assert sorted(os.listdir(tmp_path)) == ["bosh-stemcell.tgz", "bosh-stemcell.tgz.stamp.json"]
    assert d.read_stamp(str(art), "stemcell_package") == module
    assert d.read_stamp(str(art), "pipeline:stemcell") == pipeline
    # Rewriting one record leaves the other as it was.
    again = d.write_stamp(str(art), "stemcell_package", {"version": "2"}, {str(art): sha})
    assert d.read_stamp_file(str(art))["records"] == {"stemcell_package": again, "pipeline:stemcell": pipeline}
    assert d.rebuild_reason(d.read_stamp(str(art), "pipeline:stemcell"), {"stemcell_version": "1"}, True,
                            {"roles/stemcell": "cd"}) is None


def test_the_stamp_is_written_atomically(tmp_path, monkeypatch):
    art = tmp_path / "x.img"
    art.write_bytes(b"x")
    first = d.write_stamp(str(art), "disk_image", {"a": 1})
    before = (tmp_path / "x.img.stamp.json").read_text()

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(d.os, "rename", fail)
    with pytest.raises(OSError, match="disk full"):
        d.write_stamp(str(art), "pipeline:x", {"b": 2})
    monkeypatch.undo()
    # The old stamp is untouched and no temporary file is left behind.
    assert (tmp_path / "x.img.stamp.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["x.img", "x.img.stamp.json"]
    assert d.read_stamp(str(art), "disk_image") == first


def test_a_legacy_stamp_is_not_trusted_and_is_removed(tmp_path):
    art = tmp_path / "x.tgz"
    art.write_bytes(b"x")
    inputs = {"a": 1}
    legacy = {"inputs": inputs, "digest": d.inputs_digest(inputs), "outputs": {}}
    for suffix in (".inputs.json", ".pipeline.json"):
        (tmp_path / ("x.tgz" + suffix)).write_text(json.dumps(legacy))
    assert d.read_stamp(str(art), "rootfs_archive") is None
    assert d.rebuild_reason(d.read_stamp(str(art), "rootfs_archive"), inputs, True) == "no stamp beside the artifact"
    # A file of another schema in the new name is not trusted either.
    (tmp_path / "x.tgz.stamp.json").write_text(json.dumps(dict(legacy, schema=2, records={})))
    assert d.read_stamp_file(str(art)) is None and d.read_stamp(str(art), "rootfs_archive") is None
    record = d.write_stamp(str(art), "rootfs_archive", inputs)
    assert sorted(os.listdir(tmp_path)) == ["x.tgz", "x.tgz.stamp.json"]
    assert d.rebuild_reason(d.read_stamp(str(art), "rootfs_archive"), inputs, True) is None
    assert record["versions"] == {}


def test_the_digest_covers_the_versions(tmp_path):
    art = tmp_path / "x.aci"
    art.write_bytes(b"x")
    inputs = {"word": "hello"}
    versions = {"roles/toy": "1", "modules/aci_image.py": "2"}
    record = d.write_stamp(str(art), "pipeline:toy", inputs, versions=versions)
    assert record["digest"] == d.record_digest(inputs, versions) != d.record_digest(inputs, {})
    assert d.rebuild_reason(record, inputs, True, versions) is None
    assert d.rebuild_reason(record, inputs, True) == "inputs changed: versions (modules/aci_image.py, roles/toy)"
    assert d.rebuild_reason(record, inputs, True, dict(versions, **{"roles/toy": "3"})) == \
        "inputs changed: versions (roles/toy)"
    assert d.rebuild_reason(record, {"word": "bye"}, True, dict(versions, extra="1")) == \
        "inputs changed: versions (extra), word"
    # A version is not an input: the same names moved into the inputs are other entries.
    assert d.rebuild_reason(record, dict(inputs, **versions), True, {}) == \
        "inputs changed: modules/aci_image.py, roles/toy, versions (modules/aci_image.py, roles/toy)"


def test_recorded_artifact_describes_an_output_as_recorded(tmp_path):
    art = tmp_path / "x.qcow2"
    art.write_bytes(b"qcow")
    record = d.write_stamp(str(art), "disk_image", {}, {str(art): "f" * 64})
    assert d.recorded_artifact(record, str(art), format="qcow2") == {
        "path": str(art), "size": 4, "sha256": "f" * 64, "format": "qcow2"}


def test_artifact_and_sha256(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    a = d.artifact(str(f))
    assert a == {"path": str(f), "size": 3,
                 "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}


def test_tree_digest_sees_content_names_and_modes(tmp_path):
    (tmp_path / "t").mkdir()
    f = tmp_path / "t" / "a.yml"
    f.write_text("x")
    first = d.tree_digest([str(tmp_path / "t")])
    assert first == d.tree_digest([str(tmp_path / "t")])
    f.write_text("y")
    second = d.tree_digest([str(tmp_path / "t")])
    assert second != first
    os.chmod(f, 0o600)
    assert d.tree_digest([str(tmp_path / "t")]) != second


def test_stamp_key_is_made_private_on_first_use_and_then_reused(tmp_path):
    path = str(tmp_path / "cache" / "keys" / "stamp.key")
    key, created, problem = d.stamp_key(path)
    assert problem is None and created is True and len(key) == d.STAMP_KEY_BYTES
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    assert d.stamp_key(path) == (key, False, None)


def test_stamp_key_missing_in_check_mode_is_not_made(tmp_path):
    path = str(tmp_path / "keys" / "stamp.key")
    assert d.stamp_key(path, create=False) == (None, False, None)
    assert not os.path.exists(os.path.dirname(path))


def test_stamp_key_that_others_can_read_is_refused(tmp_path):
    path = str(tmp_path / "keys" / "stamp.key")
    d.stamp_key(path)
    os.chmod(path, 0o644)
    key, _created, problem = d.stamp_key(path)
    assert key is None and "stamp key %s has mode 0644" % path in problem and "chmod 0600" in problem


def test_stamp_key_directory_that_others_can_write_is_refused(tmp_path):
    path = str(tmp_path / "keys" / "stamp.key")
    d.stamp_key(path)
    os.chmod(os.path.dirname(path), 0o777)
    key, _created, problem = d.stamp_key(path)
    assert key is None and "stamp key directory" in problem and "chmod 0700" in problem


def test_stamp_key_symlink_and_short_key_are_refused(tmp_path):
    (tmp_path / "keys").mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"k" * 32)
    os.symlink(str(target), str(tmp_path / "keys" / "stamp.key"))
    key, _created, problem = d.stamp_key(str(tmp_path / "keys" / "stamp.key"))
    assert key is None and "cannot be read" in problem
    os.unlink(str(tmp_path / "keys" / "stamp.key"))
    short = tmp_path / "keys" / "stamp.key"
    short.write_bytes(b"short")
    os.chmod(str(short), 0o600)
    key, _created, problem = d.stamp_key(str(short))
    assert key is None and "holds 5 bytes, not 32" in problem


def test_keyed_digest_is_no_plain_digest_of_the_secret():
    import hashlib
    key = b"k" * 32
    mac = d.keyed_digest(key, "users_password", "c1oudc0w")
    plain = {hashlib.new(a, b"c1oudc0w").hexdigest() for a in ("md5", "sha1", "sha256", "sha512")}
    assert mac not in plain and len(mac) == 64
    assert mac == d.keyed_digest(key, "users_password", "c1oudc0w")
    assert mac != d.keyed_digest(b"x" * 32, "users_password", "c1oudc0w")
    assert mac != d.keyed_digest(key, "grub_password", "c1oudc0w")


def test_crypt_salt_follows_the_image_not_the_password():
    key = b"k" * 32
    bookworm = d.crypt_salt(key, {"suite": "bookworm", "packages": ["a"]})
    assert len(bookworm) == 16 and set(bookworm) <= set(d.CRYPT_SALT_ALPHABET)
    assert bookworm == d.crypt_salt(key, {"packages": ["a"], "suite": "bookworm"})
    assert bookworm != d.crypt_salt(key, {"suite": "jammy", "packages": ["a"]})
    assert bookworm != d.crypt_salt(b"x" * 32, {"suite": "bookworm", "packages": ["a"]})


def test_notes_and_facts_are_recorded_but_are_not_inputs(tmp_path):
    art = tmp_path / "x.tgz"
    art.write_bytes(b"x")
    record = d.write_stamp(str(art), "pipeline:os_image", {"a": 1}, notes=["uses BOSH's well-known default password"],
                           facts={"packages": [{"name": "apt"}]})
    assert d.read_stamp(str(art), "pipeline:os_image")["notes"] == ["uses BOSH's well-known default password"]
    assert d.read_stamp(str(art), "pipeline:os_image")["facts"] == {"packages": [{"name": "apt"}]}
    assert d.rebuild_reason(record, {"a": 1}, True) is None
    bare = d.write_stamp(str(art), "pipeline:os_image", {"a": 1})
    assert "notes" not in bare and "facts" not in bare and bare["digest"] == record["digest"]


def test_two_builds_making_the_stamp_key_at_once_read_the_same_key(tmp_path):
    """Racing first uses (two processes): each gets the one key linked into
    place; none sees a half-written file or fails on the other's mkdir."""
    import multiprocessing

    path = str(tmp_path / "keys" / "stamp.key")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        got = pool.map(_key_of, [path] * 8)
    assert all(problem is None for _key, _created, problem in got), got
    assert len({key for key, _created, _problem in got}) == 1
    assert sum(1 for _key, created, _problem in got if created) == 1
    assert sorted(os.listdir(tmp_path / "keys")) == ["stamp.key"]


def _key_of(path):
    from ansible_collections.osimage.builder.plugins.module_utils import _digest

    return _digest.stamp_key(path)

import os

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
    assert d.rebuild_reason(None, {"a": 1}, True) == "no inputs stamp beside the artifact"
    stamp = d.write_stamp(str(art), {"a": 1, "b": 2})
    assert os.path.exists(str(art) + ".inputs.json")
    assert d.read_stamp(str(art)) == stamp
    assert d.rebuild_reason(stamp, {"a": 1, "b": 2}, True) is None
    assert d.rebuild_reason(stamp, {"a": 1, "b": 3}, True) == "inputs changed: b"
    assert oct(os.stat(str(art) + ".inputs.json").st_mode & 0o777) == "0o644"


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


def test_notes_are_recorded_but_are_not_inputs(tmp_path):
    art = tmp_path / "x.tgz"
    art.write_bytes(b"x")
    stamp = d.write_stamp(str(art), {"a": 1}, notes=["uses BOSH's well-known default password"])
    assert d.read_stamp(str(art))["notes"] == ["uses BOSH's well-known default password"]
    assert d.rebuild_reason(stamp, {"a": 1}, True) is None
    assert "notes" not in d.write_stamp(str(art), {"a": 1})

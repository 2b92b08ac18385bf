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

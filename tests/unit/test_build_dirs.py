"""build_dirs' rules on a build's directories and their parents, with
stand-in stat results: each problem names the variable the user set."""
import os
import stat

from ansible_collections.osimage.builder.plugins.modules.build_dirs import chain, problems_of


def fake(entries):
    def lstat(path):
        if path not in entries:
            raise FileNotFoundError(path)
        mode, uid = entries[path]
        return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))
    return lstat


D, L = stat.S_IFDIR, stat.S_IFLNK


def test_chain():
    assert chain("/var/tmp/osimage/work/") == ["/var", "/var/tmp", "/var/tmp/osimage", "/var/tmp/osimage/work"]


def test_a_private_tree_of_root_passes_and_missing_parts_are_fine():
    tree = {"/var": (D | 0o755, 0), "/var/tmp": (D | 0o1777, 0), "/var/tmp/osimage": (D | 0o700, 0)}
    assert problems_of("w", "/var/tmp/osimage/work", 0, fake(tree)) == []


def test_a_directory_squatted_in_a_sticky_parent_is_refused():
    tree = {"/var": (D | 0o755, 0), "/var/tmp": (D | 0o1777, 0), "/var/tmp/osimage": (D | 0o755, 65534)}
    assert problems_of("os_image_work_dir", "/var/tmp/osimage/work", 0, fake(tree)) == [
        "os_image_work_dir=/var/tmp/osimage/work: /var/tmp/osimage belongs to uid 65534, not root, who could swap "
        "what the build writes there; remove it, or set os_image_work_dir to a directory of root"]


def test_writable_by_others_not_a_directory_and_foreign_links():
    tree = {"/srv": (D | 0o777, 0)}
    assert "is writable by group or others (mode 0777)" in problems_of("o", "/srv/out", 0, fake(tree))[0]
    assert "/srv is writable by group or others" in problems_of("o", "/srv", 0, fake(tree))[0]
    assert problems_of("o", "/srv", 0, fake({"/srv": (stat.S_IFREG | 0o644, 0)})) == ["o=/srv: /srv is not a directory"]
    links = {"/srv": (D | 0o755, 0), "/srv/out": (L | 0o777, 1000)}
    assert "belongs to uid 1000" in problems_of("o", "/srv/out", 0, fake(links))[0]
    assert problems_of("o", "/srv/out", 0, fake({"/srv": (D | 0o755, 0), "/srv/out": (L | 0o777, 0)})) == []

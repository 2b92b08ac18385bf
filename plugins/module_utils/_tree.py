# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One deterministic walk of a directory tree, shared by everything that
packs or digests a tree (cpio, ACI, tree digests, disk content digests):
every entry below the root, never following a symlink, sorted by its path
relative to the root, so the same tree always gives the same order on any
file system (reproducible-builds.org: "stable order for inputs")."""

from __future__ import annotations

import os


def walk_tree(root):
    """[(relative path, full path, lstat)] of every entry below `root` (not
    root itself), sorted by relative path; a parent comes before its
    children. Symlinks to directories are entries, not descended into."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            found.append((os.path.relpath(full, root), full, os.lstat(full)))
    found.sort(key=lambda entry: entry[0])
    return found

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests of files, trees and input sets, and the `<artifact>.inputs.json`
stamp that makes non-idempotent steps (bootstrap, compile, pack) skip when
their inputs did not change (osbuild's stage id; mkosi's cache manifest)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile

CHUNK = 1024 * 1024


def sha256_file(path, algorithm="sha256"):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def artifact(path, **extra):
    """The standard description of an artifact: path, size, sha256."""
    st = os.stat(path)
    info = {"path": path, "size": st.st_size, "sha256": sha256_file(path)}
    info.update(extra)
    return info


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def inputs_digest(inputs):
    """sha256 of the sorted JSON of an input dict."""
    return hashlib.sha256(canonical_json(inputs).encode("utf-8")).hexdigest()


def tree_digest(paths):
    """sha256 over the relative names, modes and contents of files under the
    given paths (files or directories), in sorted order. Used to fold a role's
    own task files and templates into a pipeline's inputs."""
    h = hashlib.sha256()
    for top in sorted(paths):
        if os.path.isfile(top):
            entries = [(os.path.basename(top), top)]
        else:
            entries = []
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    entries.append((os.path.relpath(full, top), full))
        for rel, full in entries:
            st = os.lstat(full)
            h.update(rel.encode() + b"\0" + oct(stat.S_IMODE(st.st_mode)).encode() + b"\0")
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(full).encode())
            else:
                h.update(sha256_file(full).encode())
            h.update(b"\n")
    return h.hexdigest()


def stamp_path(artifact_path, suffix=".inputs.json"):
    return artifact_path.rstrip("/") + suffix


def read_stamp(artifact_path, suffix=".inputs.json"):
    try:
        with open(stamp_path(artifact_path, suffix)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_stamp(artifact_path, inputs, outputs=None, suffix=".inputs.json"):
    """Write the stamp atomically (temp file in the same directory, rename)."""
    record = {"inputs": inputs, "digest": inputs_digest(inputs), "outputs": outputs or {}}
    target = stamp_path(artifact_path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=".stamp-", dir=os.path.dirname(target) or ".")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return record


def changed_inputs(old, new):
    """Names of the inputs that differ between two input dicts (added,
    removed or changed), sorted; [] when they are equal."""
    old = old or {}
    keys = set(old) | set(new)
    return sorted(k for k in keys if canonical_json(old.get(k)) != canonical_json(new.get(k)))


def rebuild_reason(stamp, inputs, artifact_present):
    """Why an artifact must be (re)built, or None when it is up to date."""
    if not artifact_present:
        return "artifact missing"
    if stamp is None:
        return "no inputs stamp beside the artifact"
    if stamp.get("digest") != inputs_digest(inputs):
        names = changed_inputs(stamp.get("inputs"), inputs)
        return "inputs changed: " + ", ".join(names) if names else "inputs changed"
    return None

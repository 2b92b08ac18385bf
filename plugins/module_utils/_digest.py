# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests of files, trees and input sets, and the one stamp,
`<artifact>.stamp.json`, that makes non-idempotent steps (bootstrap, compile,
pack) and whole pipelines skip when what shapes their artifact did not change
(osbuild's stage id; mkosi's cache manifest).

The stamp's schema, written here and nowhere else (README.md, "The stamp"):

    {"schema": 1,
     "records": {"<writer>": {"inputs": {...}, "versions": {...},
                              "digest": "<sha256 of the canonical JSON of {inputs, versions}>",
                              "outputs": {"<path>": "<sha256>", ...},
                              "notes": [...], "facts": {...}}}}

A writer is a module's short name (`rootfs_archive`) or `pipeline:<role>`;
a module and a pipeline that stamp the same artifact each own one record of
the one file, and writing replaces only the writer's own record. `notes`
(sentences for whoever reads the artifact) and `facts` (what a module hands
back on a run that builds nothing: a package list, a partition layout) are
optional and are not inputs. Stamps of the older layouts (`<artifact>.inputs.json`,
`<artifact>.pipeline.json`) are never trusted and are removed when the new
stamp is written.

Stamps are world-readable files beside the artifacts and travel with them, so
a secret (a password) never enters them as a plain digest, which would allow
fast offline guessing: it enters as an HMAC keyed with the build host's stamp
key (`stamp_key`), a secret that never leaves the build host."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import tempfile

from ansible_collections.osimage.builder.plugins.module_utils._space import is_no_space, no_space
from ansible_collections.osimage.builder.plugins.module_utils._tree import walk_tree

CHUNK = 1024 * 1024
STAMP_KEY_BYTES = 32
# crypt(3)'s salt alphabet; 64 characters, so a byte modulo 64 is uniform.
CRYPT_SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sha256_file(path, algorithm="sha256"):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class DigestWriter:
    """A binary writer that hashes (and counts) what passes through it and
    hands it on to `out` when given: an artifact's digest computed as it is
    written, or without writing it at all (check mode)."""

    def __init__(self, algorithm="sha256", out=None):
        self.hash = hashlib.new(algorithm)
        self.out = out
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def tell(self):
        return self.size

    def flush(self):
        if self.out is not None:
            self.out.flush()

    def hexdigest(self):
        return self.hash.hexdigest()


class DigestReader:
    """A binary reader that hashes what is read through it from `fin`:
    a digest of a stream another reader consumes (a tar read as it is
    decompressed). drain() reads the rest, so the digest covers all of it."""

    def __init__(self, fin, algorithm="sha256"):
        self.fin = fin
        self.hash = hashlib.new(algorithm)

    def read(self, size=-1):
        data = self.fin.read(size)
        self.hash.update(data)
        return data

    def drain(self):
        while self.read(CHUNK):
            pass
        return self

    def hexdigest(self):
        return self.hash.hexdigest()


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
            entries = [(os.path.basename(top), top, os.lstat(top))]
        else:
            entries = [e for e in walk_tree(top) if not stat.S_ISDIR(e[2].st_mode)]
        for rel, full, st in entries:
            h.update(rel.encode() + b"\0" + oct(stat.S_IMODE(st.st_mode)).encode() + b"\0")
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(full).encode())
            else:
                h.update(sha256_file(full).encode())
            h.update(b"\n")
    return h.hexdigest()


STAMP_SUFFIX = ".stamp.json"
STAMP_SCHEMA = 1
# What earlier versions wrote (modules, pipelines): ignored, removed on write.
LEGACY_STAMP_SUFFIXES = (".inputs.json", ".pipeline.json")


def stamp_path(artifact_path):
    return artifact_path.rstrip("/") + STAMP_SUFFIX


def read_stamp_file(artifact_path):
    """The whole stamp beside an artifact, or None when there is none, it
    cannot be read or it is not of this schema."""
    try:
        with open(stamp_path(artifact_path)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    if (not isinstance(stamp, dict) or stamp.get("schema") != STAMP_SCHEMA
            or not isinstance(stamp.get("records"), dict)):
        return None
    return stamp


def read_stamp(artifact_path, writer):
    """The writer's record in the stamp beside the artifact, or None."""
    record = (read_stamp_file(artifact_path) or {"records": {}})["records"].get(writer)
    return record if isinstance(record, dict) else None


def record_digest(inputs, versions=None):
    """sha256 of the canonical JSON of {inputs, versions}: a record's digest."""
    return inputs_digest({"inputs": inputs, "versions": versions or {}})


def recorded_artifact(record, path, **extra):
    """The standard description (path, size, sha256) of an output of a
    record, its sha256 as recorded: what a module hands back when it builds
    nothing (the file's size from the file)."""
    info = {"path": path, "size": os.stat(path).st_size, "sha256": record["outputs"][path]}
    info.update(extra)
    return info


def write_text_atomically(dest, text, mode=0o644):
    """Write `text` to `dest` through a temporary file in the same
    directory, renamed into place only when complete."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=os.path.dirname(dest) or ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, dest)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        # A full disk names the directory and the bytes needed.
        if is_no_space(exc):
            raise no_space(exc, dest, "writing %s" % dest, needed=len(text.encode())) from exc
        raise


def write_stamp(artifact_path, writer, inputs, outputs=None, versions=None, notes=None, facts=None):
    """Record the writer's build of the artifact: reads the stamp, replaces
    only the writer's record, writes it atomically (temp file in the same
    directory, rename) and removes stamps of the older layouts. outputs maps
    each output file's path to its sha256. Notes (what a reader of the
    artifact must know, such as a default password) and facts (what the
    writer hands back on a run that builds nothing) are recorded but are not
    inputs. Returns the record."""
    if not writer or not isinstance(writer, str):
        raise ValueError("a stamp record needs the writer's name")
    outputs = dict(outputs or {})
    bad = sorted(str(k) for k, v in outputs.items() if not isinstance(k, str) or not isinstance(v, str))
    if bad:
        raise ValueError("stamp outputs map a path to its sha256; not so for %s" % ", ".join(bad))
    versions = dict(versions or {})
    record = {"inputs": inputs, "versions": versions, "digest": record_digest(inputs, versions), "outputs": outputs}
    if notes:
        record["notes"] = list(notes)
    if facts:
        record["facts"] = facts
    stamp = read_stamp_file(artifact_path) or {"schema": STAMP_SCHEMA, "records": {}}
    stamp["records"][writer] = record
    write_text_atomically(stamp_path(artifact_path), json.dumps(stamp, sort_keys=True, indent=2) + "\n")
    for suffix in LEGACY_STAMP_SUFFIXES:
        legacy = artifact_path.rstrip("/") + suffix
        if os.path.isfile(legacy) and not os.path.islink(legacy):
            os.unlink(legacy)
    return record


def changed_inputs(old, new):
    """Names of the inputs that differ between two input dicts (added,
    removed or changed), sorted; [] when they are equal."""
    old = old or {}
    keys = set(old) | set(new)
    return sorted(k for k in keys if canonical_json(old.get(k)) != canonical_json(new.get(k)))


def rebuild_reason(record, inputs, artifact_present, versions=None):
    """Why an artifact must be (re)built, or None when it is up to date:
    `inputs changed: a, b` names the changed inputs, and the changed
    entries of the versions as `versions (x, y)`."""
    if not artifact_present:
        return "artifact missing"
    if record is None:
        return "no stamp beside the artifact"
    versions = versions or {}
    if record.get("digest") != record_digest(inputs, versions):
        names = [(n, n) for n in changed_inputs(record.get("inputs"), inputs)]
        changed_versions = changed_inputs(record.get("versions"), versions)
        if changed_versions:
            names.append(("versions", "versions (%s)" % ", ".join(changed_versions)))
        return "inputs changed: " + ", ".join(text for _key, text in sorted(names)) if names else "inputs changed"
    return None


def _private_problem(path, st, euid, what, mask):
    """Why a key file or its directory cannot be trusted, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "%s %s is a symbolic link; remove it" % (what, path)
    if st.st_uid not in (euid, 0):
        return "%s %s is owned by uid %d, not by uid %d who runs the build; remove it" % (
            what, path, st.st_uid, euid)
    if stat.S_IMODE(st.st_mode) & mask:
        return "%s %s has mode %04o; it must be private to its owner (chmod %s)" % (
            what, path, stat.S_IMODE(st.st_mode), "0700" if what.endswith("directory") else "0600")
    return None


def _create_key(path):
    """Write a new key whole under a temporary name, then link it into place:
    two builds making the key at once both end up reading the one that was
    linked first, never a half-written file. True when this call made it."""
    fd, tmp = tempfile.mkstemp(prefix=".stamp-key.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(STAMP_KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def stamp_key(path, create=True):
    """The build host's stamp key: (key bytes or None, created, problem).
    Created on first use as STAMP_KEY_BYTES random bytes, mode 0600, in a
    directory of mode 0700; an existing key is used only when it and its
    directory are private to the user running the build (or root)."""
    euid = os.geteuid()
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        if not create:
            return None, False, None
        os.makedirs(os.path.dirname(directory), mode=0o755, exist_ok=True)
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # another build made it first
            pass
        st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        return None, False, "stamp key directory %s is not a directory" % directory
    problem = _private_problem(directory, st, euid, "stamp key directory", 0o077)
    if problem:
        return None, False, problem
    created = False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if not create:
            return None, False, None
        created = _create_key(path)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return None, False, "stamp key %s cannot be read (%s); remove it" % (path, exc.strerror)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None, False, "stamp key %s is not a regular file; remove it" % path
        problem = _private_problem(path, st, euid, "stamp key", 0o077)
        if problem:
            return None, False, problem
        key = f.read()
    if len(key) != STAMP_KEY_BYTES:
        return None, False, "stamp key %s holds %d bytes, not %d; remove it and a new one is made" % (
            path, len(key), STAMP_KEY_BYTES)
    return key, created, None


def keyed_digest(key, name, value):
    """HMAC-SHA256 of a secret, bound to its name: what a stamp records in
    place of the secret. Without the key it allows no guessing."""
    msg = b"osimage.builder secret\0" + name.encode("utf-8") + b"\0" + str(value).encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def crypt_salt(key, identity, length=16):
    """A crypt(3) salt for one image: keyed with the stamp key over the image's
    identity (its inputs), so identical inputs give the identical hash (the
    image stays reproducible) while another image, or another build host, gets
    another salt. Never derived from the password alone: a salt in /etc/shadow
    that is a fast function of the password is a fast oracle for guessing it."""
    mac = hmac.new(key, b"osimage.builder crypt salt\0" + canonical_json(identity).encode("utf-8"),
                   hashlib.sha512).digest()
    return "".join(CRYPT_SALT_ALPHABET[b % 64] for b in mac[:length])

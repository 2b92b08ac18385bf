# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests of files, trees and input sets, and the `<artifact>.inputs.json`
stamp that makes non-idempotent steps (bootstrap, compile, pack) skip when
their inputs did not change (osbuild's stage id; mkosi's cache manifest).

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


def stamp_path(artifact_path, suffix=".inputs.json"):
    return artifact_path.rstrip("/") + suffix


def read_stamp(artifact_path, suffix=".inputs.json"):
    try:
        with open(stamp_path(artifact_path, suffix)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_text_atomically(dest, text, mode=0o644):
    """Write `text` to `dest` through a temporary file in the same
    directory, renamed into place only when complete."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=os.path.dirname(dest) or ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_stamp(artifact_path, inputs, outputs=None, suffix=".inputs.json", notes=None):
    """Write the stamp atomically (temp file in the same directory, rename).
    Notes (what a reader of the artifact must know, such as a default
    password) are recorded but are not inputs."""
    record = {"inputs": inputs, "digest": inputs_digest(inputs), "outputs": outputs or {}}
    if notes:
        record["notes"] = list(notes)
    write_text_atomically(stamp_path(artifact_path, suffix), json.dumps(record, sort_keys=True, indent=2) + "\n")
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
        os.mkdir(directory, 0o700)
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
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(STAMP_KEY_BYTES))
        created = True
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

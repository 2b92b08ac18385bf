# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""App Container Image (appc spec, SPEC.md "Image Manifest" and "App
Container Image") rules as pure functions: manifest validation with errors
that name the field, the deterministic ACI tarball, and checks of an
existing .aci's members."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tarfile

from ansible_collections.osimage.builder.plugins.module_utils._digest import sha256_file
from ansible_collections.osimage.builder.plugins.module_utils._tree import walk_tree

# appc spec: AC Identifier (image names, label/annotation names) and AC Name
# (app, mount point and port names).
AC_IDENTIFIER = re.compile(r"^[a-z0-9]+([-._~/][a-z0-9]+)*$")
AC_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
AC_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
IMAGE_ID = re.compile(r"^sha512-[0-9a-f]{32,128}$")
# appc spec, "Labels": the valid os/arch pairs.
OS_ARCH = {
    "linux": {"amd64", "i386", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv7b", "ppc64", "ppc64le", "s390x"},
    "freebsd": {"amd64", "i386", "arm"},
    "darwin": {"x86_64", "i386"},
}
PROTOCOLS = {"tcp", "udp"}


def _labels(errors, field, labels, forbid_name=True):
    seen = set()
    if not isinstance(labels, list):
        errors.append("%s must be a list of {name, value}" % field)
        return {}
    out = {}
    for i, label in enumerate(labels):
        where = "%s[%d]" % (field, i)
        if not isinstance(label, dict) or set(label) - {"name", "value"} or "name" not in label:
            errors.append("%s must be {name, value}" % where)
            continue
        name = label["name"]
        if not isinstance(name, str) or not AC_IDENTIFIER.match(name):
            errors.append("%s.name %r is not an AC Identifier (lower-case letters, digits and -._~/)" % (where, name))
        if forbid_name and name == "name":
            errors.append("%s.name: 'name' is reserved and cannot be a label" % where)
        if name in seen:
            errors.append("%s.name %r is a duplicate label" % (where, name))
        seen.add(name)
        if not isinstance(label.get("value"), str):
            errors.append("%s.value must be a string" % where)
        out[name] = label.get("value")
    return out


def validate_manifest(m):
    """A list of errors, each naming the field; [] for a valid ImageManifest."""
    errors = []
    if not isinstance(m, dict):
        return ["manifest must be an object"]
    if m.get("acKind") != "ImageManifest":
        errors.append("acKind must be 'ImageManifest', not %r" % m.get("acKind"))
    if not isinstance(m.get("acVersion"), str) or not AC_VERSION.match(m.get("acVersion", "")):
        errors.append("acVersion %r is not a semantic version" % m.get("acVersion"))
    name = m.get("name")
    if not isinstance(name, str) or not AC_IDENTIFIER.match(name):
        errors.append("name %r is not an AC Identifier (lower-case letters, digits and -._~/, starting and ending "
                      "with a letter or digit)" % (name,))
    labels = _labels(errors, "labels", m.get("labels", []))
    os_, arch = labels.get("os"), labels.get("arch")
    if arch is not None and os_ is None:
        errors.append("labels: arch %r is set without os" % arch)
    if os_ is not None:
        if os_ not in OS_ARCH:
            errors.append("labels: os %r is not one of %s" % (os_, ", ".join(sorted(OS_ARCH))))
        elif arch is not None and arch not in OS_ARCH[os_]:
            errors.append("labels: arch %r is not valid for os %r; valid: %s"
                          % (arch, os_, ", ".join(sorted(OS_ARCH[os_]))))
    app = m.get("app")
    if app is not None:
        errors += validate_app(app)
    _labels(errors, "annotations", m.get("annotations", []), forbid_name=False)
    for i, dep in enumerate(m.get("dependencies", []) or []):
        where = "dependencies[%d]" % i
        if not isinstance(dep, dict):
            errors.append("%s must be an object" % where)
            continue
        if not isinstance(dep.get("imageName"), str) or not AC_IDENTIFIER.match(dep.get("imageName", "")):
            errors.append("%s.imageName %r is not an AC Identifier" % (where, dep.get("imageName")))
        if "imageID" in dep and not IMAGE_ID.match(str(dep["imageID"])):
            errors.append("%s.imageID %r is not sha512-<hex>" % (where, dep["imageID"]))
        _labels(errors, where + ".labels", dep.get("labels", []))
        if "size" in dep and (not isinstance(dep["size"], int) or dep["size"] < 0):
            errors.append("%s.size must be a non-negative integer" % where)
    return errors


def validate_app(app):
    errors = []
    if not isinstance(app, dict):
        return ["app must be an object"]
    exe = app.get("exec")
    if exe is not None:
        if not isinstance(exe, list) or not exe or not all(isinstance(x, str) for x in exe):
            errors.append("app.exec must be a non-empty list of strings")
        elif not exe[0].startswith("/"):
            errors.append("app.exec[0] %r must be an absolute path" % exe[0])
    for key in ("user", "group"):
        if not isinstance(app.get(key), str) or not app.get(key):
            errors.append("app.%s is required (a name or a numeric id as a string)" % key)
    wd = app.get("workingDirectory")
    if wd is not None and (not isinstance(wd, str) or not wd.startswith("/")):
        errors.append("app.workingDirectory %r must be an absolute path" % (wd,))
    seen = set()
    for i, env in enumerate(app.get("environment", []) or []):
        if not isinstance(env, dict) or not env.get("name") or not isinstance(env.get("value"), str):
            errors.append("app.environment[%d] must be {name, value}" % i)
        elif env["name"] in seen:
            errors.append("app.environment[%d].name %r is a duplicate" % (i, env["name"]))
        else:
            seen.add(env["name"])
    for i, mp in enumerate(app.get("mountPoints", []) or []):
        where = "app.mountPoints[%d]" % i
        if not isinstance(mp, dict) or not AC_NAME.match(str(mp.get("name", ""))):
            errors.append("%s.name %r is not an AC Name" % (where, (mp or {}).get("name")))
        elif not str(mp.get("path", "")).startswith("/"):
            errors.append("%s.path %r must be an absolute path" % (where, mp.get("path")))
    for i, port in enumerate(app.get("ports", []) or []):
        where = "app.ports[%d]" % i
        if not isinstance(port, dict):
            errors.append("%s must be an object" % where)
            continue
        if not AC_NAME.match(str(port.get("name", ""))):
            errors.append("%s.name %r is not an AC Name" % (where, port.get("name")))
        if port.get("protocol") not in PROTOCOLS:
            errors.append("%s.protocol %r must be tcp or udp" % (where, port.get("protocol")))
        number, count = port.get("port"), port.get("count", 1)
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errors.append("%s.port %r must be between 1 and 65535" % (where, number))
        elif not isinstance(count, int) or count < 1 or number + count - 1 > 65535:
            errors.append("%s.count %r must be at least 1 and keep the range within 65535" % (where, count))
    for i, iso in enumerate(app.get("isolators", []) or []):
        if not isinstance(iso, dict) or not AC_IDENTIFIER.match(str(iso.get("name", ""))) or "value" not in iso:
            errors.append("app.isolators[%d] must be {name: <AC Identifier>, value}" % i)
    return errors


def manifest_json(m):
    return (json.dumps(m, indent=2, sort_keys=True) + "\n").encode()


def _info(name, st, source_date_epoch):
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = min(int(st.st_mtime), source_date_epoch)
    return info


def build_tar(out, rootfs, manifest, source_date_epoch):
    """Write the uncompressed ACI to the binary file `out`: `manifest`, then
    `rootfs/` and its tree, sorted, numeric owners, mtimes clamped, hard links
    as links."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = manifest_json(manifest)
        info = tarfile.TarInfo("manifest")
        info.size, info.mode, info.mtime = len(data), 0o644, source_date_epoch
        tar.addfile(info, io.BytesIO(data))
        info = _info("rootfs", os.lstat(rootfs), source_date_epoch)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        links = {}
        for rel, full, st in walk_tree(rootfs):
            rel = "rootfs/" + rel
            info = _info(rel, st, source_date_epoch)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in links:
                    info.type, info.linkname = tarfile.LNKTYPE, links[key]
                    tar.addfile(info)
                    continue
                links[key] = rel
                info.size = st.st_size
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tar.addfile(info)
            elif stat.S_ISFIFO(st.st_mode):
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)


def image_id(path):
    """appc spec: the image ID is the sha512 of the uncompressed tar."""
    return "sha512-" + sha256_file(path, "sha512")


def check_members(names):
    """Problems of an ACI's member list: top-level entries other than
    manifest and rootfs, duplicates, absolute paths and path traversal."""
    problems, seen = [], set()
    for name in names:
        clean = name[2:] if name.startswith("./") else name
        parts = clean.rstrip("/").split("/")
        if clean.startswith("/") or ".." in parts:
            problems.append("member %r escapes the image (absolute path or ..)" % name)
            continue
        if parts[0] not in ("manifest", "rootfs") or (parts[0] == "manifest" and len(parts) > 1):
            problems.append("member %r: only manifest and rootfs/ may be at the top level" % name)
        if clean.rstrip("/") in seen:
            problems.append("member %r is a duplicate entry" % name)
        seen.add(clean.rstrip("/"))
    if "manifest" not in seen:
        problems.append("the image has no manifest")
    if "rootfs" not in {n.split("/")[0] for n in seen}:
        problems.append("the image has no rootfs/")
    return problems


def _clean(name):
    return "/".join(c for c in name.split("/") if c not in ("", "."))


def _climbs_out(start_parts, target):
    """Whether following the relative `target` from the directory
    `start_parts` (components below rootfs) goes above rootfs."""
    depth = len(start_parts)
    for comp in target.split("/"):
        if comp in ("", "."):
            continue
        depth += -1 if comp == ".." else 1
        if depth < 0:
            return True
    return False


def check_member_types(members):
    """Problems of an ACI's member types and link targets (TarInfo-like
    objects with name, type and linkname): the manifest is a regular file
    and rootfs a directory; no device nodes (appc spec: the runtime provides
    /dev); no symlink whose relative target climbs out of rootfs (an
    absolute one is resolved inside rootfs by the runtime); hard links only
    to an earlier member of rootfs; no member written through a symlink of
    the same image."""
    problems, seen, symlinks = [], set(), set()
    for m in members:
        name = _clean(m.name)
        parts = name.split("/")
        if name == "manifest":
            if m.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                problems.append("member 'manifest' must be a regular file")
        elif name == "rootfs":
            if m.type != tarfile.DIRTYPE:
                problems.append("member 'rootfs' must be a directory")
        elif parts[0] == "rootfs":
            if m.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                problems.append("member %r is a device node; an ACI may not ship any (the runtime provides /dev)"
                                % m.name)
            elif m.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                                tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE):
                problems.append("member %r has a type (%r) an ACI may not hold" % (m.name, m.type))
            if m.type == tarfile.SYMTYPE:
                if not m.linkname.startswith("/") and _climbs_out(parts[1:-1], m.linkname):
                    problems.append("symlink %r -> %r points out of rootfs" % (m.name, m.linkname))
                symlinks.add(name)
            elif m.type == tarfile.LNKTYPE:
                target = _clean(m.linkname)
                if (m.linkname.startswith("/") or ".." in target.split("/") or not target.startswith("rootfs/")
                        or target not in seen):
                    problems.append("hard link %r -> %r does not point to an earlier member of rootfs"
                                    % (m.name, m.linkname))
            for i in range(2, len(parts)):
                if "/".join(parts[:i]) in symlinks:
                    problems.append("member %r is written through the symlink %r" % (m.name, "/".join(parts[:i])))
                    break
        seen.add(name)
    return problems

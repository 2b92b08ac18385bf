#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: archive_keyring
short_description: Take a distribution's archive keyring from its own keyring package, verified
description:
  - For a suite whose archive keyring the build host does not have (Ubuntu on a Debian build host), fetches the
    suite's C(InRelease), the C(Packages) index and the keyring package from the archive and takes the archive
    signing keys from the package.
  - Trust comes from O(fingerprints), the published fingerprints of the archive signing keys, and from nothing
    else. The chain is checked end to end before anything is written. C(InRelease) must be one clear-signed
    message and nothing more (unsigned text before C(-----BEGIN PGP SIGNED MESSAGE-----) or after
    C(-----END PGP SIGNATURE-----) is refused, because gpgv vouches only for the signed part). It must carry a
    good signature by a pinned key, and only the text gpgv verified (C(gpgv --output)) is read. That Release must
    name the suite asked for in its C(Suite) or C(Codename) field and, when it has a C(Valid-Until), must not have
    expired (apt's own checks). The C(Packages) index must have the sha256 the Release lists, the package the
    sha256 the index lists, and the package's keyring must hold every pinned key.
  - O(dest) receives exactly the pinned keys, exported by fingerprint from the package's keyring into a fresh
    keyring (written to a temporary name beside O(dest), then moved into place). Other keys the package holds are
    left out.
  - An existing O(dest) is kept only when it holds exactly the pinned keys, each once, and nothing else (it must
    be what exporting the pinned keys from it gives, byte for byte). Any other O(dest), one with an extra key for
    example, is rebuilt from the archive, and RV(reason) says why.
  - In check mode the archive is still fetched and the whole chain checked in a private temporary directory;
    only O(dest) is left as it is.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  suite:
    description:
      - Suite codename, for example V(jammy). The Release must name it as its C(Suite) or its C(Codename).
    type: str
    required: true
  mirror:
    description: Archive URL. Default is debootstrap's own default mirror for the suite, read from its suite script.
    type: str
  architecture:
    description: Architecture whose Packages index is read.
    type: str
    default: amd64
  component:
    description: Component holding the keyring package.
    type: str
    default: main
  package:
    description: The keyring package.
    type: str
    default: ubuntu-keyring
  keyring_path:
    description: The keyring's path inside the package.
    type: str
    default: usr/share/keyrings/ubuntu-archive-keyring.gpg
  fingerprints:
    description:
      - Fingerprints of the archive signing keys (40 hex digits, spaces allowed). O(dest) holds exactly these keys.
    type: list
    elements: str
    required: true
  dest:
    description: Where the verified keyring is written.
    type: path
    required: true
  timeout:
    description: Download timeout in seconds.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Fetches from the archive with the build host's network settings (proxy variables apply); in check mode too, so
    the chain is checked without writing O(dest).
  - Trust comes only from O(fingerprints); keep them pinned in the role that calls the module.
seealso:
  - module: osimage.builder.rootfs_bootstrap
  - module: osimage.builder.input_file
requirements:
  - gpg (Debian package gpg)
  - gpgv (Debian package gpgv)
  - dpkg-deb (Debian package dpkg)
"""

EXAMPLES = r"""
- name: Ubuntu's archive keyring, for an Ubuntu jammy image built on Debian
  osimage.builder.archive_keyring:
    suite: jammy
    fingerprints:
      - 790B C727 7767 219C 42C8 6F93 3B4F E6AC C0B2 1F32  # Ubuntu Archive Automatic Signing Key (2012)
      - F6EC B376 2474 EDA9 D21B 7022 8719 20D1 991B C93C  # Ubuntu Archive Automatic Signing Key (2018)
    dest: /var/cache/osimage/keyrings/ubuntu-archive-keyring.gpg
"""

RETURN = r"""
path:
  description: The verified keyring.
  returned: always
  type: str
  sample: /var/cache/osimage/keyrings/ubuntu-archive-keyring.gpg
fingerprints:
  description: Fingerprints of the primary keys in O(dest) (or that would be written, in check mode); exactly the
    pinned ones.
  returned: success
  type: list
  elements: str
  sample: [790BC7277767219C42C86F933B4FE6ACC0B21F32, F6ECB3762474EDA9D21B7022871920D1991BC93C]
signed_by:
  description: Fingerprint of the pinned key whose signature on InRelease was checked.
  returned: when the archive was fetched
  type: str
  sample: F6ECB3762474EDA9D21B7022871920D1991BC93C
reason:
  description:
    - Why the keyring was fetched, for example V(dest does not exist) or C(dest holds keys that are not pinned) followed
      by their fingerprints.
  returned: when the archive was fetched
  type: str
  sample: "dest holds keys that are not pinned: 843938DF228D22F7B3742BC0D94AA3F0EFE21092"
mirror:
  description: The archive used.
  returned: always
  type: str
  sample: http://deb.example.org/ubuntu
commands:
  description: The commands run (gpg, gpgv, dpkg-deb), in order.
  returned: always
  type: list
  elements: str
  sample:
    - /usr/bin/dpkg-deb -x /tmp/.archive-keyring-3v9w1k2q/keyring.deb /tmp/.archive-keyring-3v9w1k2q/root
    - "/usr/bin/gpgv --homedir /tmp/.gnupg-r7c2d0xe --status-fd 1 --keyring /tmp/.archive-keyring-3v9w1k2q/pinned.gpg
      --output /tmp/.archive-keyring-3v9w1k2q/Release /tmp/.archive-keyring-3v9w1k2q/InRelease"
    - "/usr/bin/gpg --homedir /tmp/.gnupg-m1q8s5tb --no-options --no-autostart --batch --quiet --with-colons
      --show-keys /var/cache/osimage/keyrings/ubuntu-archive-keyring.gpg"
artifact:
  description: The keyring as path, size and sha256.
  returned: success and not check mode
  type: dict
  sample:
    path: /var/cache/osimage/keyrings/ubuntu-archive-keyring.gpg
    size: 2794
    sha256: "90c4c719963bee4ce4828c58f4b9ed567b0776971f046d058d6e9f090e1d431f"
"""

import contextlib
import datetime
import gzip
import hashlib
import os
import re
import shutil
import tempfile
import zlib

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.osimage.builder.plugins.module_utils._archive_trust import (
    clearsigned_problem,
    keyring_difference,
    primary_fingerprints,
    release_problem,
)
from ansible_collections.osimage.builder.plugins.module_utils._debian import (
    debootstrap_default_mirror,
    package_stanza,
    release_sha256,
    validsig_fingerprints,
)
from ansible_collections.osimage.builder.plugins.module_utils._digest import artifact, sha256_file
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


@contextlib.contextmanager
def gnupg_home():
    """A throw-away GnuPG home. --no-autostart on every gpg call keeps
    gpg-agent out of it: public keys need no agent."""
    home = tempfile.mkdtemp(prefix=".gnupg-")
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def gpg(home, *args):
    return ["gpg", "--homedir", home, "--no-options", "--no-autostart", "--batch", "--quiet"] + list(args)


def keyring_fingerprints(runner, path, check=True):
    """Primary-key fingerprints of a keyring; None when gpg cannot read it
    and check is false."""
    with gnupg_home() as home:
        rc, out, _err = runner.run(gpg(home, "--with-colons", "--show-keys", path),
                                   "read keyring %s" % path, check=check)
    return primary_fingerprints(out) if rc == 0 else None


def export_keys(runner, keyring, fprs, out):
    """Write to `out` a fresh keyring holding exactly the keys `fprs` of
    `keyring`: import it into a throw-away home, export those fingerprints."""
    with gnupg_home() as home:
        runner.run(gpg(home, "--import", keyring), "import keyring %s" % keyring)
        runner.run(gpg(home, "--yes", "--output", out, "--export", *fprs), "export the pinned keys")


def dest_problem(runner, dest, pinned):
    """Why an existing dest is not exactly the pinned keys, or None."""
    if not os.path.isfile(dest):
        return "dest does not exist"
    have = keyring_fingerprints(runner, dest, check=False)
    if have is None:
        return "dest is not a keyring gpg can read"
    diff = keyring_difference(have, pinned)
    if diff:
        return "dest " + diff
    # Same primary keys is not enough: a subkey or user id packet added to a
    # pinned key would ride along. What we write is `gpg --export` of the
    # pinned keys, and exporting them again from it gives the same bytes.
    work = tempfile.mkdtemp(prefix=".archive-keyring-")
    try:
        again = os.path.join(work, "again.gpg")
        export_keys(runner, dest, pinned, again)
        with open(again, "rb") as a, open(dest, "rb") as d:
            if a.read() != d.read():
                return "dest holds more than the pinned keys' own packets"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return None


# Upper bounds on what is read into memory before it is verified: a mirror
# that streams without end must not exhaust the build host. Generous against
# the real files (an Ubuntu InRelease is a few hundred KiB, main's
# Packages.gz a few MiB, ubuntu-keyring a few dozen KiB).
MAX_INRELEASE = 16 << 20
MAX_INDEX = 512 << 20
MAX_DEB = 64 << 20


def fetch(module, url, timeout, limit):
    try:
        with open_url(url, timeout=timeout) as response:
            data = response.read(limit + 1)
    except Exception as exc:
        module.fail_json(msg="fetching %s failed: %s; check mirror= and the build host's network" % (url, exc))
    if len(data) > limit:
        module.fail_json(msg="%s is larger than %d MiB; refusing to read it, check mirror=" % (url, limit >> 20))
    return data


def verified_keyring(module, runner, mirror, pinned, work):
    """Fetch InRelease, the Packages index and the keyring package, check the
    chain, and write the pinned keys to work/pinned.gpg. Returns (path,
    signed_by). Every failure is fail_json; nothing outside `work` is written."""
    p = module.params
    base = "%s/dists/%s" % (mirror, p["suite"])
    inrelease = fetch(module, base + "/InRelease", p["timeout"], MAX_INRELEASE)
    problem = clearsigned_problem(inrelease.decode("utf-8", "replace"))
    if problem:
        module.fail_json(msg="%s/InRelease is refused: %s. gpgv vouches only for the signed part, so nothing "
                             "outside it may be read; check mirror= (and that nothing on the path rewrites it)"
                             % (base, problem))
    index_rel = "%s/binary-%s/Packages.gz" % (p["component"], p["architecture"])
    index = fetch(module, "%s/%s" % (base, index_rel), p["timeout"], MAX_INDEX)
    try:
        stanza = package_stanza(gzip.decompress(index).decode("utf-8", "replace"), p["package"])
    except (OSError, EOFError, zlib.error) as exc:
        module.fail_json(msg="%s/%s is not a gzip file: %s" % (base, index_rel, exc))
    if not stanza or not stanza.get("Filename") or not stanza.get("SHA256"):
        module.fail_json(msg="package=%s is not in %s/%s (with Filename and SHA256)" % (p["package"], base, index_rel))
    deb = os.path.join(work, "keyring.deb")
    with open(deb, "wb") as f:
        f.write(fetch(module, "%s/%s" % (mirror, stanza["Filename"]), p["timeout"], MAX_DEB))
    if sha256_file(deb) != stanza["SHA256"]:
        module.fail_json(msg="%s does not have the sha256 the Packages index lists" % stanza["Filename"])
    # Unpacked before the chain is complete, into a private directory: the
    # signing keys needed to check InRelease are in this package.
    root = os.path.join(work, "root")
    runner.run(["dpkg-deb", "-x", deb, root], "unpack %s" % p["package"])
    keyring = os.path.join(root, p["keyring_path"])
    # A symlink in the package must not make us read a file of the build host.
    inside = os.path.realpath(keyring).startswith(os.path.realpath(root) + os.sep)
    if not inside or not os.path.isfile(keyring):
        module.fail_json(msg="keyring_path=%s is not a file in package %s" % (p["keyring_path"], p["package"]))
    have = keyring_fingerprints(runner, keyring)
    missing = [f for f in pinned if f not in have]
    if missing:
        module.fail_json(msg="the keyring in %s lacks the pinned keys %s; it holds %s"
                             % (stanza["Filename"], missing, have))
    exported = os.path.join(work, "pinned.gpg")
    export_keys(runner, keyring, pinned, exported)
    diff = keyring_difference(keyring_fingerprints(runner, exported), pinned)
    if diff:
        module.fail_json(msg="exporting the pinned keys from %s gave a keyring that %s" % (stanza["Filename"], diff))

    signed, release = os.path.join(work, "InRelease"), os.path.join(work, "Release")
    with open(signed, "wb") as f:
        f.write(inrelease)
    with gnupg_home() as home:
        rc, status, err = runner.run(["gpgv", "--homedir", home, "--status-fd", "1", "--keyring", exported,
                                      "--output", release, signed],
                                     "check the signature of %s/InRelease" % base, check=False)
    good = [f for f in validsig_fingerprints(status) if f in pinned]
    if rc != 0 or not good:
        module.fail_json(msg="%s/InRelease carries no good signature by a pinned key %s" % (base, pinned),
                         rc=rc, stdout=status, stderr=err, commands=runner.commands)
    # From here on only what gpgv verified is read.
    with open(release, encoding="utf-8", errors="replace") as f:
        verified = f.read()
    problem = release_problem(verified, p["suite"], datetime.datetime.now(datetime.timezone.utc))
    if problem:
        module.fail_json(msg="%s/InRelease is refused: %s" % (base, problem))
    want = release_sha256(verified, index_rel)
    if not want:
        module.fail_json(msg="%s/InRelease does not list %s in its signed SHA256 section" % (base, index_rel))
    if hashlib.sha256(index).hexdigest() != want:
        module.fail_json(msg="%s/%s does not have the sha256 InRelease lists" % (base, index_rel))
    return exported, good[0]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            suite=dict(type="str", required=True),
            mirror=dict(type="str"),
            architecture=dict(type="str", default="amd64"),
            component=dict(type="str", default="main"),
            package=dict(type="str", default="ubuntu-keyring"),
            keyring_path=dict(type="str", default="usr/share/keyrings/ubuntu-archive-keyring.gpg", no_log=False),
            fingerprints=dict(type="list", elements="str", required=True),
            dest=dict(type="path", required=True),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    runner = CommandRunner(module)
    pinned = []
    for f in p["fingerprints"]:
        f = re.sub(r"\s+", "", f).upper()
        if f not in pinned:
            pinned.append(f)
    bad = [f for f in pinned if not re.fullmatch(r"[0-9A-F]{40}", f)]
    if bad or not pinned:
        module.fail_json(msg="fingerprints holds values that are not OpenPGP v4 fingerprints: %s" % bad)
    for prog in ("gpg", "gpgv", "dpkg-deb"):
        runner.bin(prog, hint="install gnupg, gpgv and dpkg on the build host")

    mirror = p["mirror"]
    if not mirror:
        script = "/usr/share/debootstrap/scripts/%s" % p["suite"]
        if not os.path.exists(script):
            module.fail_json(msg="suite=%s: debootstrap has no script for it and mirror= is not set" % p["suite"])
        with open(script) as f:
            mirror = debootstrap_default_mirror(f.read(), p["architecture"])
        if not mirror:
            module.fail_json(msg="suite=%s: no default mirror in %s; set mirror=" % (p["suite"], script))
    mirror = mirror.rstrip("/")
    dest = p["dest"]
    if os.path.isdir(dest):
        module.fail_json(msg="dest=%s is a directory; give the keyring's file name" % dest)
    result = dict(changed=False, path=dest, mirror=mirror, commands=runner.commands)

    reason = dest_problem(runner, dest, pinned)
    if reason is None:
        result.update(fingerprints=pinned, artifact=artifact(dest))
        module.exit_json(**result)

    work = tempfile.mkdtemp(prefix=".archive-keyring-")
    try:
        exported, signed_by = verified_keyring(module, runner, mirror, pinned, work)
        result.update(changed=True, reason=reason, signed_by=signed_by, fingerprints=pinned)
        if not module.check_mode:
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".keyring-", dir=os.path.dirname(dest) or ".")
            os.close(fd)
            try:
                shutil.copyfile(exported, tmp)
                os.chmod(tmp, 0o644)
                module.atomic_move(tmp, dest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            os.chmod(dest, 0o644)  # atomic_move applies the umask to a new file
            result.update(fingerprints=keyring_fingerprints(runner, dest), artifact=artifact(dest))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

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
    suite's C(InRelease), the C(Packages) index and the keyring package from the archive and extracts the keyring.
  - Trust comes from O(fingerprints), the published fingerprints of the archive signing keys. The chain is checked
    end to end before anything is written; the keyring must hold every pinned key, C(InRelease) must carry a good
    signature by one of them (gpgv, checked with the extracted keyring), the C(Packages) index must have the
    sha256 C(InRelease) lists, and the package the sha256 the index lists.
  - An existing O(dest) that holds the pinned keys is kept as it is.
version_added: 0.1.0
author: osimage.builder contributors
options:
  suite:
    description: Suite codename, for example V(jammy).
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
    description: Fingerprints of the archive signing keys (40 hex digits, spaces allowed).
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
requirements:
  - gpg and gpgv, dpkg-deb on the build host
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
fingerprints:
  description: Fingerprints of the primary keys in the keyring.
  returned: success and not check mode
  type: list
  elements: str
signed_by:
  description: Fingerprint of the key whose signature on InRelease was checked.
  returned: when the keyring was fetched
  type: str
mirror:
  description: The archive used.
  returned: always
  type: str
artifact:
  description: The keyring as path, size and sha256.
  returned: success and not check mode
  type: dict
"""

import gzip
import hashlib
import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.osimage.builder.plugins.module_utils._debian import (
    debootstrap_default_mirror,
    package_stanza,
    release_sha256,
    validsig_fingerprints,
)
from ansible_collections.osimage.builder.plugins.module_utils._digest import artifact, sha256_file
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


def keyring_fingerprints(runner, path):
    """Primary-key fingerprints of a keyring, read with a throw-away GNUPGHOME."""
    home = tempfile.mkdtemp(prefix=".gnupg-")
    try:
        _rc, out, _err = runner.run(["gpg", "--batch", "--no-options", "--with-colons", "--show-keys", path],
                                    "read keyring %s" % path, env={"GNUPGHOME": home})
    finally:
        shutil.rmtree(home, ignore_errors=True)
    fprs, primary = [], False
    for line in out.splitlines():
        f = line.split(":")
        if f[0] == "pub":
            primary = True
        elif f[0] == "sub":
            primary = False
        elif f[0] == "fpr" and primary:
            fprs.append(f[9].upper())
            primary = False
    return fprs


def fetch(module, url, timeout):
    try:
        return open_url(url, timeout=timeout).read()
    except Exception as exc:
        module.fail_json(msg="fetching %s failed: %s; check mirror= and the build host's network" % (url, exc))


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
    pinned = [re.sub(r"\s+", "", f).upper() for f in p["fingerprints"]]
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
    result = dict(changed=False, path=p["dest"], mirror=mirror)

    if os.path.isfile(p["dest"]):
        have = keyring_fingerprints(runner, p["dest"])
        if set(pinned) <= set(have):
            result.update(fingerprints=have, artifact=artifact(p["dest"]))
            module.exit_json(**result)
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)

    work = tempfile.mkdtemp(prefix=".archive-keyring-")
    try:
        base = "%s/dists/%s" % (mirror, p["suite"])
        inrelease = fetch(module, base + "/InRelease", p["timeout"])
        index_rel = "%s/binary-%s/Packages.gz" % (p["component"], p["architecture"])
        want = release_sha256(inrelease.decode("utf-8", "replace"), index_rel)
        if not want:
            module.fail_json(msg="%s/InRelease does not list %s" % (base, index_rel))
        index = fetch(module, "%s/%s" % (base, index_rel), p["timeout"])
        if hashlib.sha256(index).hexdigest() != want:
            module.fail_json(msg="%s/%s does not have the sha256 InRelease lists" % (base, index_rel))
        stanza = package_stanza(gzip.decompress(index).decode("utf-8", "replace"), p["package"])
        if not stanza:
            module.fail_json(msg="package=%s is not in %s/%s" % (p["package"], base, index_rel))
        deb = os.path.join(work, "keyring.deb")
        with open(deb, "wb") as f:
            f.write(fetch(module, "%s/%s" % (mirror, stanza["Filename"]), p["timeout"]))
        if sha256_file(deb) != stanza.get("SHA256"):
            module.fail_json(msg="%s does not have the sha256 the Packages index lists" % stanza["Filename"])
        runner.run(["dpkg-deb", "-x", deb, os.path.join(work, "root")], "unpack %s" % p["package"])
        keyring = os.path.join(work, "root", p["keyring_path"])
        if not os.path.isfile(keyring):
            module.fail_json(msg="keyring_path=%s is not in package %s" % (p["keyring_path"], p["package"]))
        have = keyring_fingerprints(runner, keyring)
        missing = [f for f in pinned if f not in have]
        if missing:
            module.fail_json(msg="the keyring in %s lacks the pinned keys %s; it holds %s"
                                 % (stanza["Filename"], missing, have))
        signed = os.path.join(work, "InRelease")
        with open(signed, "wb") as f:
            f.write(inrelease)
        _rc, status, _err = runner.run(["gpgv", "--status-fd", "1", "--keyring", keyring, signed],
                                       "check the signature of %s/InRelease" % base)
        good = [f for f in validsig_fingerprints(status) if f in pinned]
        if not good:
            module.fail_json(msg="%s/InRelease carries no good signature by a pinned key" % base, stdout=status)
        os.makedirs(os.path.dirname(p["dest"]) or ".", exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keyring-", dir=os.path.dirname(p["dest"]) or ".")
        os.close(fd)
        shutil.copyfile(keyring, tmp)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, p["dest"])
        os.chmod(p["dest"], 0o644)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.update(changed=True, fingerprints=have, signed_by=good[0], artifact=artifact(p["dest"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: input_file
short_description: Bring an external build input (path or URL) onto the build host, verified against its sha256
description:
  - Inputs that only exist outside the build host (an upstream binary, a keyring package, a source tarball) are
    given as a local path or a URL plus the sha256 they must have.
  - The file is copied or downloaded to a temporary name beside O(dest), its sha256 checked, and only then moved
    into place. A wrong checksum is an error and leaves nothing behind.
  - When O(dest) already has the expected sha256 nothing is fetched (a cache keyed on the checksum).
version_added: 0.1.0
author: osimage.builder contributors
options:
  src:
    description: Local path on the build host, or an C(http://), C(https://) or C(file://) URL.
    type: str
    required: true
  sha256:
    description: Expected sha256 of the file (64 hex digits).
    type: str
    required: true
  dest:
    description: Where the verified file is kept.
    type: path
    required: true
  mode:
    description: File mode of O(dest), in octal (quote it in YAML, for example V("0755")).
    type: raw
    default: "0644"
  timeout:
    description: Download timeout in seconds.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: A bosh-agent binary given by URL and checksum
  osimage.builder.input_file:
    src: "{{ stemcell_agent_url }}"
    sha256: "{{ stemcell_agent_sha256 }}"
    dest: /var/cache/osimage/inputs/bosh-agent
    mode: "0755"
"""

RETURN = r"""
path:
  description: The verified file.
  returned: always
  type: str
artifact:
  description: The verified file as path, size and sha256.
  returned: success and not check mode
  type: dict
"""

import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.osimage.builder.plugins.module_utils._digest import artifact, sha256_file


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="str", required=True),
            sha256=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            mode=dict(type="raw", default="0644"),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    want = p["sha256"].strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", want):
        module.fail_json(msg="sha256=%s is not a sha256 (64 hex digits)" % p["sha256"])
    dest = p["dest"]
    try:
        mode = int(p["mode"], 8) if isinstance(p["mode"], str) else int(p["mode"])
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg="mode=%s is not an octal file mode; quote it, for example mode: \"0644\"" % p["mode"])
    if os.path.isfile(dest) and sha256_file(dest) == want:
        changed = False
        if (os.stat(dest).st_mode & 0o7777) != mode:
            changed = True
            if not module.check_mode:
                os.chmod(dest, mode)
        module.exit_json(changed=changed, path=dest, artifact=artifact(dest))
    src = p["src"]
    remote = re.match(r"^(https?|ftp)://", src) is not None
    if src.startswith("file://"):
        src = src[len("file://"):]
    if not remote and not os.path.isfile(src):
        module.fail_json(msg="src=%s does not exist on the build host" % p["src"])
    if module.check_mode:
        module.exit_json(changed=True, path=dest)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=os.path.dirname(dest) or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            if remote:
                try:
                    with open_url(src, timeout=p["timeout"]) as response:
                        shutil.copyfileobj(response, out)
                except Exception as exc:
                    module.fail_json(msg="src=%s could not be downloaded: %s" % (p["src"], exc))
            else:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out)
        got = sha256_file(tmp)
        if got != want:
            module.fail_json(msg="src=%s has sha256 %s, but sha256=%s was expected; refusing to use it"
                                 % (p["src"], got, want))
        module.atomic_move(tmp, dest)
        os.chmod(dest, mode)  # atomic_move applies the umask to a new file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.exit_json(changed=True, path=dest, artifact=artifact(dest))


if __name__ == "__main__":
    main()

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
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
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
  platform:
    platforms: posix
notes:
  - URLs are fetched with the build host's network settings (proxy variables apply).
  - The sha256 is checked before the file is moved into place, for local paths too.
seealso:
  - module: osimage.builder.kernel_build
  - module: osimage.builder.archive_keyring
requirements:
  - Python 3 on the build host; the module runs no external program. Downloads use Python's own HTTP client.
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
  sample: /var/cache/osimage/inputs/bosh-agent
artifact:
  description: The verified file as path, size and sha256.
  returned: success and not check mode
  type: dict
  sample:
    path: /var/cache/osimage/inputs/bosh-agent
    size: 21495808
    sha256: "c96c6d5be8d08a12e7b5cdc1b207fa6b2430974c86803d8891675e76fd992c20"
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import artifact, sha256_file
from ansible_collections.osimage.builder.plugins.module_utils._fetch import (
    SHA256,
    fetch_verified,
    is_remote,
    local_path,
)


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
    if not SHA256.match(want):
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
    if not is_remote(src) and not os.path.isfile(local_path(src)):
        module.fail_json(msg="src=%s does not exist on the build host" % p["src"])
    if module.check_mode:
        module.exit_json(changed=True, path=dest)
    fetch_verified(module, src, want, dest, timeout=p["timeout"], mode=mode)
    module.exit_json(changed=True, path=dest, artifact=artifact(dest))


if __name__ == "__main__":
    main()

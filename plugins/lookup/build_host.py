# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: build_host
short_description: What a build host needs, from the collection's one table
description:
  - Returns the Debian packages a build host needs, or the programs the pipelines run with the package that
    provides each, from C(plugins/module_utils/_build_host.py), the table the modules' program check also reads.
  - C(./osimage setup) and the C(osimage.builder.build_host) role install exactly this list.
version_added: 0.2.0
author: osimage.builder contributors (!UNKNOWN)
options:
  _terms:
    description: V(packages) or V(programs).
    required: true
    type: list
    elements: str
  tests:
    description: Also the packages the collection's own test suite needs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Install what the pipelines need
  ansible.builtin.apt:
    name: "{{ lookup('osimage.builder.build_host', 'packages', wantlist=True) }}"
"""

RETURN = r"""
_raw:
  description: Package names (V(packages)) or dicts with C(name) and C(package) (V(programs)).
  type: list
  elements: raw
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.osimage.builder.plugins.module_utils._build_host import PROGRAMS, packages


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        out = []
        for term in terms:
            if term == "packages":
                out.extend(packages(tests=self.get_option("tests")))
            elif term == "programs":
                out.extend({"name": n, "package": pkg} for n, pkg in sorted(PROGRAMS.items()))
            else:
                raise AnsibleError("osimage.builder.build_host: unknown term %r (packages or programs)" % term)
        return out

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The progress log of the modules whose steps take minutes.
    DOCUMENTATION = r"""
options:
  progress_log:
    description:
      - A file that every command the module runs appends its output to while it runs (a C($ command) line, the
        output, an C(exit N) line), so a long step can be followed with C(tail -f) from another shell.
      - The pipelines set it for every stage, to C(<work dir>/logs/<stage>.log), through the action group
        C(osimage.builder.progress) in C(module_defaults), and name the file on the stage's line.
      - The result is the same with or without it; it is not an input of the stamp.
    type: path
"""

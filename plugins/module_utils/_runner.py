# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to run a command from a module: argv lists, LC_ALL=C, and a
failure message that names the command and carries its stderr."""

from __future__ import annotations

import shlex


class CommandRunner:
    """Runs argv lists through AnsibleModule.run_command.

    Every failure goes through fail_json with the same shape:
    msg "<what> failed: <command line>", rc, stdout, stderr and an optional hint
    that tells the user what to do next.
    """

    def __init__(self, module):
        self.module = module
        self.commands = []

    def bin(self, name, hint=None):
        path = self.module.get_bin_path(name, required=False)
        if path is None:
            msg = "required program %r was not found on the build host" % name
            if hint:
                msg += "; " + hint
            self.module.fail_json(msg=msg)
        return path

    def run(self, argv, what, check=True, env=None, data=None, cwd=None, hint=None,
            record=True, binary_data=False):
        environ = {"LC_ALL": "C", "LANG": "C"}
        environ.update(env or {})
        argv = [str(a) for a in argv]
        if record:
            self.commands.append(shlex.join(argv))
        rc, out, err = self.module.run_command(
            argv, environ_update=environ, data=data, cwd=cwd,
            binary_data=binary_data, check_rc=False)
        if check and rc != 0:
            self.fail(what, argv, rc, out, err, hint)
        return rc, out, err

    def fail(self, what, argv, rc, out, err, hint=None, **extra):
        msg = "%s failed: %s" % (what, shlex.join([str(a) for a in argv]))
        tail = (err or out or "").strip().splitlines()[-5:]
        if tail:
            msg += ": " + " | ".join(tail)
        if hint:
            msg += ". " + hint
        self.module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err,
                              commands=self.commands, **extra)

# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to run a command from a module: argv lists, LC_ALL=C, and a
failure message that names the command and carries its stderr."""

from __future__ import annotations

import os
import shlex

from ansible_collections.osimage.builder.plugins.module_utils._build_host import missing_message


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
        """The absolute path of a program, or a failure that names it and
        the Debian package that provides it."""
        if name.startswith("/"):
            if os.access(name, os.X_OK):
                return name
            path = None
        else:
            path = self.module.get_bin_path(name, required=False)
        if path is None:
            msg = missing_message(name)
            if hint:
                msg += "; " + hint
            self.module.fail_json(msg=msg, commands=self.commands)
        return path

    def require(self, *names):
        """Resolve every program a run will need before any work starts, so a
        missing one fails with nothing written."""
        return [self.bin(n) for n in names]

    def run(self, argv, what, check=True, env=None, data=None, cwd=None, hint=None,
            record=True, binary_data=False, encoding="utf-8"):
        environ = {"LC_ALL": "C", "LANG": "C"}
        environ.update(env or {})
        argv = [str(a) for a in argv]
        # Every program goes through the program check: a missing one is an
        # error naming it and its package, never run_command's bare
        # "Error executing command." with an empty stderr.
        argv[0] = self.bin(argv[0])
        if record:
            self.commands.append(shlex.join(argv))
        rc, out, err = self.module.run_command(
            argv, environ_update=environ, data=data, cwd=cwd,
            binary_data=binary_data, encoding=encoding, check_rc=False)
        if check and rc != 0:
            self.fail(what, argv, rc, out, err, hint)
        return rc, out, err

    def fail(self, what, argv, rc, out, err, hint=None, **extra):
        msg = "%s failed: %s" % (what.rstrip("."), shlex.join([str(a) for a in argv]))
        text = err or out or ""
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        tail = text.strip().splitlines()[-5:]
        if tail:
            msg += ": " + " | ".join(tail)
        if hint:
            msg += ". " + hint
        self.module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err,
                              commands=self.commands, **extra)

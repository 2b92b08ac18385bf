# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to run a command from a module: argv lists, LC_ALL=C, and a
failure message that names the command and carries its stderr."""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import subprocess
import tempfile
import threading
import time

from ansible_collections.osimage.builder.plugins.module_utils._build_host import missing_message


class CommandRunner:
    """Runs argv lists through AnsibleModule.run_command.

    Every failure goes through fail_json with the same shape:
    msg "<what> failed: <command line>", rc, stdout, stderr and an optional hint
    that tells the user what to do next.
    """

    def __init__(self, module, progress_log=None):
        self.module = module
        self.commands = []
        # A module with a progress_log option (doc fragment
        # osimage.builder.progress) streams every command's output there
        # while it runs, so a long step can be followed with tail -f.
        self.progress_log = progress_log or (getattr(module, "params", None) or {}).get("progress_log")

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
        if self.progress_log and not binary_data and encoding:
            rc, out, err = self._run_logged(argv, environ, data, cwd, encoding)
        else:
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
        # A program that filled the disk: say where, and how much is free.
        from ansible_collections.osimage.builder.plugins.module_utils._space import (
            program_ran_out_of_space,
            space_of_paths,
        )
        if program_ran_out_of_space(err) or program_ran_out_of_space(out):
            msg += ". No space left on device (%s); free space there or give the build a directory with more room, " \
                   "then re-run" % "; ".join(space_of_paths(argv) or ["the filesystem it wrote to"])
        self.module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err,
                              commands=self.commands, **extra)

    @contextlib.contextmanager
    def stream(self, argvs, whats):
        """Run a pipeline `argvs[0] | argvs[1] | ...` and yield the last
        command's stdout as a binary file, for output too large to hold (a
        tar | compressor stream, a zstd-compressed tarball read member by
        member). The same rules as run(): programs resolved through bin(),
        LC_ALL=C, the line recorded in commands; when the block ends every
        command is waited for and the first that failed, counted from the
        end of the pipe (whats[i] says what argvs[i] does), goes through
        fail() with its stderr. If the block raises, the commands still
        running are killed."""
        argvs = [[self.bin(str(a[0]))] + [str(x) for x in a[1:]] for a in argvs]
        self.commands.append(" | ".join(shlex.join(a) for a in argvs))
        env = dict(os.environ, LC_ALL="C", LANG="C")
        procs, errs = [], []
        try:
            stdin = subprocess.DEVNULL
            for argv in argvs:
                # stderr to a file, not a pipe: a chatty command never blocks
                # on a pipe nobody reads while its stdout is consumed.
                err = tempfile.TemporaryFile()
                errs.append(err)
                proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=err, env=env)
                if stdin is not subprocess.DEVNULL:
                    stdin.close()  # the next command holds it now
                procs.append(proc)
                stdin = proc.stdout
            yield procs[-1].stdout
            procs[-1].stdout.close()
            rcs = [proc.wait() for proc in procs]
            for i in reversed(range(len(argvs))):
                if rcs[i] != 0:
                    errs[i].seek(0)
                    self.fail(whats[i], argvs[i], rcs[i], "", errs[i].read().decode(errors="replace"))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for err in errs:
                err.close()

    def _run_logged(self, argv, environ, data, cwd, encoding):
        """run_command's contract (rc, stdout, stderr as text), with both
        streams also appended to the progress log as they come. The child is
        killed if the module is interrupted, so cleanup code sees no runner
        left behind."""
        env = dict(os.environ)
        env.update(environ)
        log_dir = os.path.dirname(self.progress_log)
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
        chunks = {"stdout": [], "stderr": []}
        with open(self.progress_log, "ab", buffering=0) as log:
            log.write(("\n[%s] $ %s\n" % (time.strftime("%H:%M:%S"), shlex.join(argv))).encode())
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env)
            try:
                if data is not None:
                    payload = data if isinstance(data, bytes) else (data + "\n").encode(encoding)
                    feeder = threading.Thread(target=self._feed, args=(proc.stdin, payload), daemon=True)
                    feeder.start()
                sel = selectors.DefaultSelector()
                sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
                sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
                open_streams = 2
                while open_streams:
                    for key, _mask in sel.select():
                        block = os.read(key.fileobj.fileno(), 65536)
                        if not block:
                            sel.unregister(key.fileobj)
                            open_streams -= 1
                            continue
                        chunks[key.data].append(block)
                        log.write(block)
                rc = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            log.write(("[%s] exit %d\n" % (time.strftime("%H:%M:%S"), rc)).encode())
        return (rc, b"".join(chunks["stdout"]).decode(encoding, errors="replace"),
                b"".join(chunks["stderr"]).decode(encoding, errors="replace"))

    @staticmethod
    def _feed(stream, payload):
        try:
            stream.write(payload)
        except BrokenPipeError:
            pass
        finally:
            try:
                stream.close()
            except BrokenPipeError:
                pass

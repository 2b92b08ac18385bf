"""bindep.txt from the one build-host table (plugins/module_utils/_build_host.py,
packages()), for ansible-builder and for `bindep` on a build host.

Regenerate after changing the table:  .venv/bin/python -m tests.bindep
tests/lint/test_execution_environment.py fails when bindep.txt has drifted."""
import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINDEP = os.path.join(REPO, "bindep.txt")


def build_host_table():
    # The table is plain Python with no Ansible imports: load it by path, so
    # this runs without the collection being importable.
    path = os.path.join(REPO, "plugins", "module_utils", "_build_host.py")
    spec = importlib.util.spec_from_file_location("_osimage_build_host", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render():
    table = build_host_table()
    build = table.packages()
    tests = sorted(set(table.packages(tests=True)) - set(build))
    lines = [
        "# What a build host needs, in bindep's format: the Debian (bookworm) packages",
        "# of the one build-host table, plugins/module_utils/_build_host.py (packages()).",
        "# Generated; do not edit. Regenerate with: .venv/bin/python -m tests.bindep",
        "# `bindep` lists what is missing here; `bindep test` adds the test suite's own.",
    ]
    lines += ["%s [platform:dpkg]" % name for name in build]
    lines += ["# the test suite's own packages (molecule's SSH build host, the fresh-root test)"]
    lines += ["%s [platform:dpkg test]" % name for name in tests]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = render()
    with open(BINDEP, "w") as f:
        f.write(text)
    count = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    sys.stdout.write("wrote %s (%d packages)\n" % (BINDEP, count))

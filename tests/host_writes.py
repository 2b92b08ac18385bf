"""Which paths inside the image a role writes from the build host with the
stock modules (copy, template, lineinfile, file, ...), read from its task
files: the list the role hands `osimage.builder.root_guard` must cover them
all (tests/unit/test_root_guard_coverage.py). Run as a script to print them:
`.venv/bin/python -m tests.host_writes os_image`."""
import os
import re
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITERS = {"copy", "template", "lineinfile", "blockinfile", "replace", "file", "unarchive"}
VAR = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _module(task):
    for key, value in task.items():
        name = key.rsplit(".", 1)[-1]
        if name in WRITERS and isinstance(value, dict) and key.startswith(("ansible.builtin.", "ansible.legacy."))\
                or (name in WRITERS and "." not in key and isinstance(value, dict)):
            return name, value
    return None, None


def _expand(text, variables, depth=0):
    """Substitute the role's own path variables (textually) until only the
    chroot variable and unknowns are left."""
    if depth > 10:
        return text

    def sub(m):
        value = variables.get(m.group(1))
        return value if isinstance(value, str) and m.group(1) != chroot_var(variables) else m.group(0)
    new = VAR.sub(sub, text)
    return new if new == text else _expand(new, variables, depth + 1)


def chroot_var(variables):
    return variables.get("__host_writes_chroot_var")


def _in_image(value, chroot):
    """The path inside the image for a task's dest/path, a component that is
    templated becoming '*' (its directory's every entry), or None when the
    path is not under the image root."""
    prefix = "{{ %s }}" % chroot
    if not value.startswith(prefix):
        return None
    parts = [c for c in value[len(prefix):].split("/") if c]
    out = []
    for comp in parts:
        if "{{" in comp or "*" in comp:
            out.append("*")
            break
        out.append(comp)
    return "/" + "/".join(out)


def host_writes(role):
    """(written, replaced): the in-image paths role `role` writes host-side,
    and those of them written with file state=link (the link is replaced,
    not followed)."""
    base = os.path.join(REPO, "roles", role)
    with open(os.path.join(base, "vars", "main.yml")) as f:
        variables = yaml.safe_load(f) or {}
    chroot = "__%s_chroot" % role
    variables["__host_writes_chroot_var"] = chroot
    written, replaced = set(), set()
    tasks_dir = os.path.join(base, "tasks")
    for name in sorted(os.listdir(tasks_dir)):
        if not name.endswith(".yml"):
            continue
        with open(os.path.join(tasks_dir, name)) as f:
            doc = yaml.safe_load(f) or []
        for task in _tasks(doc):
            module, args = _module(task)
            if not module:
                continue
            targets = [args.get(k) for k in ("dest", "path") if isinstance(args.get(k), str)]
            loop = task.get("loop") if isinstance(task.get("loop"), list) else []
            if loop and all(isinstance(i, str) for i in loop):
                targets = [t.replace("{{ item }}", i) if "{{ item }}" in t else t for t in targets for i in loop]
            for target in targets:
                path = _in_image(_expand(target.strip(), variables), chroot)
                if path is None:
                    continue
                written.add(path)
                if module == "file" and args.get("state") == "link":
                    replaced.add(path)
    return sorted(written), sorted(replaced)


def covered(path, patterns):
    """Whether `path` is one of `patterns` or inside a 'dir/*' pattern."""
    for pattern in patterns:
        if path == pattern:
            return True
        if pattern.endswith("/*") and (path == pattern[:-2] or path.startswith(pattern[:-1])
                                       and "/" not in path[len(pattern) - 1:].strip("*")):
            return True
    return False


if __name__ == "__main__":
    for role in sys.argv[1:]:
        w, r = host_writes(role)
        print("# %s: written" % role)
        print("\n".join("  - " + p for p in w))
        print("# %s: replaced" % role)
        print("\n".join("  - " + p for p in r))

"""Linters are tests too: ruff over the Python, ansible-lint (production
profile) over roles, playbooks and molecule scenarios."""
import ast
import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile

import yaml

from ansible_collections.osimage.builder.plugins.module_utils._build_host import PROGRAMS
from tests.conftest import BIN, REPO

# A HOME of the linters' own: ansible-lint and ansible-doc also look in
# ~/.ansible/collections, where a copy of this collection installed earlier
# (by hand, or by a tool run elsewhere) would shadow the checkout.
LINT_HOME = tempfile.mkdtemp(prefix="osimage-lint-home-")
atexit.register(shutil.rmtree, LINT_HOME, True)


def run(argv):
    # The checkout's own collection, never a copy installed elsewhere.
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1", HOME=LINT_HOME,
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "collections"))
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_ruff():
    proc = run([os.path.join(BIN, "ruff"), "check", "plugins", "tests", "benchmarks"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_module_documentation_parses():
    """ansible-doc reads every module's DOCUMENTATION/EXAMPLES/RETURN; each
    names its requirements (every build-host program its code runs, with the
    Debian package of _build_host.py) and its related modules."""
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(REPO, "plugins", "modules")) if n.endswith(".py"))
    assert modules
    for name in modules:
        proc = run([os.path.join(BIN, "ansible-doc"), "-t", "module", "--json", "osimage.builder." + name])
        assert proc.returncode == 0, "%s: %s" % (name, proc.stderr)
        doc = json.loads(proc.stdout)["osimage.builder." + name]
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"], name
        assert doc["doc"].get("requirements"), "%s: DOCUMENTATION has no requirements" % name
        assert doc["doc"].get("seealso"), "%s: DOCUMENTATION has no seealso" % name
        requirements = " ".join(doc["doc"]["requirements"])
        for program in programs_run(name):
            package = PROGRAMS[program]
            assert re.search(r"(^|[ ,(])%s\b" % re.escape(program), requirements), \
                "%s runs %s, which its requirements do not name" % (name, program)
            assert "Debian package %s" % package in requirements, \
                "%s: requirements name %s without its Debian package %s (_build_host.py)" % (name, program, package)


def programs_run(name):
    """The build-host programs a module's own code names as argv[0] or checks for:
    a list starting with a program (["chroot", root], run(["zstd", ...])),
    .bin("prog"), a constant (QEMU = "qemu-system-x86_64"), runner.require("prog", ...),
    `for prog in ("a", "b"):` before runner.bin(prog)."""
    src = open(os.path.join(REPO, "plugins", "modules", name + ".py")).read()
    src = src[src.index('RETURN = r"""'):]  # the code, not the documentation
    names = set(re.findall(r'(?<!choices=)\[\s*"([\w.+-]+)"', src))
    names |= set(re.findall(r'\.bin\(\s*"([\w.+-]+)"', src))
    names |= set(re.findall(r'^[A-Z_]+ = "([\w.+-]+)"$', src, re.M))
    for group in re.findall(r'runner\.require\(([^)]*)\)', src) + re.findall(r'for prog in \(([^)]*)\)', src):
        names |= set(re.findall(r'"([\w.+-]+)"', group))
    return sorted(n for n in names if n in PROGRAMS)


CHECK_MODE_TEST = os.path.join(REPO, "tests", "integration", "test_check_mode.py")


def check_mode_cases():
    """{case name: plan key or None} of the CASES table in
    tests/integration/test_check_mode.py, read from its source (test modules
    do not import each other): each case's function returns entry(...), and
    a plan= keyword marks a partial check mode and names the result key of
    what it would run."""
    tree = ast.parse(open(CHECK_MODE_TEST).read())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(x, ast.Name) and x.id == "CASES" for x in n.targets))
    cases = {}
    for key, value in zip(table.keys, table.values):
        plan = None
        for node in ast.walk(functions[value.id]):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "entry":
                for kw in node.keywords:
                    if kw.arg == "plan" and isinstance(kw.value, ast.Constant):
                        plan = kw.value.value
        cases[key.value] = plan
    return cases


def test_every_check_mode_claim_is_tested():
    """A module's check_mode attribute is a claim the check-mode test keeps
    it to: every module of plugins/modules has a case in
    tests/integration/test_check_mode.py (which asserts nothing is written and
    what the result holds); `partial` only with a case that names the result
    key of what it would run (plan=, asserted non-empty there), and with
    `details` that say what it cannot predict and name that key as RV(...)."""
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(REPO, "plugins", "modules"))
                     if n.endswith(".py") and not n.startswith("_"))
    cases = check_mode_cases()
    covered = {}
    for case, plan in cases.items():
        covered.setdefault(case.split(":")[0], set()).add(plan)
    problems = ["%s has no check-mode case in tests/integration/test_check_mode.py CASES" % m
                for m in modules if m not in covered]
    problems += ["tests/integration/test_check_mode.py CASES names %s, which is not a module" % m
                 for m in sorted(set(covered) - set(modules))]
    proc = run([os.path.join(BIN, "ansible-doc"), "-t", "module", "--json"]
               + ["osimage.builder." + name for name in modules])
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    for name in modules:
        doc = docs["osimage.builder." + name]
        attr = doc["doc"]["attributes"]["check_mode"]
        support = attr["support"]
        plans = covered.get(name, set())
        details = attr.get("details") or ""
        details = " ".join(details) if isinstance(details, list) else details
        if support not in ("full", "partial"):
            problems.append("%s: check_mode support %s; every module runs in check mode (the check-mode test "
                            "runs each)" % (name, support))
        elif support == "full" and plans - {None}:
            problems.append("%s claims full check mode, but its check-mode case says partial (plan=%s)"
                            % (name, sorted(plans - {None})))
        elif support == "partial":
            if not plans or None in plans:
                problems.append("%s claims partial check mode, but its check-mode case does not name the result "
                                "key of what it would run (entry(..., plan=<key>, runs=<program>))" % name)
            if "cannot" not in details:
                problems.append("%s claims partial check mode; its check_mode details must say what it cannot "
                                "predict" % name)
            for plan in sorted(p for p in plans if p):
                if "RV(%s)" % plan not in details:
                    problems.append("%s: check_mode details must name RV(%s), what check mode returns"
                                    % (name, plan))
                if plan not in (doc["return"] or {}):
                    problems.append("%s: RETURN does not document %s, its check-mode plan" % (name, plan))
    assert not problems, "\n".join(problems)


def test_ansible_lint_production_profile():
    # .ansible-lint: production profile, offline, the whole collection (galaxy.yml, roles, playbooks, molecule).
    proc = run([os.path.join(BIN, "ansible-lint")])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-8000:]


ROLES = sorted(n for n in os.listdir(os.path.join(REPO, "roles")) if os.path.isdir(os.path.join(REPO, "roles", n)))


def test_role_documentation():
    """Every role has a README naming each variable of its argument_specs, and
    `ansible-doc -t role` renders each entry point with every option described;
    every public variable of defaults/main.yml is an option of an entry point."""
    assert ROLES
    problems = []
    for role in ROLES:
        base = os.path.join(REPO, "roles", role)
        readme = os.path.join(base, "README.md")
        if not os.path.exists(readme):
            problems.append("roles/%s has no README.md" % role)
            continue
        text = open(readme).read()
        proc = run([os.path.join(BIN, "ansible-doc"), "-t", "role", "--json", "osimage.builder." + role])
        if proc.returncode != 0:
            problems.append("ansible-doc -t role osimage.builder.%s: %s" % (role, proc.stderr.strip()))
            continue
        entry_points = json.loads(proc.stdout)["osimage.builder." + role]["entry_points"]
        if "main" not in entry_points:
            problems.append("%s: no main entry point in meta/argument_specs.yml" % role)
        documented = set()
        for entry, spec in entry_points.items():
            if not spec.get("short_description"):
                problems.append("%s:%s has no short_description" % (role, entry))
            proc = run([os.path.join(BIN, "ansible-doc"), "-t", "role", "-e", entry, "osimage.builder." + role])
            if proc.returncode != 0:
                problems.append("ansible-doc -t role -e %s osimage.builder.%s: %s" % (entry, role, proc.stderr))
            for option, ospec in (spec.get("options") or {}).items():
                documented.add(option)
                if not ospec.get("description"):
                    problems.append("%s:%s option %s has no description" % (role, entry, option))
                if not re.search(r"\b%s\b" % re.escape(option), text):
                    problems.append("roles/%s/README.md does not mention %s" % (role, option))
        defaults = os.path.join(base, "defaults", "main.yml")
        if os.path.exists(defaults):
            for var in yaml.safe_load(open(defaults)) or {}:
                if not var.startswith("__") and var not in documented:
                    problems.append("%s: defaults/main.yml variable %s is not in meta/argument_specs.yml" % (role, var))
    assert not problems, "\n".join(problems)


def test_every_filter_has_its_own_documentation():
    # One doc per filter (plugins/filter/<name>.yml), rendered by ansible-doc.
    import importlib
    filters = {}
    for name in sorted(os.listdir(os.path.join(REPO, "plugins", "filter"))):
        if name.endswith(".py"):
            mod = importlib.import_module("ansible_collections.osimage.builder.plugins.filter." + name[:-3])
            filters.update(mod.FilterModule().filters())
    assert len(filters) >= 11
    for name in filters:
        path = os.path.join(REPO, "plugins", "filter", name + ".yml")
        assert os.path.isfile(path), "filter %s has no %s" % (name, path)
        doc = yaml.safe_load(open(path))
        assert doc["DOCUMENTATION"]["name"] == name and doc["EXAMPLES"] and doc["RETURN"]["_value"]
    proc = run([os.path.join(BIN, "ansible-doc"), "-t", "filter", "--json"]
               + ["osimage.builder." + name for name in sorted(filters)])
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"osimage.builder." + name for name in filters}


def test_every_return_value_has_a_sample():
    """Issue 16: every key of every module's RETURN (and every key under the
    `contains` of a dict or list) carries a `sample`, read as ansible-doc
    parses the YAML."""
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(REPO, "plugins", "modules")) if n.endswith(".py"))
    assert modules
    proc = run([os.path.join(BIN, "ansible-doc"), "-t", "module", "--json"]
               + ["osimage.builder." + name for name in modules])
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    missing = []

    def check(where, keys):
        for key, spec in (keys or {}).items():
            if not isinstance(spec, dict) or "sample" not in spec:
                missing.append("%s.%s" % (where, key))
                continue
            if spec.get("contains"):
                check("%s.%s" % (where, key), spec["contains"])

    for name in modules:
        ret = docs["osimage.builder." + name]["return"]
        assert ret, "%s: RETURN is empty" % name
        check(name, ret)
    assert not missing, "RETURN keys without a sample: " + ", ".join(missing)

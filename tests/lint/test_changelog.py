"""The changelog is antsibull-changelog's (changelogs/): the fragments lint
clean, each one parses, a release made from them lists every entry, and
CHANGELOG.md is exactly what `antsibull-changelog generate` makes of
changelogs/changelog.yaml. Nothing here needs git tags or a git checkout."""
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import BIN, REPO

CHANGELOGS = os.path.join(REPO, "changelogs")
FRAGMENTS = os.path.join(CHANGELOGS, "fragments")
CONFIG = yaml.safe_load(open(os.path.join(CHANGELOGS, "config.yaml")))
SECTIONS = {name for name, _title in CONFIG["sections"]}
PRELUDE = CONFIG["prelude_section_name"]
TRIVIAL = CONFIG.get("trivial_section_name", "trivial")


def antsibull_changelog(*args, cwd=REPO):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1")
    return subprocess.run([os.path.join(BIN, "antsibull-changelog"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def fragment_files():
    # dotfiles (.keep holds the directory in git) are not fragments for antsibull-changelog either
    if not os.path.isdir(FRAGMENTS):
        return []
    return sorted(n for n in os.listdir(FRAGMENTS) if not n.startswith("."))


def fragments():
    return {name: yaml.safe_load(open(os.path.join(FRAGMENTS, name))) for name in fragment_files()}


def plain(text):
    """Text without markup, to compare a fragment's entry with its rendering:
    RST literals (``x``), Markdown's backslash escapes and <code> tags."""
    text = re.sub(r"</?code>", "", text).replace("``", "")
    text = re.sub(r"\\(.)", r"\1", text)
    return " ".join(text.split())


def test_antsibull_changelog_lint():
    proc = antsibull_changelog("lint")
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.mark.parametrize("name", fragment_files())
def test_fragment_parses(name):
    assert name.endswith((".yml", ".yaml")), "%s: fragments are YAML files (.yml)" % name
    data = yaml.safe_load(open(os.path.join(FRAGMENTS, name)))
    assert isinstance(data, dict) and data, "%s: a fragment is a mapping of section -> entries" % name
    for section, entries in data.items():
        if section.startswith(("add object.", "add plugin.")):
            assert isinstance(entries, list) and entries, (name, section)
            for entry in entries:
                assert set(entry) <= {"name", "description", "namespace"}, (name, section, entry)
                assert entry["name"] and entry["description"], (name, section, entry)
            continue
        assert section in SECTIONS | {PRELUDE, TRIVIAL}, (
            "%s: unknown section %r (changelogs/config.yaml has %s)" % (name, section, sorted(SECTIONS)))
        if section == PRELUDE:
            assert isinstance(entries, str) and entries.strip(), (name, section)
        else:
            assert isinstance(entries, list) and entries, (name, section)
            assert all(isinstance(e, str) and e.strip() for e in entries), (name, section)


def _copy(tmp_path):
    """galaxy.yml and changelogs/ (without the plugin cache) in a tmp dir."""
    work = tmp_path / "collection"
    work.mkdir()
    shutil.copy(os.path.join(REPO, "galaxy.yml"), work)
    shutil.copytree(CHANGELOGS, work / "changelogs", ignore=shutil.ignore_patterns(".plugin-cache.yaml"))
    return work


def test_changelog_md_is_generated_from_changelog_yaml(tmp_path):
    work = _copy(tmp_path)
    proc = antsibull_changelog("generate", cwd=str(work))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for output in CONFIG["output"]:
        generated = (work / output["file"]).read_text()
        with open(os.path.join(REPO, output["file"])) as f:
            assert f.read() == generated, (
                "%s is not what `antsibull-changelog generate` makes of changelogs/changelog.yaml: "
                "run .venv/bin/antsibull-changelog generate" % output["file"])


def test_a_release_lists_every_fragment_entry(tmp_path):
    """Release the fragments in a copy: every entry lands in changelog.yaml
    and in the generated changelog."""
    if not fragment_files():
        pytest.skip("no unreleased changes: changelogs/fragments/ is empty")
    work = _copy(tmp_path)
    released = yaml.safe_load((work / "changelogs" / "changelog.yaml").read_text())["releases"]
    version = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml")))["version"]
    assert version not in released, (
        "galaxy.yml's version %s is released already although changelogs/fragments/ holds changes: "
        "raise the version in galaxy.yml" % version)
    # New modules and plugins are found by ansible-doc (version_added); what is
    # tested here is the fragments, so an empty plugin cache stands in for it.
    (work / "changelogs" / ".plugin-cache.yaml").write_text(
        yaml.safe_dump({"version": version, "plugins": {}, "objects": {}}))
    proc = antsibull_changelog("release", "--version", version, "--date", "2099-01-01", cwd=str(work))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = antsibull_changelog("generate", cwd=str(work))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    release = yaml.safe_load((work / "changelogs" / "changelog.yaml").read_text())["releases"][version]
    rendered = plain((work / CONFIG["output"][0]["file"]).read_text())
    for name, data in fragments().items():
        for section, entries in data.items():
            if section == TRIVIAL:
                continue
            if section.startswith(("add object.", "add plugin.")):
                kind, obj_type = section[len("add "):].split(".", 1)
                listed = release["objects" if kind == "object" else "plugins"][obj_type]
                for entry in entries:
                    assert entry["name"] in [e["name"] for e in listed], (name, section, entry)
                    assert plain("%s - %s" % (entry["name"], entry["description"])) in rendered
                continue
            if section == PRELUDE:
                assert plain(entries) in rendered, (name, section)
                continue
            assert set(entries) <= set(release["changes"][section]), (name, section)
            for entry in entries:
                assert plain(entry) in rendered, (name, section, entry)


# A change to what users run (modules, plugins, roles, playbooks, collection
# metadata, molecule scenarios) comes with a changelog fragment in the same
# commit (a `trivial:` one for changes users do not see), as ansible-test's
# changelog test asks of a pull request. Checked for every commit after
# FRAGMENT_RULE_SINCE (the rule's start; earlier history is as it was) and for
# uncommitted changes of the working tree. A release commit (changelog.yaml)
# counts as carrying its fragments.
FRAGMENT_RULE_SINCE = "1d193fd"
USER_FACING = ("plugins/", "roles/", "playbooks/", "meta/", "extensions/", "galaxy.yml")


def git(*args):
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)


def needs_fragment(paths):
    code = [p for p in paths if p.startswith(USER_FACING)]
    carried = any(p.startswith("changelogs/fragments/") or p == "changelogs/changelog.yaml" for p in paths)
    return code if code and not carried else []


def test_needs_fragment_rule():
    assert needs_fragment(["plugins/modules/x.py"]) == ["plugins/modules/x.py"]
    assert needs_fragment(["plugins/modules/x.py", "changelogs/fragments/x.yml"]) == []
    assert needs_fragment(["roles/a/tasks/main.yml", "changelogs/changelog.yaml"]) == []
    assert needs_fragment(["tests/unit/test_x.py", "README.md"]) == []


def test_every_change_to_the_collection_has_a_fragment():
    if git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout (a git archive, as in the fresh-root test): no history to check")
    if git("cat-file", "-e", FRAGMENT_RULE_SINCE + "^{commit}").returncode != 0:
        pytest.skip("the rule's start commit %s is not in this clone's history" % FRAGMENT_RULE_SINCE)
    missing = {}
    commits = git("rev-list", "--no-merges", FRAGMENT_RULE_SINCE + "..HEAD").stdout.split()
    for commit in commits:
        paths = git("diff-tree", "--no-commit-id", "--name-only", "-r", commit).stdout.split()
        if needs_fragment(paths):
            missing[commit[:10] + " " + git("log", "-1", "--format=%s", commit).stdout.strip()[:60]] = \
                needs_fragment(paths)[:3]
    status = git("status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    uncommitted = [line[3:].split(" -> ")[-1] for line in status]
    if needs_fragment(uncommitted):
        missing["(uncommitted)"] = needs_fragment(uncommitted)[:3]
    assert missing == {}, "changes without a changelog fragment (add changelogs/fragments/<name>.yml): %s" % missing

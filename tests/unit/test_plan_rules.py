"""The plans' validation patterns (roles/*/vars/main.yml), checked with real
values: every default and upstream value passes, every injection example is
refused, and the stemcell role's name rule is _stemcell.VERSION_RE."""
import os
import re

import pytest
import yaml

from ansible_collections.osimage.builder.plugins.module_utils import _stemcell as sc
from tests.conftest import REPO


def load(role, name):
    with open(os.path.join(REPO, "roles", role, name, "main.yml")) as f:
        return yaml.safe_load(f)


OS_IMAGE = load("os_image", "vars")
STEMCELL = load("stemcell", "vars")
STEMCELL_DEFAULTS = load("stemcell", "defaults")


def test_the_stemcell_name_rule_is_the_module_utils_one():
    assert STEMCELL["__stemcell_re_name"] == sc.VERSION_RE.pattern
    assert sc.OS_NAME_RE.pattern == sc.VERSION_RE.pattern


@pytest.mark.parametrize("version", ["0000", "1.0", "621.125", "1.0.0-dev.1", "3586.100+build_2", "latest"])
def test_bosh_versions_are_accepted(version):
    assert sc.VERSION_RE.match(version)


@pytest.mark.parametrize("version", ["1.0 beta", "../1", "1..0", "1.0.", ".1", "1/0", "-1", "1.0\n", ""])
def test_versions_that_are_no_file_name_part_are_refused(version):
    assert not sc.VERSION_RE.match(version)


def test_every_package_the_roles_install_passes_the_package_rule():
    pattern = re.compile(OS_IMAGE["__os_image_re_package"])
    names = OS_IMAGE["__os_image_packages_common"] + sum(OS_IMAGE["__os_image_packages_by_distribution"].values(), [])
    names += OS_IMAGE["__os_image_bootstrap_include"] + STEMCELL_DEFAULTS["stemcell_kernel_packages"]
    assert [n for n in names if not pattern.match(n)] == []
    assert STEMCELL["__stemcell_re_package"] == OS_IMAGE["__os_image_re_package"]
    for bad in ["-oAPT::Get::AllowUnauthenticated=true", "vim curl", "vim\n", "Vim", "a"]:
        assert not pattern.match(bad), bad
    assert pattern.match("linux-image-amd64:amd64") and pattern.match("curl=7.88.1-10+deb12u5")


def test_upstreams_kernel_command_line_passes_and_grub_syntax_is_refused():
    pattern = re.compile(STEMCELL["__stemcell_re_cmdline"])
    assert pattern.match(STEMCELL_DEFAULTS["stemcell_kernel_cmdline"])
    for bad in ['init="/bin/sh"', "a; b", "a\nb", "$root", "a\\b", "{a}", "a|b", "a&b", "a>b", "'x'"]:
        assert not pattern.match(bad), bad


@pytest.mark.parametrize("role,key", [(OS_IMAGE, "__os_image_re_url"), (STEMCELL, "__stemcell_re_url")])
def test_urls(role, key):
    pattern = re.compile(role[key])
    for good in ["http://127.0.0.1/debian", "https://mirror.example.internal/debian/", "file:///srv/mirror/debian"]:
        assert pattern.match(good), good
    for bad in ["ftp://127.0.0.1/debian", "http://127.0.0.1/debian\nTrusted: yes", "http://a b", 'http://a"b',
                "http://a'b", "http://a\\b", "/srv/mirror", "http://"]:
        assert not pattern.match(bad), bad


def test_control_characters():
    pattern = re.compile(OS_IMAGE["__os_image_re_control"])
    assert STEMCELL["__stemcell_re_control"] == OS_IMAGE["__os_image_re_control"]
    for bad in ["a\nb", "a\rb", "a\tb", "a\x00b", "a\x1bb", "a\x7fb"]:
        assert pattern.search(bad), repr(bad)
    assert not pattern.search("/var/tmp/osimage work")


def test_grub_superuser():
    pattern = re.compile(STEMCELL["__stemcell_re_grub_user"])
    assert pattern.match("vcap") and pattern.match("")
    for bad in ['vcap"', "a b", "a;b", "a\nb"]:
        assert not pattern.match(bad), bad

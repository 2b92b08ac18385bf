"""The build-host table's wording and lists (pure logic)."""
import pytest

from ansible_collections.osimage.builder.plugins.module_utils._build_host import (
    PROGRAMS,
    TEST_PACKAGES,
    missing_message,
    package_of,
    packages,
)


@pytest.mark.parametrize("program,package", [("grub-install", "grub2-common"), ("mcopy", "mtools")])
def test_the_wording_of_a_missing_program(program, package):
    assert missing_message(program) == "%s not found on the build host (Debian package: %s)" % (program, package)
    assert missing_message("/usr/sbin/" + program).endswith("(Debian package: %s)" % package)
    assert missing_message("no-such-tool") == "no-such-tool not found on the build host"


def test_package_lists():
    base, tests = packages(), packages(tests=True)
    assert base == sorted(set(base)) and set(base) < set(tests)
    assert set(TEST_PACKAGES) <= set(tests) and not set(TEST_PACKAGES) & set(base)
    assert package_of("grub-install") == "grub2-common" and package_of("nonesuch") is None
    assert all(PROGRAMS[p] in base for p in PROGRAMS)

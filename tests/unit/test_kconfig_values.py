"""kernel_build's config_options reach a .config fragment: a value that is
not a Kconfig value (a newline, a stray quote) is refused before it can
write lines of its own."""
import pytest

from ansible_collections.osimage.builder.plugins.module_utils._kconfig import fragment_from_options, invalid_options


def test_kconfig_values_that_a_config_line_holds_pass():
    good = {"CONFIG_A": "y", "B": True, "C": False, "D": "m", "E": 12, "F": "0x1f", "G": '"quoted value"',
            "H": '"with \\" escaped"', "I": -1}
    assert invalid_options(good) == []
    assert fragment_from_options({"B": True, "C": False}) == "CONFIG_B=y\n# CONFIG_C is not set\n"


@pytest.mark.parametrize("name,value", [
    ("CONFIG_CMDLINE", '"a"\nCONFIG_MODULES=y'), ("CONFIG_X", "y\nCONFIG_MODULES=y"), ("CONFIG_X", '"a"b"'),
    ("CONFIG_X", "yes"), ("CONFIG X", "y"), ("CONFIG_X\n", "y"), ("CONFIG_X", ""),
])
def test_injection_into_the_fragment_is_refused(name, value):
    assert invalid_options({name: value}) == ["%s=%r" % (name, value)]

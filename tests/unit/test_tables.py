"""The tables live once, in Python (plugins/module_utils), and the roles read
them through the filters of plugins/filter/tables.py; the closed sets the
roles' argument_specs name as choices are the tables' own."""
import os

import yaml

from ansible_collections.osimage.builder.plugins.filter import tables
from ansible_collections.osimage.builder.plugins.module_utils import _debian, _stemcell
from tests.conftest import REPO


def spec_options(role):
    with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml")) as f:
        return yaml.safe_load(f)["argument_specs"]["main"]["options"]


def test_os_image_suite_choices_are_the_python_table():
    assert spec_options("os_image")["os_image_suite"]["choices"] == list(_debian.OS_IMAGE_SUITES)


def test_stemcell_infrastructure_choices_are_the_python_table():
    assert spec_options("stemcell")["stemcell_infrastructure"]["choices"] == list(_stemcell.INFRASTRUCTURES)


def test_suite_distribution():
    assert tables.suite_distribution("bookworm") == "debian"
    assert tables.suite_distribution("bookworm-backports") == "debian"
    assert tables.suite_distribution("jammy") == "ubuntu"
    assert tables.suite_distribution("hamm") == "unknown"
    # os_image builds fewer suites than the modules know
    assert tables.suite_distribution("sid") == "debian"
    assert tables.suite_distribution("sid", supported="os_image") == "unknown"
    assert tables.os_image_suites() == {"debian": ["bullseye", "bookworm", "trixie"], "ubuntu": ["jammy", "noble"]}


def test_stemcell_table_and_names():
    table = tables.stemcell_infrastructures()
    assert set(table) == set(_stemcell.INFRASTRUCTURES)
    assert table["aws"]["hypervisors"] == ["xen", "xen-hvm"] and table["aws"]["hypervisor"] == "xen-hvm"
    assert table["openstack"]["formats"][0] == "qcow2"
    assert tables.stemcell_hypervisor("aws", "xen") == "xen-hvm"
    assert tables.stemcell_hypervisor("openstack", "kvm") == "kvm"
    assert tables.stemcell_filename("0000", "openstack", "kvm", "debian-bookworm", "raw") == \
        "bosh-stemcell-0000-openstack-kvm-debian-bookworm-go_agent-raw.tgz"
    assert tables.stemcell_filename("1.5", "aws", "xen", "debian-bookworm", "raw") == \
        "bosh-stemcell-1.5-aws-xen-hvm-debian-bookworm-go_agent.tgz"

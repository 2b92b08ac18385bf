"""Every path a role writes from the build host with the stock modules is
in the list the role hands osimage.builder.root_guard, and every path it
writes with file state=link is among those whose link is replaced, not
followed: a task added without its path would write through an image's
symlinks unchecked."""
import pytest
import yaml

from tests.host_writes import REPO, covered, host_writes


@pytest.mark.parametrize("role", ["os_image", "stemcell"])
def test_the_guard_list_covers_every_host_side_write(role):
    with open("%s/roles/%s/vars/main.yml" % (REPO, role)) as f:
        variables = yaml.safe_load(f)
    listed = variables["__%s_host_writes" % role]
    links = variables["__%s_host_links" % role]
    written, replaced = host_writes(role)
    assert len(written) > 10
    assert [p for p in written if not covered(p, listed)] == []
    assert sorted(set(replaced) - set(links)) == []
    # Only link-writing tasks may have their last component replaced: a
    # lineinfile target listed there would be written through its symlink.
    assert sorted(set(links) - set(replaced)) == []


def test_covered():
    assert covered("/etc/ssh/sshd_config", ["/etc/ssh/sshd_config"])
    assert covered("/etc/rsyslog.d/50-default.conf", ["/etc/rsyslog.d/*"])
    assert covered("/etc/rsyslog.d/*", ["/etc/rsyslog.d/*"])
    assert not covered("/etc/rsyslog.d/x/y", ["/etc/rsyslog.d/*"])
    assert not covered("/etc/ssh/ssh_config", ["/etc/ssh/sshd_config"])

from ansible_collections.osimage.builder.plugins.module_utils import _debian as deb

DEB822 = """Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://vendor.example/apt
Suites: nodistro
Components: main
"""


def test_distribution_of():
    assert deb.distribution_of("bookworm") == "debian"
    assert deb.distribution_of("bookworm-backports") == "debian"
    assert deb.distribution_of("jammy") == "ubuntu"
    assert deb.distribution_of("bogus") is None


def test_host_mirror_from_deb822_skips_security_and_third_party():
    entries = deb.parse_deb822_sources(DEB822)
    assert len(entries) == 3
    assert deb.host_mirror(entries, "debian") == "http://mirror.example/debian"
    assert deb.host_mirror(entries, "ubuntu") is None


def test_host_mirror_from_one_line_sources():
    text = ("# comment\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian-security bookworm-security main\n"
            "deb-src http://m.example/debian bookworm main\n"
            "deb http://m.example/debian/ bookworm main contrib\n")
    entries = deb.parse_one_line_sources(text)
    assert entries[0]["signed_by"] == "/k.gpg"
    assert deb.host_mirror(entries, "debian") == "http://m.example/debian"


def test_disabled_deb822_entry_is_ignored():
    text = "Enabled: no\nTypes: deb\nURIs: http://x.example/debian\nSuites: bookworm\nComponents: main\n"
    assert deb.parse_deb822_sources(text) == []


def test_parse_dpkg_status_keeps_installed_only():
    text = """Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1
Description: compression
 library

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: apt
Status: install ok installed
Architecture: amd64
Version: 2.6.1
"""
    assert deb.parse_dpkg_status(text) == [
        {"name": "apt", "version": "2.6.1", "architecture": "amd64"},
        {"name": "zlib1g", "version": "1:1.2.13.dfsg-1", "architecture": "amd64"},
    ]


def test_invalid_package_names():
    assert deb.invalid_packages(["openssh-server", "libc6:amd64", "g++", "vim=2:9.0"]) == []
    assert deb.invalid_packages(["Bad_Name", "x", "rm -rf /", ""]) == ["Bad_Name", "x", "rm -rf /", ""]

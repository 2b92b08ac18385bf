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


GUTSY = (
    "case $ARCH in\n\tamd64|i386)\n\tcase $SUITE in\n\t  gutsy|hardy)\n"
    "\tdefault_mirror http://old-releases.example/ubuntu\n\t  ;;\n\t  *)\n"
    "\tdefault_mirror http://current.example/ubuntu\n\t;;\n\tesac\n\t;;\n\t*)\n"
    "\tdefault_mirror http://ports.example/ubuntu-ports\n\t;;\nesac\n")


def test_debootstrap_default_mirror():
    assert deb.debootstrap_default_mirror(GUTSY, "amd64") == "http://current.example/ubuntu"
    assert deb.debootstrap_default_mirror(GUTSY, "arm64") == "http://ports.example/ubuntu-ports"
    assert deb.debootstrap_default_mirror("", "amd64") is None


def test_release_sha256_and_package_stanza():
    release = ("Origin: Ubuntu\nMD5Sum:\n 0123 10 main/binary-amd64/Packages.gz\n"
               "SHA256:\n abcd 10 main/binary-amd64/Packages\n ef01 12 main/binary-amd64/Packages.gz\n"
               "Acquire-By-Hash: yes\n")
    assert deb.release_sha256(release, "main/binary-amd64/Packages.gz") == "ef01"
    assert deb.release_sha256(release, "universe/binary-amd64/Packages.gz") is None
    packages = "Package: a\nFilename: pool/a.deb\n\nPackage: ubuntu-keyring\nFilename: pool/u.deb\nSHA256: 99\n"
    assert deb.package_stanza(packages, "ubuntu-keyring") == {
        "Package": "ubuntu-keyring", "Filename": "pool/u.deb", "SHA256": "99"}
    assert deb.package_stanza(packages, "missing") is None


def test_validsig_fingerprints():
    status = ("[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 871920D1991BC93C Ubuntu\n"
              "[GNUPG:] VALIDSIG F6ECB3762474EDA9D21B7022871920D1991BC93C 2022-04-21 1650 0 4 0 1 8 00 "
              "f6ecb3762474eda9d21b7022871920d1991bc93c\n")
    assert deb.validsig_fingerprints(status) == ["F6ECB3762474EDA9D21B7022871920D1991BC93C"]
    assert deb.validsig_fingerprints("[GNUPG:] BADSIG x\n") == []

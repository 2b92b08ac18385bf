import datetime

from ansible_collections.osimage.builder.plugins.module_utils import _archive_trust as trust

SIGNED = """-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Ubuntu
Suite: jammy
- -----a dash-escaped line
-----BEGIN PGP SIGNATURE-----

iHUEARYKAB0WIQ
=abcd
-----END PGP SIGNATURE-----
"""
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


def test_a_clearsigned_file_and_blank_lines_around_it_pass():
    assert trust.clearsigned_problem(SIGNED) is None
    assert trust.clearsigned_problem("\n\n" + SIGNED + "\n\n") is None
    assert trust.clearsigned_problem(SIGNED.replace("\n", "\r\n")) is None


def test_unsigned_text_before_or_after_is_refused():
    prefix = "SHA256:\n 0000 12 main/binary-amd64/Packages.gz\n\n"
    assert trust.clearsigned_problem(prefix + SIGNED).startswith(
        "it has unsigned text before '-----BEGIN PGP SIGNED MESSAGE-----' (line 1")
    assert trust.clearsigned_problem(SIGNED + "\n" + prefix).startswith(
        "it has unsigned text after '-----END PGP SIGNATURE-----' (line 13: 'SHA256:')")
    # A second signed message after the first is unsigned text too, as far as the first is concerned.
    assert "unsigned text after" in trust.clearsigned_problem(SIGNED + SIGNED)


def test_malformed_armour_is_refused():
    assert trust.clearsigned_problem("") == "it is empty"
    assert "not 'Hash:'" in trust.clearsigned_problem(SIGNED.replace("Hash: SHA512", "Comment: x"))
    assert "not dash-escaped" in trust.clearsigned_problem(SIGNED.replace("- -----a dash", "-----a dash"))
    assert trust.clearsigned_problem(SIGNED.split("-----BEGIN PGP SIGNATURE-----", maxsplit=1)[0]) == \
        "it has no '-----BEGIN PGP SIGNATURE-----' line"
    assert trust.clearsigned_problem(SIGNED.replace("-----END PGP SIGNATURE-----", "")) == \
        "it has no '-----END PGP SIGNATURE-----' line"


def release(**fields):
    return "".join("%s: %s\n" % (k.replace("_", "-"), v) for k, v in fields.items()) + "SHA256:\n 00 1 x\n"


def test_release_suite_or_codename_must_be_the_one_asked_for():
    assert trust.release_problem(release(Suite="jammy", Codename="jammy"), "jammy", NOW) is None
    assert trust.release_problem(release(Suite="stable", Codename="bookworm"), "bookworm", NOW) is None
    assert trust.release_problem(release(Suite="stable", Codename="bookworm"), "stable", NOW) is None
    assert trust.release_problem(release(Suite="noble", Codename="noble"), "jammy", NOW) == \
        "its Release is for Suite noble / Codename noble, not for suite=jammy"
    assert trust.release_problem(release(Origin="x"), "jammy", NOW) == \
        "its Release has neither a Suite nor a Codename field"


def test_release_valid_until():
    ok = release(Suite="jammy", Valid_Until="Tue, 08 Dec 2026 12:00:00 UTC")
    assert trust.release_problem(ok, "jammy", NOW) is None
    expired = release(Suite="jammy", Valid_Until="Sun, 29 Nov 2026 12:00:00 UTC")
    assert trust.release_problem(expired, "jammy", NOW).startswith(
        "its Release expired: Valid-Until Sun, 29 Nov 2026 12:00:00 UTC is before now (Tue, 01 Dec 2026")
    assert "expired" in trust.release_problem(release(Suite="jammy", Valid_Until="Sun, 29 Nov 2026 12:00:00 -0000"),
                                              "jammy", NOW)
    assert "not a date" in trust.release_problem(release(Suite="jammy", Valid_Until="soon"), "jammy", NOW)
    assert trust.release_date("Thu, 21 Apr 2022 17:16:08 UTC") == \
        datetime.datetime(2022, 4, 21, 17, 16, 8, tzinfo=datetime.timezone.utc)


COLONS = """pub:-:4096:1:3B4FE6ACC0B21F32:1336489909:::-:::scSC::::::23::0:
fpr:::::::::790BC7277767219C42C86F933B4FE6ACC0B21F32:
uid:-::::1336489909::B0B79A6D8F1F0E1B::Ubuntu Archive Automatic Signing Key (2012) <ftpmaster@ubuntu.com>::::::::::0:
pub:-:4096:1:871920D1991BC93C:1537196506:::-:::scSC::::::23::0:
fpr:::::::::F6ECB3762474EDA9D21B7022871920D1991BC93C:
sub:-:4096:1:0123456789ABCDEF:1537196506::::::s::::::23:
fpr:::::::::00000000000000000000000000000000DEADBEEF:
"""


def test_primary_fingerprints_skip_subkeys():
    assert trust.primary_fingerprints(COLONS) == ["790BC7277767219C42C86F933B4FE6ACC0B21F32",
                                                  "F6ECB3762474EDA9D21B7022871920D1991BC93C"]
    assert trust.primary_fingerprints("") == []


def test_keyring_difference():
    a, b, c = "A" * 40, "B" * 40, "C" * 40
    assert trust.keyring_difference([a, b], [b, a]) is None
    assert trust.keyring_difference([a, b, c], [a, b]) == "holds keys that are not pinned: %s" % c
    assert trust.keyring_difference([a], [a, b]) == "lacks the pinned keys %s" % b
    assert trust.keyring_difference([a, a], [a]) == "holds keys more than once: %s" % a
    assert trust.keyring_difference([c], [a]) == "holds keys that are not pinned: %s; lacks the pinned keys %s" % (c, a)

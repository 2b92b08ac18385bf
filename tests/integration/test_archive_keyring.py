"""archive_keyring: the pinned keys are the only trust anchor; anything else
is an error that writes nothing.

Most tests run against a tiny archive on loopback signed with throw-away keys
(a "genuine" archive key and an "attacker" key), so the two attacks on the
chain can be played without a network: unsigned text around InRelease's
signed part (attack A) and a keyring package that carries an extra key
(attack B). The last tests use Ubuntu's real archive and skip when it does not
answer."""
import datetime
import os
import shutil

import pytest

from tests import local_archive
from tests.conftest import _ubuntu_archive_answers, needs_root, run_module

pytestmark = [needs_root]

UBUNTU_KEYS = ["790B C727 7767 219C 42C8 6F93 3B4F E6AC C0B2 1F32",
               "F6EC B376 2474 EDA9 D21B 7022 8719 20D1 991B C93C"]
INDEX = "dists/jammy/main/binary-amd64/Packages.gz"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    k = local_archive.Keys(tmp_path_factory.mktemp("gnupg"))
    k.genuine = k.generate("Genuine Archive Signing Key <archive@example.invalid>")
    k.attacker = k.generate("Attacker <attacker@example.invalid>")
    k.extra = k.generate("Extra Key In The Package <extra@example.invalid>")
    yield k
    k.close()


@pytest.fixture(scope="module")
def server_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("archives")
    with local_archive.serve(root) as url:
        yield root, url


@pytest.fixture
def archive(request, server_root):
    """An empty archive directory of this test's own, and its mirror URL."""
    root, url = server_root
    d = root / request.node.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    return d, "%s/%s" % (url, request.node.name)


def args_for(mirror, keys, dest):
    return {"suite": "jammy", "mirror": mirror, "fingerprints": [keys.genuine], "dest": str(dest)}


def test_loopback_archive_run_twice_and_check_mode(archive, keys, tmp_path):
    root, mirror = archive
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine))
    dest = tmp_path / "k" / "archive.gpg"
    args = args_for(mirror, keys, dest)
    check = run_module("archive_keyring", args, check=True)
    assert check["changed"] is True and check["signed_by"] == keys.genuine, check
    assert check["reason"] == "dest does not exist" and check["fingerprints"] == [keys.genuine]
    assert not (tmp_path / "k").exists()
    first = run_module("archive_keyring", args)
    assert first["changed"] is True and first["signed_by"] == keys.genuine, first
    assert first["fingerprints"] == [keys.genuine] and first["artifact"]["size"] == os.path.getsize(dest)
    assert oct(os.stat(dest).st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path / "k") == ["archive.gpg"]
    second = run_module("archive_keyring", args)
    assert second["changed"] is False and second["artifact"] == first["artifact"], second


def test_attack_a_unsigned_sha256_block_before_the_signed_part_is_refused(archive, keys, tmp_path):
    root, mirror = archive
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine))
    # The forged index and package, served beside the genuine ones.
    forged_deb = local_archive.keyring_deb(tmp_path / "forge", keys.export(keys.genuine, keys.attacker))
    filename = "pool/main/u/ubuntu-keyring/ubuntu-keyring_1.0+evil_all.deb"
    local_archive.write(root, filename, forged_deb)
    forged_index = local_archive.packages_index("ubuntu-keyring", filename, forged_deb)
    genuine_inrelease = (root / "dists/jammy/InRelease").read_bytes()
    (root / INDEX).write_bytes(forged_index)
    prefix = local_archive.release_text("jammy", {"main/binary-amd64/Packages.gz": forged_index})
    (root / "dists/jammy/InRelease").write_bytes(prefix.encode() + b"\n" + genuine_inrelease)
    dest = tmp_path / "k" / "archive.gpg"
    res = run_module("archive_keyring", args_for(mirror, keys, dest))
    assert res.get("failed") is True, res
    assert "InRelease is refused: it has unsigned text before '-----BEGIN PGP SIGNED MESSAGE-----'" in res["msg"]
    assert not (tmp_path / "k").exists()
    # Text after the signature is refused the same way.
    (root / "dists/jammy/InRelease").write_bytes(genuine_inrelease + b"\n" + prefix.encode())
    res = run_module("archive_keyring", args_for(mirror, keys, dest))
    assert res.get("failed") is True and "unsigned text after '-----END PGP SIGNATURE-----'" in res["msg"], res
    assert not (tmp_path / "k").exists()


def test_attack_b_extra_key_in_the_package_is_left_out_and_a_poisoned_dest_is_rebuilt(archive, keys, tmp_path):
    root, mirror = archive
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine, keys.extra))
    dest = tmp_path / "k" / "archive.gpg"
    args = args_for(mirror, keys, dest)
    first = run_module("archive_keyring", args)
    assert first["changed"] is True and first["fingerprints"] == [keys.genuine], first
    assert local_archive.show_keys(dest) == [keys.genuine]

    # A dest poisoned with the attacker's key does not stay poisoned.
    dest.write_bytes(keys.export(keys.genuine, keys.attacker))
    poisoned = dest.read_bytes()
    check = run_module("archive_keyring", args, check=True)
    assert check["changed"] is True and keys.attacker in check["reason"], check
    assert dest.read_bytes() == poisoned
    second = run_module("archive_keyring", args)
    assert second["changed"] is True and second["reason"].startswith("dest holds keys that are not pinned"), second
    assert local_archive.show_keys(dest) == [keys.genuine]
    assert run_module("archive_keyring", args)["changed"] is False

    # So does one that lacks a pinned key, or is not a keyring at all.
    dest.write_bytes(keys.export(keys.extra))
    res = run_module("archive_keyring", args)
    assert res["changed"] is True and "lacks the pinned keys" in res["reason"], res
    dest.write_bytes(b"not a keyring")
    res = run_module("archive_keyring", args)
    assert res["changed"] is True and res["reason"] == "dest is not a keyring gpg can read", res
    # The pinned key twice, and the pinned key plus a packet that is none of its own (an OpenPGP
    # marker packet, RFC 4880 section 5.8): the same primary keys is not enough.
    dest.write_bytes(keys.export(keys.genuine) * 2)
    res = run_module("archive_keyring", args)
    assert res["changed"] is True and res["reason"].startswith("dest holds keys more than once"), res
    dest.write_bytes(keys.export(keys.genuine) + b"\xa8\x03PGP")
    res = run_module("archive_keyring", args)
    assert res["changed"] is True and res["reason"] == "dest holds more than the pinned keys' own packets", res
    assert local_archive.show_keys(dest) == [keys.genuine]
    assert os.listdir(tmp_path / "k") == ["archive.gpg"]


def test_inrelease_signed_by_a_key_that_is_not_pinned_is_refused(archive, keys, tmp_path):
    root, mirror = archive
    # The attacker's package holds the pinned key too, but the attacker signed.
    local_archive.publish(root, keys, keys.attacker, keys.export(keys.genuine, keys.attacker))
    res = run_module("archive_keyring", args_for(mirror, keys, tmp_path / "k" / "archive.gpg"))
    assert res.get("failed") is True and "carries no good signature by a pinned key" in res["msg"], res
    assert not (tmp_path / "k").exists()


def test_release_of_another_suite_is_refused(archive, keys, tmp_path):
    root, mirror = archive
    # A genuinely signed Release of another suite, replayed at dists/jammy.
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine), release_suite="noble")
    res = run_module("archive_keyring", args_for(mirror, keys, tmp_path / "k" / "archive.gpg"))
    assert res.get("failed") is True, res
    assert "is for Suite noble / Codename noble, not for suite=jammy" in res["msg"]
    assert not (tmp_path / "k").exists()


def test_release_whose_codename_is_the_suite_is_accepted(archive, keys, tmp_path):
    root, mirror = archive
    # Debian's way: Suite stable, Codename bookworm; either may be asked for.
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine), release_suite="stable",
                          codename="jammy")
    res = run_module("archive_keyring", args_for(mirror, keys, tmp_path / "k" / "archive.gpg"))
    assert res["changed"] is True, res


def test_expired_release_is_refused(archive, keys, tmp_path):
    root, mirror = archive
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine), valid_until=past)
    res = run_module("archive_keyring", args_for(mirror, keys, tmp_path / "k" / "archive.gpg"))
    assert res.get("failed") is True and "its Release expired: Valid-Until" in res["msg"], res
    assert not (tmp_path / "k").exists()
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine), valid_until=future)
    assert run_module("archive_keyring", args_for(mirror, keys, tmp_path / "k" / "archive.gpg"))["changed"] is True


def test_index_that_does_not_match_the_signed_release_is_refused(archive, keys, tmp_path):
    root, mirror = archive
    local_archive.publish(root, keys, keys.genuine, keys.export(keys.genuine))
    # A swapped index without touching InRelease: its sha256 is not the signed one.
    deb = local_archive.keyring_deb(tmp_path / "forge", keys.export(keys.genuine, keys.attacker))
    filename = "pool/main/u/ubuntu-keyring/evil.deb"
    local_archive.write(root, filename, deb)
    (root / INDEX).write_bytes(local_archive.packages_index("ubuntu-keyring", filename, deb))
    res = run_module("archive_keyring", args_for(mirror, keys, tmp_path / "k" / "archive.gpg"))
    assert res.get("failed") is True and "does not have the sha256 InRelease lists" in res["msg"], res
    assert not (tmp_path / "k").exists()


def test_bad_fingerprint_value(tmp_path):
    res = run_module("archive_keyring", {"suite": "jammy", "fingerprints": ["nothex"], "dest": str(tmp_path / "k")})
    assert res.get("failed") is True and "not OpenPGP v4 fingerprints" in res["msg"]


@pytest.fixture
def ubuntu_archive():
    reason = _ubuntu_archive_answers()
    if reason:
        pytest.skip(reason)


@pytest.mark.network
def test_ubuntu_keyring_is_verified_then_kept(ubuntu_archive, tmp_path):
    dest = str(tmp_path / "k" / "ubuntu-archive-keyring.gpg")
    args = {"suite": "jammy", "fingerprints": UBUNTU_KEYS, "dest": dest}
    check = run_module("archive_keyring", args, check=True)
    assert check["changed"] is True and not os.path.exists(dest)
    first = run_module("archive_keyring", args)
    assert first["changed"] is True, first
    assert first["signed_by"] in [k.replace(" ", "") for k in UBUNTU_KEYS]
    assert first["artifact"]["size"] == os.path.getsize(dest)
    assert sorted(local_archive.show_keys(dest)) == sorted(k.replace(" ", "") for k in UBUNTU_KEYS)
    assert run_module("archive_keyring", args)["changed"] is False


@pytest.mark.network
def test_ubuntu_a_key_the_package_does_not_hold_is_refused(ubuntu_archive, tmp_path):
    out = tmp_path / "k"
    res = run_module("archive_keyring", {"suite": "jammy", "fingerprints": ["0" * 40], "dest": str(out / "k.gpg")})
    assert res.get("failed") is True and "lacks the pinned keys" in res["msg"]
    assert not out.exists() or os.listdir(out) == []

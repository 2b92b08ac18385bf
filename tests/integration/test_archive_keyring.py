"""archive_keyring against Ubuntu's real archive: the pinned keys are the
only trust anchor; anything else is an error that writes nothing."""
import os

import pytest

from tests.conftest import needs_root, run_module
from tests.integration.test_os_image_role import _ubuntu_archive_answers

pytestmark = [needs_root, pytest.mark.network]

UBUNTU_KEYS = ["790B C727 7767 219C 42C8 6F93 3B4F E6AC C0B2 1F32",
               "F6EC B376 2474 EDA9 D21B 7022 8719 20D1 991B C93C"]


@pytest.fixture(autouse=True)
def ubuntu_archive():
    reason = _ubuntu_archive_answers()
    if reason:
        pytest.skip(reason)


def test_keyring_is_verified_then_kept(tmp_path):
    dest = str(tmp_path / "k" / "ubuntu-archive-keyring.gpg")
    args = {"suite": "jammy", "fingerprints": UBUNTU_KEYS, "dest": dest}
    check = run_module("archive_keyring", args, check=True)
    assert check["changed"] is True and not os.path.exists(dest)
    first = run_module("archive_keyring", args)
    assert first["changed"] is True, first
    assert first["signed_by"] in [k.replace(" ", "") for k in UBUNTU_KEYS]
    assert first["artifact"]["size"] == os.path.getsize(dest)
    assert run_module("archive_keyring", args)["changed"] is False


def test_a_key_the_package_does_not_hold_is_refused(tmp_path):
    out = tmp_path / "k"
    res = run_module("archive_keyring", {"suite": "jammy", "fingerprints": ["0" * 40], "dest": str(out / "k.gpg")})
    assert res.get("failed") is True and "lacks the pinned keys" in res["msg"]
    assert not out.exists() or os.listdir(out) == []


def test_bad_fingerprint_value(tmp_path):
    res = run_module("archive_keyring", {"suite": "jammy", "fingerprints": ["nothex"], "dest": str(tmp_path / "k")})
    assert res.get("failed") is True and "not OpenPGP v4 fingerprints" in res["msg"]

"""osimage.builder.build_report for real: written beside the artifact, the
same report twice is no change (only the times differ), check mode writes
nothing, a secret input is refused, and state=read hands back what is there."""
import hashlib
import json
import os

from tests.conftest import run_module

STAGES = [{"stage": "config", "status": "built", "seconds": 0.5},
          {"stage": "aci", "status": "built", "seconds": 2.25}]


def args(aci, **over):
    a = {"path": str(aci), "pipeline": "rkt_stage1", "title": "Stage1-kvm", "stages": STAGES,
         "inputs": {"kernel_version": "6.1"}, "details": {"image_id": "sha512-00"},
         "versions": {"ansible-core": "2.19.0"}, "started": "2026-12-01T08:00:00Z"}
    a.update(over)
    return a


def test_written_once_then_unchanged(tmp_path):
    aci = tmp_path / "stage1.aci"
    aci.write_bytes(b"not really an aci")
    res = run_module("build_report", args(aci), check=True)
    assert res["changed"] is True and not os.path.exists(str(aci) + ".report.json")
    res = run_module("build_report", args(aci))
    assert res["changed"] is True, res.get("msg")
    report = json.loads((tmp_path / "stage1.aci.report.json").read_text())
    assert report["artifacts"] == [{"path": str(aci), "size": aci.stat().st_size,
                                    "sha256": hashlib.sha256(aci.read_bytes()).hexdigest()}]
    assert report["build_host"]["kernel"] == os.uname().release
    assert oct(os.stat(str(aci) + ".report.json").st_mode & 0o777) == "0o644"
    assert "| aci | built | 2.2 |" in (tmp_path / "stage1.aci.report.md").read_text()
    before = (tmp_path / "stage1.aci.report.json").read_text()
    # Other times and seconds: the same report.
    again = args(aci, started="2026-12-02T08:00:00Z", stages=[dict(s, seconds=9) for s in STAGES])
    res = run_module("build_report", again)
    assert res["changed"] is False and (tmp_path / "stage1.aci.report.json").read_text() == before
    assert run_module("build_report", again, check=True)["changed"] is False
    # Another artifact: a new report.
    aci.write_bytes(b"another aci")
    assert run_module("build_report", again)["changed"] is True
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []
    res = run_module("build_report", {"path": str(aci), "state": "read"})
    assert res["changed"] is False and res["report"]["started"] == "2026-12-02T08:00:00Z"


def test_secrets_and_bad_stages_are_refused(tmp_path):
    aci = tmp_path / "x.aci"
    aci.write_bytes(b"x")
    res = run_module("build_report", args(aci, inputs={"users_password_hmac": "ab"}))
    assert res.get("failed") and "users_password_hmac" in res["msg"] and "stamp only" in res["msg"]
    res = run_module("build_report", args(aci, stages=[{"stage": "x", "status": "skipped", "seconds": 1}]))
    assert res.get("failed") and "status='skipped'" in res["msg"]
    assert not os.path.exists(str(aci) + ".report.json")


def test_nothing_to_report_or_read(tmp_path):
    aci = tmp_path / "missing.aci"
    res = run_module("build_report", args(aci))
    assert res.get("failed") and "do not exist" in res["msg"]
    res = run_module("build_report", {"path": str(aci), "state": "read"})
    assert res.get("failed") and "no build report" in res["msg"]

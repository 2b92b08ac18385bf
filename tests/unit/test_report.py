"""The build report's pure parts: the record, what is volatile, the secret
check, the stage list check and the Markdown rendering."""
import json

from ansible_collections.osimage.builder.plugins.module_utils._report import (
    build_record,
    os_release_name,
    render_markdown,
    report_paths,
    secret_names,
    stable_part,
    stage_problems,
    to_json,
)

HOST = {"hostname": "builder1", "kernel": "6.1.0-18-amd64", "distribution": "Debian GNU/Linux 12 (bookworm)"}
STAGES = [{"stage": "config", "status": "resumed", "seconds": 0},
          {"stage": "kernel", "status": "built", "seconds": 212.04},
          {"stage": "aci", "status": "built", "seconds": 5.66}]
ARTS = [{"path": "/o/stage1.aci", "size": 3 * 1024 * 1024, "sha256": "ab" * 32}]


def record(**over):
    args = dict(pipeline="rkt_stage1", title="Stage1-kvm", stages=STAGES, artifacts=ARTS,
                inputs={"kernel_version": "6.1"}, build_host=HOST, versions={"ansible-core": "2.19.4"},
                started="2026-12-01T08:00:00Z", finished="2026-12-01T08:04:00Z",
                details={"image_id": "sha512-00"}, notes=[])
    args.update(over)
    return build_record(**args)


def test_report_paths():
    assert report_paths("/o/x.aci") == ("/o/x.aci.report.json", "/o/x.aci.report.md")


def test_the_record():
    rec = record()
    assert rec["schema"] == 1 and rec["pipeline"] == "rkt_stage1"
    assert [s["seconds"] for s in rec["stages"]] == [0.0, 212.0, 5.7]
    assert rec["artifacts"] == ARTS and rec["build_host"] == HOST
    assert json.loads(to_json(rec)) == rec
    assert record(title=None)["title"] == "rkt_stage1"


def test_times_are_volatile_the_rest_is_not():
    a = record()
    later = record(started="2027-01-01T00:00:00Z", finished="2027-01-01T00:05:00Z",
                   stages=[dict(s, seconds=s["seconds"] + 9) for s in STAGES])
    assert stable_part(a) == stable_part(later)
    assert stable_part(a) != stable_part(record(artifacts=[dict(ARTS[0], sha256="cd" * 32)]))
    assert stable_part(a) != stable_part(record(stages=[dict(s, status="built") for s in STAGES]))
    assert stable_part(a) != stable_part(record(inputs={"kernel_version": "6.6"}))
    assert stable_part(None) is None


def test_secret_names():
    assert secret_names({"kernel_version": "6.1", "keyring": "/k"}) == []
    assert secret_names({"users_password_hmac": "x", "nested": {"api_token": 1},
                         "list": [{"grub_password": "p"}]}) == [
        "list.0.grub_password", "nested.api_token", "users_password_hmac"]


def test_stage_problems():
    assert stage_problems(STAGES) == []
    assert stage_problems([{"stage": "x", "status": "skipped", "seconds": 1}]) == [
        "stages[0] (x): status='skipped' is not one of built, resumed, up-to-date"]
    assert stage_problems([{"status": "built"}]) == ["stages[0] has no stage name"]
    assert stage_problems([{"stage": "x", "status": "built", "seconds": -1}]) == [
        "stages[0] (x): seconds=-1 is not a non-negative number"]
    assert stage_problems([{"stage": "x", "status": "built", "seconds": "soon"}])


def test_markdown():
    md = render_markdown(record(notes=["no agent | none"]))
    assert md.startswith("# Stage1-kvm build report\n")
    assert "| config | resumed |  |" in md
    assert "| kernel | built | 212.0 |" in md
    assert "| total | | 217.7 |" in md
    assert "| `/o/stage1.aci` | 3.0 MiB | `%s` |" % ("ab" * 32) in md
    assert "- image_id: `sha512-00`" in md
    assert "- no agent \\| none" in md
    assert '"kernel_version": "6.1"' in md
    assert "- distribution: Debian GNU/Linux 12 (bookworm)" in md
    assert "- ansible-core: 2.19.4" in md


def test_os_release_name():
    assert os_release_name('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian"\n') == \
        "Debian GNU/Linux 12 (bookworm)"
    assert os_release_name("NAME=Alpine\nVERSION_ID=3.19\n") == "Alpine 3.19"
    assert os_release_name("") == "unknown"

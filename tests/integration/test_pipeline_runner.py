"""The pipeline runner (roles/pipeline) on its own, with a toy three-stage
pipeline (tests/integration/files/toy_pipeline.yml): the stamp, the no-op
run, a changed input, resume, hooks, the rescue message and the checks
before the first stage. No root and no image: seconds per run."""
import json
import os

from ansible_collections.osimage.builder.plugins.module_utils._digest import record_digest, sha256_file
from tests.conftest import REPO, failed_msgs, run_playbook

PLAYBOOK = os.path.join(REPO, "tests", "integration", "files", "toy_pipeline.yml")
STAGES = ["one", "two", "three"]


def play(tmp_path, **extra):
    return run_playbook(PLAYBOOK, dict({"toy_dir": str(tmp_path)}, **extra))


def result_of(results):
    return [r["ansible_facts"]["pipeline_result"] for r in results
            if "pipeline_result" in r.get("ansible_facts", {})][-1]


def report(tmp_path):
    return json.loads((tmp_path / "output" / "toy.txt.report.json").read_text())


def statuses(stages):
    return [(s["stage"], s["status"]) for s in stages]


def test_build_no_op_and_a_changed_input(tmp_path):
    rc, stats, results = play(tmp_path)
    assert rc == 0, failed_msgs(results)
    assert (tmp_path / "output" / "toy.txt").read_text() == "hellohello"
    res = result_of(results)
    assert res["built"] is True and statuses(res["stages"]) == [(s, "built") for s in STAGES]
    assert res["details"] == {"length": "10"} or res["details"] == {"length": 10}
    rep = report(tmp_path)
    assert rep["pipeline"] == "toy" and rep["notes"] == ["a toy"] and rep["inputs"] == {"word": "hello"}
    assert rep["versions"]["toy"] == "1" and "ansible-core" in rep["versions"]
    # The one stamp, the runner's record in it (README.md, "The stamp").
    assert sorted(os.listdir(tmp_path / "output")) == ["toy.txt", "toy.txt.report.json", "toy.txt.report.md",
                                                       "toy.txt.stamp.json"]
    stamp_file = json.loads((tmp_path / "output" / "toy.txt.stamp.json").read_text())
    assert stamp_file["schema"] == 1 and list(stamp_file["records"]) == ["pipeline:toy"]
    stamp = stamp_file["records"]["pipeline:toy"]
    assert stamp["digest"] == record_digest(stamp["inputs"], stamp["versions"])
    # The secret input is in the stamp only, never in the report.
    assert "password_hmac" in stamp["inputs"] and stamp["versions"] == {"toy": "1", "other": "1"}
    assert "versions" not in stamp["inputs"]
    assert "password_hmac" not in (tmp_path / "output" / "toy.txt.report.json").read_text()
    assert "password_hmac" not in (tmp_path / "output" / "toy.txt.report.md").read_text()
    assert stamp["outputs"] == {str(tmp_path / "output" / n): sha256_file(str(tmp_path / "output" / n))
                                for n in ("toy.txt", "toy.txt.report.json", "toy.txt.report.md")}

    rc, stats, results = play(tmp_path)
    assert rc == 0 and stats["changed"] == 0, [r["_task"] for r in results if r.get("changed")]
    res = result_of(results)
    assert res["built"] is False and statuses(res["stages"]) == [(s, "up-to-date") for s in STAGES]
    assert res["details"] == rep["details"]

    rc, stats, results = play(tmp_path, toy_word="bye")
    assert rc == 0, failed_msgs(results)
    assert result_of(results)["reason"] == "inputs changed: password_hmac, word"
    assert (tmp_path / "output" / "toy.txt").read_text() == "byebye"

    # Changed code (a version) is named.
    rc, stats, results = play(tmp_path, toy_word="bye", toy_version=2)
    assert rc == 0 and result_of(results)["reason"] == "inputs changed: versions (toy)"

    # A modified artifact is rebuilt.
    (tmp_path / "output" / "toy.txt").write_text("tampered")
    rc, stats, results = play(tmp_path, toy_word="bye", toy_version=2)
    assert rc == 0 and result_of(results)["reason"].startswith("modified since built")
    assert (tmp_path / "output" / "toy.txt").read_text() == "byebye"


def test_resume_and_hooks(tmp_path):
    assert play(tmp_path)[0] == 0
    hook = tmp_path / "hook.yml"
    hook.write_text("- name: Leave a marker\n  ansible.builtin.copy:\n    content: \"{{ __pipeline_stage }}\"\n"
                    "    dest: %s/marker-{{ __pipeline_stage }}\n    mode: \"0644\"\n" % tmp_path)
    rc, stats, results = play(tmp_path, toy_resume_from="two", toy_pre_stage_hooks={"three": str(hook)},
                              toy_post_stage_hooks={"two": str(hook)})
    assert rc == 0, failed_msgs(results)
    assert statuses(report(tmp_path)["stages"]) == [("one", "resumed"), ("two", "built"), ("three", "built")]
    assert report(tmp_path)["stages"][0]["seconds"] == 0
    assert (tmp_path / "marker-two").exists() and (tmp_path / "marker-three").exists()
    assert (tmp_path / "output" / "toy.txt").read_text() == "hellohello"


def test_a_failing_stage(tmp_path):
    assert play(tmp_path)[0] == 0
    before = sorted(os.listdir(tmp_path / "output"))
    rc, stats, results = play(tmp_path, toy_word="other", toy_fail=True)
    assert rc != 0
    assert failed_msgs(results)[-1] == (
        "Toy stage two failed: two refuses. Nothing was written to %s. Fix the cause, then re-run; "
        "toy_resume_from=two picks up at that stage." % (tmp_path / "output"))
    assert sorted(os.listdir(tmp_path / "output")) == before
    assert (tmp_path / "output" / "toy.txt").read_text() == "hellohello"
    # Resumed at the failed stage, the build picks up what stage one left.
    rc, stats, results = play(tmp_path, toy_word="other", toy_resume_from="two")
    assert rc == 0 and (tmp_path / "output" / "toy.txt").read_text() == "otherother"
    rc, stats, results = play(tmp_path, toy_word="other")
    assert rc == 0 and result_of(results)["built"] is False


def test_checks_before_the_first_stage(tmp_path):
    rc, stats, results = play(tmp_path, toy_resume_from="nope")
    assert rc != 0 and failed_msgs(results)[-1] == (
        "toy_resume_from=nope is not a stage of the Toy pipeline; valid stage names: one, two, three.")
    rc, stats, results = play(tmp_path, toy_resume_from="three")
    assert rc != 0
    msg = failed_msgs(results)[-1]
    assert ("toy_resume_from=three: the earlier build left no %s/work/one.txt of the stage one, %s/work/two.txt "
            "of the stage two to resume from" % (tmp_path, tmp_path)) in msg and "run the whole build first" in msg
    rc, stats, results = play(tmp_path, toy_pre_stage_hooks={"four": "/nonexistent.yml"})
    assert rc != 0 and "name no stage of the Toy pipeline: four; valid stage names: one, two, three." in \
        failed_msgs(results)[-1]
    rc, stats, results = play(tmp_path, toy_stages=["one", "four"])
    assert rc != 0 and "no task file for the stages four" in failed_msgs(results)[-1]
    assert not (tmp_path / "output" / "toy.txt").exists()


def test_a_run_leaves_a_junit_file_with_a_case_per_task(tmp_path):
    # The suite's runs enable ansible.builtin.junit (tests/conftest.py), so a
    # CI system can show per-task results; the stages' task files are the
    # test classes.
    import xml.etree.ElementTree as ET
    junit = tmp_path / "junit"
    rc, _stats, results = run_playbook(PLAYBOOK, {"toy_dir": str(tmp_path)}, env={"JUNIT_OUTPUT_DIR": str(junit)})
    assert rc == 0, failed_msgs(results)
    files = sorted(junit.glob("*.xml"))
    assert len(files) == 1, files
    suites = ET.parse(files[0]).getroot()
    cases = suites.findall(".//testcase")
    assert len(cases) > 10
    classes = {c.get("classname", "") for c in cases}
    assert any(name.endswith("toy_stages/two") for name in classes), sorted(classes)[:10]
    assert not suites.findall(".//failure") and not suites.findall(".//error")

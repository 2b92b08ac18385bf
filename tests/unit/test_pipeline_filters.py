"""The pipeline runner's filters: stage rows with a status, the no-op
stage list, and the one-sentence failure message."""
from ansible_collections.osimage.builder.plugins.filter.build_report import (
    failure_message,
    stage_row,
    stages_with_status,
)


def test_stage_row_with_the_runners_status():
    assert stage_row({"stage": "kernel", "seconds": 212.04, "status": "built"}).split() == ["kernel", "212.0", "s"]
    assert stage_row({"stage": "config", "seconds": 0, "status": "resumed"}).split() == ["config", "resumed"]
    assert stage_row({"stage": "aci", "seconds": 0, "status": "up-to-date"}).split() == ["aci", "up", "to", "date"]
    # The older shape ({stage, seconds, skipped}) still works.
    assert stage_row({"stage": "base_apt", "seconds": 0, "skipped": True}).split() == ["base_apt", "resumed"]


def test_stages_with_status():
    assert stages_with_status(["a", "b"], "up-to-date") == [
        {"stage": "a", "status": "up-to-date", "seconds": 0.0}, {"stage": "b", "status": "up-to-date", "seconds": 0.0}]
    assert stages_with_status([], "up-to-date") == []


def test_failure_message():
    # One sentence, no closing full stop: the runner adds its own.
    assert failure_message({"msg": "make failed: make -C /s bzImage.\n"}) == "make failed: make -C /s bzImage"
    loop = {"msg": "One or more items failed", "results": [{"failed": False, "msg": "ok"},
                                                           {"failed": True, "msg": "rsync: no such file."}]}
    assert failure_message(loop) == "rsync: no such file"
    assert failure_message({"failed": True, "stderr": "boom"}) == "boom"
    assert failure_message({}) == "the task failed without a message"
    assert failure_message("plain text..") == "plain text"
    assert failure_message({"msg": "Task failed: '__x' is undefined"}) == "'__x' is undefined"

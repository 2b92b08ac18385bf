"""CommandRunner's progress log: every command's output is appended to the
log while the command runs (a long step can be followed with tail -f), and
the result (rc, stdout, stderr) is what run_command would have returned."""
import os
import threading
import time

from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner


class Module:
    """The part of AnsibleModule CommandRunner uses."""

    def __init__(self, progress_log=None):
        self.params = {"progress_log": progress_log}

    def get_bin_path(self, name, required=False):
        for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
            if os.access(os.path.join(d, name), os.X_OK):
                return os.path.join(d, name)
        return None

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)

    def run_command(self, *args, **kwargs):
        raise AssertionError("with a progress log, run_command is not used")


def test_output_is_in_the_log_while_the_command_runs(tmp_path):
    log = tmp_path / "logs" / "stage.log"
    runner = CommandRunner(Module(str(log)))
    done = {}

    def work():
        script = "echo step-$((1)); echo to-stderr >&2; sleep 3; echo step-$((2))"
        done["result"] = runner.run(["sh", "-c", script], "run")
    thread = threading.Thread(target=work)
    thread.start()
    for _wait in range(100):
        if log.exists() and "step-1" in log.read_text():
            break
        time.sleep(0.05)
    assert "step-1" in log.read_text() and "step-2" not in log.read_text(), "nothing streamed before the end"
    assert thread.is_alive()
    thread.join(10)
    rc, out, err = done["result"]
    assert (rc, out, err) == (0, "step-1\nstep-2\n", "to-stderr\n")
    text = log.read_text()
    assert "$ /usr/bin/sh -c " in text or "$ /bin/sh -c " in text
    assert "to-stderr" in text and text.rstrip().endswith("exit 0")


def test_a_failure_and_stdin_data(tmp_path):
    log = tmp_path / "stage.log"
    runner = CommandRunner(Module(str(log)))
    rc, out, err = runner.run(["sh", "-c", "cat; exit 3"], "run", data="from stdin", check=False)
    assert (rc, out) == (3, "from stdin\n")
    assert log.read_text().rstrip().endswith("exit 3")
    # Appended, never truncated: both commands are in the log.
    runner.run(["true"], "run")
    assert log.read_text().count("$ ") == 2


def test_without_a_progress_log_run_command_is_used():
    calls = []

    class Plain(Module):
        def run_command(self, argv, **kwargs):
            calls.append(argv)
            return 0, "out", ""
    assert CommandRunner(Plain()).run(["true"], "run") == (0, "out", "")
    assert calls and calls[0][0].endswith("/true")

"""Child processes end in all cases: a silent hung child, a server stopped with Ctrl+C."""
import os
import signal
import subprocess
import sys

import pytest

from helpers.processes import call_in_child, wait_passing_on_interrupt
from power_cut import run_until





def test_run_until_ends_a_child_that_hangs_without_printing():
    with pytest.raises(RuntimeError, match="before printing 'never'"):
        run_until([sys.executable, "-c", "import time; time.sleep(600)"], "never", timeout=2)


def test_run_until_returns_the_lines_up_to_the_one_asked_for():
    code = "import time; print('one', flush=True); print('two', flush=True); time.sleep(600)"
    assert run_until([sys.executable, "-c", code], "two", timeout=60) == ["one", "two"]


class FakeServer:
    """A Popen stand-in whose waits answer from a script: an exception to raise or an exit status."""

    def __init__(self, *answers):
        self.answers, self.signals, self.pid = list(answers), [], 0

    def wait(self, timeout=None):
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def send_signal(self, sig):
        self.signals.append(sig)


def test_ctrl_c_is_passed_on_as_jupyters_clean_stop_and_its_exit_status_awaited():
    server = FakeServer(KeyboardInterrupt(), 0)
    assert wait_passing_on_interrupt(server) == 0 and server.signals == [signal.SIGTERM] and server.answers == []


def test_a_second_ctrl_c_kills_the_server_group(monkeypatch):
    killed = []
    monkeypatch.setattr("helpers.processes.kill_group", killed.append)
    server = FakeServer(KeyboardInterrupt(), KeyboardInterrupt(), -9)
    assert wait_passing_on_interrupt(server) == -9 and killed == [server]


def test_a_server_that_does_not_stop_within_the_grace_is_killed(monkeypatch):
    killed = []
    monkeypatch.setattr("helpers.processes.kill_group", killed.append)
    server = FakeServer(KeyboardInterrupt(), subprocess.TimeoutExpired("lab", 30), -9)
    assert wait_passing_on_interrupt(server) == -9 and killed == [server]


def test_helpers_lab_passes_ctrl_c_on_and_waits_for_jupyterlab_to_stop(monkeypatch):
    from helpers.app import lab

    server, started = FakeServer(KeyboardInterrupt(), 0), []
    monkeypatch.setattr(lab.subprocess, "Popen", lambda argv, **kw: started.append(kw) or server)
    assert lab.run_lab(["--no-browser"]) == 0
    assert server.signals == [signal.SIGTERM] and server.answers == [] and started[0]["start_new_session"]


def test_a_child_gets_no_empty_path_entry_when_the_parent_had_none(monkeypatch):
    """An empty PYTHONPATH entry is the current folder: a child must not import from wherever it happens to run."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    alone = call_in_child("os", "print(repr(environ['PYTHONPATH']))")
    assert "" not in eval(alone).split(os.pathsep)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert eval(call_in_child("os", "print(repr(environ['PYTHONPATH']))")).split(os.pathsep)[1:] == ["/elsewhere"]

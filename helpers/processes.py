"""Child processes that end in all cases: each runs in its own process group, killed whole on a timeout or an error."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Sequence


def kill_group(proc: subprocess.Popen) -> None:
    """End PROC and every process it started (workers, torchrun's ranks); nothing to do when they are gone."""
    if hasattr(os, "killpg"):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        proc.kill()


def run_group(command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run COMMAND to the end with its output captured; past TIMEOUT seconds its whole group is killed, then raised."""
    proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        kill_group(proc)
        proc.communicate()
        raise
    finally:
        kill_group(proc)  # anything it left behind (an orphaned worker) goes with it
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

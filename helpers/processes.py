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


def wait_passing_on_interrupt(proc: subprocess.Popen, stop: int = signal.SIGTERM, grace: float = 30) -> int:
    """Wait for PROC, a server the user ends with Ctrl+C: the interrupt is passed on as STOP and PROC gets GRACE
    seconds to end by itself; a second Ctrl+C, or no end by then, kills its process group.

    SIGTERM is JupyterLab's own clean stop (jupyter_server's ServerApp.init_signal): it shuts its kernels down and
    exits, where a SIGINT would only ask "Shut down this Jupyter server?" on the terminal.
    """
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(stop)
    try:
        return proc.wait(timeout=grace)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        kill_group(proc)
        return proc.wait()


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


def call_in_child(module: str, call: str, *, timeout: float = 120, prefix: Sequence[str] = ()) -> str:
    """Run `from MODULE import *; CALL` in a fresh Python of its own process group (under PREFIX, e.g. unshare) and
    return the last line it printed: a demo that forks, hangs or exhausts a resource damages that process, never the
    caller (a notebook's kernel). Raises RuntimeError, with its stderr's end, when it fails."""
    import sys

    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = run_group([*prefix, sys.executable, "-c", f"from {module} import *; {call}"], timeout=timeout, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{call} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return lines[-1]

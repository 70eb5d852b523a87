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


def run_until(command: Sequence[str], line: str, *, timeout: float, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> list[str]:
    """Run COMMAND and SIGKILL its whole group (workers too) the moment it prints a line starting with LINE, as a
    power cut or the OOM killer would; the lines it printed. Raises if it ended by itself first."""
    proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    seen: list[str] = []
    try:
        for out in proc.stdout:  # type: ignore[union-attr]
            seen.append(out.rstrip("\n"))
            if out.startswith(line):
                kill_group(proc)
                break
        proc.wait(timeout=timeout)
    finally:
        kill_group(proc)
        proc.stdout.close()  # type: ignore[union-attr]
    if not (seen and seen[-1].startswith(line)) or proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"{command[0]} ended (exit {proc.returncode}) before printing {line!r}: {seen[-3:]}")
    return seen

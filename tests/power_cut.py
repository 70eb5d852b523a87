"""A child killed mid-run, as a power cut or the OOM killer would: the tests of resuming and of ending children use it."""
from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path
from typing import Sequence

from helpers.processes import kill_group


def run_until(command: Sequence[str], line: str, *, timeout: float, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> list[str]:
    """Run COMMAND and SIGKILL its whole group (workers too) the moment it prints a line starting with LINE, as a
    power cut or the OOM killer would; the lines it printed. Raises if it ended by itself first, or when TIMEOUT
    seconds pass without that line (a timer kills the group, so a child that hangs without a word ends too)."""
    proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    timer = threading.Timer(timeout, kill_group, args=(proc,))
    timer.start()
    seen: list[str] = []
    try:
        for out in proc.stdout:  # type: ignore[union-attr]
            seen.append(out.rstrip("\n"))
            if out.startswith(line):
                kill_group(proc)
                break
        proc.wait(timeout=timeout)
    finally:
        timer.cancel()
        kill_group(proc)
        proc.stdout.close()  # type: ignore[union-attr]
    if not (seen and seen[-1].startswith(line)) or proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"{command[0]} ended (exit {proc.returncode}) before printing {line!r} within {timeout:g} s: "
                           f"{seen[-3:]}")
    return seen

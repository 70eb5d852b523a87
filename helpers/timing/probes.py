"""What `python -m helpers profile` installs in each worker of a user's DataLoader beyond the stall probes.

The stall probes (helpers.loading.stalls: every thread's stack on SIGUSR1, the indices in hand) come first; on SIGUSR2
the worker also walks its own copy of the dataset (helpers.timing.culprits) and writes what it found, which the main
process asks for after a pass.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from ..loading.stalls import StallProbes
from .culprits import as_dicts, culprits
from .user_code import name_failing_items

ANSWER_S = 30.0  # how long a worker has to write its walk


def walk_file(folder: str | Path, worker_id: int) -> Path:
    return Path(folder) / f"walk-{worker_id}.json"


def write_atomically(path: Path, text: str) -> None:
    """TEXT to PATH through a temporary name, so the main process never reads half of it."""
    part = path.with_suffix(".part")
    part.write_text(text)
    os.replace(part, path)


class WorkerProbes(StallProbes):
    """The worker_init_fn profile gives a user's DataLoader: the dataset walk on SIGUSR2, the stall probes, then
    the user's own worker_init_fn.

    A plain class at module level, so that spawn and forkserver can pickle it to each worker.
    """

    def __call__(self, worker_id: int) -> None:
        name_failing_items()  # an item that raises is named by its index in the main process
        if hasattr(signal, "SIGUSR2"):  # looked up here: Windows has none, and its workers are not asked
            signal.signal(signal.SIGUSR2, lambda *_: walk_this_worker(self.folder, worker_id))
        super().__call__(worker_id)


def walk_this_worker(folder: str, worker_id: int) -> None:
    """In a worker, on SIGUSR2: the culprits in this worker's own dataset, written for the main process."""
    from torch.utils.data import get_worker_info

    write_atomically(walk_file(folder, worker_id), json.dumps(as_dicts(culprits(get_worker_info().dataset))))


def ask_for_walk(pid: int, folder: str | Path, worker_id: int, timeout_s: float = ANSWER_S) -> list[dict] | None:
    """Ask worker WORKER_ID (process PID) to walk its dataset; its culprits, or None when it did not answer (or,
    without SIGUSR2, on Windows, cannot be asked)."""
    if not hasattr(signal, "SIGUSR2"):
        return None
    found = walk_file(folder, worker_id)
    with contextlib.suppress(FileNotFoundError):
        found.unlink()
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found.exists():
            return json.loads(found.read_text())
        time.sleep(0.05)
    return None

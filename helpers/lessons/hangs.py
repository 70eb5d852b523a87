"""When a loader hangs or hides its error: each cause reproduced with real worker processes, and its fix.

Every demo returns one line saying what happened, so a notebook can print it. A real hang lasts for ever; here the
stuck worker gives up one second after the loader's timeout, so it ends by itself and nothing is left running. The two
that hang (a stuck worker, a fork while a thread holds a lock) run in a Python started for them
(processes.call_in_child), so a notebook's kernel is never the process that is forked or left waiting.
"""
from __future__ import annotations

import faulthandler
import json
import re
import threading
import time
from contextlib import contextmanager
from functools import partial
from typing import Iterable, Iterator

from torch.utils.data import DataLoader, Dataset

from .demos import mask_pids, stderr_to_file
from ..processes import call_in_child

LOCK = threading.Lock()  # module-level, as logging's or a library's lock is: a fresh interpreter makes it anew


class SlowItem(Dataset):
    """Eight numbers; item SLOW takes SECONDS, as a read from a network drive that stopped answering would."""

    def __init__(self, slow: int = 2, seconds: float = 3.0) -> None:
        self.slow, self.seconds = slow, seconds

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> int:
        if i == self.slow:
            time.sleep(self.seconds)
        return i


class BadLabel(Dataset):
    """Eight items; item 5 raises, as a label file with a typo would."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> int:
        if i == 5:
            raise ValueError(f"item {i}: label 'dgo' is not one of cat, dog")
        return i


class NeedsTheLock(Dataset):
    """Eight numbers, each made while holding the module's LOCK (a logger, a cache, a library's global state)."""

    def __init__(self, patience: float) -> None:
        self.patience = patience  # a real lock waits for ever; this one gives up, so the demo's worker ends

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> int:
        if not LOCK.acquire(timeout=self.patience):
            raise TimeoutError(f"item {i}: the lock was never released")
        LOCK.release()
        return i


def first_line(exc: BaseException) -> str:
    """An error as one line, worker pids masked, so the notebook's output is the same on every run."""
    return mask_pids(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")


def drain(loader: Iterable) -> str:
    """Read every batch, or say in one line why the loader stopped."""
    try:
        return f"ok: {[batch.tolist() for batch in loader]}"
    except Exception as exc:  # the failure is what the caller shows
        return first_line(exc)


def dump_stacks_after(worker_id: int, seconds: float) -> None:
    """worker_init_fn: SECONDS after it starts, the worker prints where each of its threads is, to its stderr."""
    faulthandler.dump_traceback_later(seconds)


def stuck_worker_dumped(timeout: float = 2.0) -> tuple[str, list[list[str]]]:
    """A worker blocked on one item, its threads dumped while it waits: the loader's timeout error, and each thread's
    stack, most recent call first. Run in a child Python, whose process group is ended however it ends."""
    found = json.loads(call_in_child("helpers.lessons.hangs", f"import json; print(json.dumps("
                                     f"stuck_worker_dumped_here({timeout!r})))", timeout=timeout + 60))
    return found["error"], found["stacks"]


def stuck_worker_dumped_here(timeout: float) -> dict:
    """stuck_worker_dumped's work, in the process that runs it; the worker's stderr is caught in a file."""
    with stderr_to_file() as log:
        loader = DataLoader(SlowItem(seconds=timeout + 1), batch_size=2, num_workers=1, timeout=timeout,
                            worker_init_fn=partial(dump_stacks_after, seconds=timeout / 2))
        error = drain(loader)
    return dict(error=error, stacks=dump_stacks(log.text))


_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+ in (?P<function>.+)$')


def dump_stacks(text: str) -> list[list[str]]:
    """A faulthandler dump as one list of frames a thread, read the same on every machine: paths from the package
    (torch/..., helpers/...), line numbers left out."""
    stacks: list[list[str]] = []
    for line in text.splitlines():
        frame = _FRAME.match(line)
        if line.startswith(("Thread 0x", "Current thread 0x")):
            stacks.append([])
        elif frame and stacks:
            path = re.sub(r"^.*/(?=(?:torch|helpers|multiprocessing)/)|^.*/", "", frame["path"])
            stacks[-1].append(f"{path}, in {frame['function']}")
    return stacks


def error_in_worker(num_workers: int, context: str | None = None) -> str:
    """The same bad item with workers (the error comes back wrapped) and without (raised where it happens); CONTEXT
    is the workers' start method (a notebook passes forkserver or spawn, never forking its kernel)."""
    loader = DataLoader(BadLabel(), batch_size=2, num_workers=num_workers,
                        multiprocessing_context=context if num_workers else None)
    try:
        for _ in loader:
            pass
    except ValueError as exc:
        lines = str(exc).strip().splitlines()
        if len(lines) == 1:
            return f"{type(exc).__name__} (raised in this process): {lines[0]}"
        # From a worker, torch re-raises in the main process with the worker's traceback as text in the message.
        return f"{type(exc).__name__} (main process, traceback in the message): {lines[0]} ... {lines[-1]}"
    return "no error"


@contextmanager
def lock_held_by_a_thread() -> Iterator[None]:
    """Another thread holds LOCK for the duration, as a logging call in flight would when the loader forks."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with LOCK:
            taken.set()
            release.wait()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    taken.wait()
    try:
        yield
    finally:
        release.set()
        thread.join()


def fork_while_locked(start_method: str, timeout: float = 3.0) -> str:
    """Workers started while another thread holds LOCK: forked ones inherit it held, by a thread they do not have.

    It runs in a child Python started for it: forked from a notebook's kernel, the worker would also copy the
    kernel's message sockets and the locks its I/O threads hold, and the kernel would be the process at risk.
    """
    return call_in_child("helpers.lessons.hangs", f"print(fork_while_locked_here({start_method!r}, {timeout!r}))",
                         timeout=timeout + 60)


def fork_while_locked_here(start_method: str, timeout: float) -> str:
    """fork_while_locked's work, in the process that runs it; a worker still alive when the loader gave up is ended."""
    with lock_held_by_a_thread():
        loader = DataLoader(NeedsTheLock(patience=timeout + 1), batch_size=4, num_workers=1, timeout=timeout,
                            multiprocessing_context=start_method)
        batches = iter(loader)
        try:
            return f"{start_method}: {drain(batches)}"
        finally:
            for worker in getattr(batches, "_workers", []):
                worker.terminate()

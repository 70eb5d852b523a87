"""What `python -m helpers profile` installs in each worker of a user's DataLoader, and the watchdog that uses it.

In each worker (through worker_init_fn, the user's own called after): faulthandler writes every thread's stack to a
file on SIGUSR1, even when the worker is stuck in C code; on SIGUSR2 the worker walks its own copy of the dataset
(helpers.timing.culprits) and writes what it found; with a stall limit, the dataset indices a worker is fetching are
written before each batch and cleared after. In the main process, Watchdog ends a wait for a batch that lasts past the
limit: it collects the stacks, then interrupts the main thread, so the loader's workers are shut down as usual.
"""
from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import OptionError, WorkerFailure
from .culprits import as_dicts, culprits

STACK_SIGNAL, WALK_SIGNAL = signal.SIGUSR1, signal.SIGUSR2
ANSWER_S = 30.0  # how long a worker has to write its stack or its walk
GRACE_S = 10.0   # after interrupting the main thread, how long before the process is ended from the watchdog
KEEP: list[Any] = []  # in a worker: the open stack file faulthandler writes to (it must stay open)


def stack_file(folder: str | Path, worker_id: int) -> Path:
    return Path(folder) / f"stack-{worker_id}.txt"


def hand_file(folder: str | Path, worker_id: int) -> Path:
    return Path(folder) / f"hand-{worker_id}.txt"


def walk_file(folder: str | Path, worker_id: int) -> Path:
    return Path(folder) / f"walk-{worker_id}.json"


def write_atomically(path: Path, text: str) -> None:
    """TEXT to PATH through a temporary name, so the main process never reads half of it."""
    part = path.with_suffix(".part")
    part.write_text(text)
    os.replace(part, path)


class WorkerProbes:
    """The worker_init_fn profile gives a user's DataLoader: the probes above, then the user's own worker_init_fn.

    A plain class at module level, so that spawn and forkserver can pickle it to each worker.
    """

    def __init__(self, folder: str | Path, user_init: Callable[[int], Any] | None, record_indices: bool) -> None:
        self.folder, self.user_init, self.record_indices = str(folder), user_init, record_indices

    def __call__(self, worker_id: int) -> None:
        stacks = open(stack_file(self.folder, worker_id), "w")
        KEEP.append(stacks)
        faulthandler.register(STACK_SIGNAL, file=stacks, all_threads=True)
        signal.signal(WALK_SIGNAL, lambda *_: walk_this_worker(self.folder, worker_id))
        if self.record_indices:
            record_fetches(hand_file(self.folder, worker_id))
        if self.user_init is not None:
            self.user_init(worker_id)


def walk_this_worker(folder: str, worker_id: int) -> None:
    """In a worker, on WALK_SIGNAL: the culprits in this worker's own dataset, written for the main process."""
    from torch.utils.data import get_worker_info

    write_atomically(walk_file(folder, worker_id), json.dumps(as_dicts(culprits(get_worker_info().dataset))))


def record_fetches(path: Path) -> None:
    """In a worker: write the dataset indices of each batch to PATH while it is fetched, and clear it after.

    Wraps the fetch method of torch's dataset fetchers (torch/utils/data/_utils/fetch.py) in this worker only, the one
    place a worker holds a batch's indices; on a torch whose fetchers differ, nothing is recorded.
    """
    try:
        from torch.utils.data._utils import fetch as torch_fetch
        kinds = (torch_fetch._MapDatasetFetcher, torch_fetch._IterableDatasetFetcher)
    except (ImportError, AttributeError):
        return
    for kind in kinds:
        original = kind.fetch

        def fetch(self: Any, index: Any, original: Callable = original) -> Any:
            path.write_text(describe_indices(self, index) + f" since {time.time():.3f}\n")
            try:
                return original(self, index)
            finally:
                path.write_text("")
        kind.fetch = fetch


def describe_indices(fetcher: Any, index: Any) -> str:
    """The indices a fetch was handed, in words: a map-style dataset's indices, or an iterable dataset's count."""
    if type(fetcher).__name__.startswith("_Iterable"):
        return f"the next {len(index) if hasattr(index, '__len__') else 1} items of the iterable dataset"
    shown = list(index) if hasattr(index, "__iter__") else [index]
    return f"dataset indices {shown[:64]}{' ...' if len(shown) > 64 else ''}"


def ask_for_walk(pid: int, folder: str | Path, worker_id: int, timeout_s: float = ANSWER_S) -> list[dict] | None:
    """Ask worker WORKER_ID (process PID) to walk its dataset; its culprits, or None when it did not answer."""
    found = walk_file(folder, worker_id)
    with contextlib.suppress(FileNotFoundError):
        found.unlink()
    os.kill(pid, WALK_SIGNAL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found.exists():
            return json.loads(found.read_text())
        time.sleep(0.05)
    return None


def collect_stacks(pids: Sequence[int], folder: str | Path, timeout_s: float = 3.0) -> list[str]:
    """Every worker's stack (from faulthandler) and the indices it holds; one text per worker, in worker order."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, STACK_SIGNAL)
    files = [stack_file(folder, k) for k in range(len(pids))]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(f.exists() and f.stat().st_size for f in files):
        time.sleep(0.05)
    time.sleep(0.2)  # let the last lines land
    texts = []
    for k, (pid, stacks) in enumerate(zip(pids, files)):
        hand = hand_file(folder, k)
        held = hand.read_text().strip() if hand.exists() else ""
        if held and " since " in held:
            what, since = held.rsplit(" since ", 1)
            held = f"{what}, for {time.time() - float(since):.1f} s"
        stack = stacks.read_text().rstrip() if stacks.exists() else ""
        texts.append(f"worker {k} (pid {pid}): " + (f"fetching {held}" if held else "holds no batch (idle or in "
                                                    "its own code between batches)") +
                     "\n" + (stack or "  (no stack: the worker did not answer)"))
    return texts


def main_thread_stack() -> str:
    """This process's threads' stacks, the main thread's included (for num_workers=0, where the main process loads)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as f:
        faulthandler.dump_traceback(file=f, all_threads=True)
        f.seek(0)
        return f.read().rstrip()


class Watchdog:
    """Ends a wait for a batch that lasts past STALL_S seconds: REPORT() says what the workers were doing, then the
    main thread's wait raises WorkerFailure with it (exit status 2 at the command line).

    The main thread is interrupted with a signal, which ends its blocking wait on the loader's queue; the loader then
    shuts its workers down as usual. Should the main thread not return to Python within GRACE_S (stuck in C code),
    KILL() ends what it started and the process exits with status 2 from here.
    """

    def __init__(self, stall_s: float, report: Callable[[], str], kill: Callable[[], None]) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise OptionError("--stall-s: the watchdog interrupts the main thread; call profile from it")
        self.stall_s, self.report, self.kill = stall_s, report, kill
        self.armed_at: float | None = None
        self.message = ""
        self.stop = threading.Event()
        self.main = threading.main_thread().ident

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Around one wait for a batch: only time spent here counts towards a stall."""
        self.armed_at = time.monotonic()
        try:
            yield
        finally:
            self.armed_at = None

    def interrupted(self, *_: Any) -> None:
        raise WorkerFailure(self.message)

    def watch(self) -> None:
        while not self.stop.wait(min(0.2, self.stall_s / 4)):
            armed = self.armed_at
            if armed is None or time.monotonic() - armed < self.stall_s:
                continue
            print(self.report(), flush=True)
            self.message = (f"no batch arrived for {self.stall_s:g} s (--stall-s): the workers' stacks and the "
                            "indices they held are printed above")
            signal.pthread_kill(self.main, signal.SIGUSR2)
            if not self.stop.wait(GRACE_S):
                self.kill()
                print(f"error: {self.message}; the main process did not return from the loader, so it ends here",
                      file=sys.stderr, flush=True)
                os._exit(2)
            return

    def __enter__(self) -> Watchdog:
        self.previous = signal.signal(signal.SIGUSR2, self.interrupted)
        self.thread = threading.Thread(target=self.watch, name="stall watchdog", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join()
        signal.signal(signal.SIGUSR2, self.previous)

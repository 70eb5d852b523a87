"""When no batch comes: what each DataLoader worker is doing, and the watchdog that notices and ends the wait.

In each worker (through worker_init_fn, the user's own called after): faulthandler writes every thread's stack to a
file on SIGUSR1, even when the worker is stuck in C code, and the dataset indices a worker is fetching are written
before each batch and cleared after. In the main process, Watchdog ends a wait for a batch that lasts past the limit:
it prints the stacks, then interrupts the main thread, so the loader's workers are shut down as usual. StallWatch is
that watchdog over a training run's loaders (`train --stall-s`); `profile --stall-s` uses the parts directly.
"""
from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from torch.utils.data import DataLoader

from ..errors import OptionError, WorkerFailure
from .resume import SeededItems

GRACE_S = 10.0   # after interrupting the main thread, how long before the process is ended from the watchdog
KEEP: list[Any] = []  # in a worker: the open stack file faulthandler writes to (it must stay open)
WORKERS_SHOWN = "the workers' stacks and the indices they held are printed above"
MAIN_SHOWN = "the main thread's stack is printed above"
END = object()  # what next() gives back past a pass's last batch


def missing_signals() -> list[str]:
    """What the stall watch needs from the platform and it lacks (Windows has none of it), looked up when asked:
    stacks come on SIGUSR1 (faulthandler.register), the main thread is interrupted with SIGUSR2 (pthread_kill)."""
    need = [(signal, "SIGUSR1"), (signal, "SIGUSR2"), (signal, "pthread_kill"), (faulthandler, "register")]
    return [f"{module.__name__}.{name}" for module, name in need if not hasattr(module, name)]


def refuse_without_signals(flag: str) -> None:
    """Raise OptionError naming FLAG where this platform lacks what the stall watch needs."""
    if missing := missing_signals():
        raise OptionError(f"{flag}: this platform has no {', '.join(missing)}, which the stall watch needs (Linux or "
                          "macOS); leave the option out, or use --timeout")


def kill(pids: Iterable[int]) -> None:
    """End each of PIDS that is still there: SIGKILL, looked up when used (Windows has none: os.kill terminates)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))


def stack_file(folder: str | Path, worker_id: int) -> Path:
    return Path(folder) / f"stack-{worker_id}.txt"


def hand_file(folder: str | Path, worker_id: int) -> Path:
    return Path(folder) / f"hand-{worker_id}.txt"


def ready_file(folder: str | Path, worker_id: int) -> Path:
    """Holds the pid of the worker whose stack probe is in place: SIGUSR1 would end one still starting."""
    return Path(folder) / f"ready-{worker_id}.txt"


class StallProbes:
    """A worker_init_fn that lets the main process see a stuck worker: its stacks on SIGUSR1 and, with
    RECORD_INDICES, the indices it is fetching; then the user's own worker_init_fn.

    A plain class at module level, so that spawn and forkserver can pickle it to each worker.
    """

    def __init__(self, folder: str | Path, user_init: Callable[[int], Any] | None, record_indices: bool) -> None:
        self.folder, self.user_init, self.record_indices = str(folder), user_init, record_indices

    def __call__(self, worker_id: int) -> None:
        if not missing_signals():  # elsewhere (Windows) no stack can be asked for: the worker is never marked ready
            stacks = open(stack_file(self.folder, worker_id), "w")
            KEEP.append(stacks)
            faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
            ready_file(self.folder, worker_id).write_text(str(os.getpid()))
        if self.record_indices:
            record_fetches(hand_file(self.folder, worker_id))
        if self.user_init is not None:
            self.user_init(worker_id)


def record_fetches(path: Path) -> None:
    """In a worker: write the dataset indices of each batch to PATH while it is fetched, and clear it after.

    Wraps the fetch method of torch's dataset fetchers (torch/utils/data/_utils/fetch.py) in this worker only, the one
    place a worker holds a batch's indices; on a torch whose fetchers differ, nothing is recorded. A record that cannot
    be written (its folder gone, after the watch ended) is skipped: it must never fail a batch.
    """
    try:
        from torch.utils.data._utils import fetch as torch_fetch
        kinds = (torch_fetch._MapDatasetFetcher, torch_fetch._IterableDatasetFetcher)
    except (ImportError, AttributeError):
        return
    for kind in kinds:
        original = kind.fetch

        def fetch(self: Any, index: Any, original: Callable = original) -> Any:
            with contextlib.suppress(OSError):
                path.write_text(describe_indices(self, index) + f" since {time.time():.3f}\n")
            try:
                return original(self, index)
            finally:
                with contextlib.suppress(OSError):
                    path.write_text("")
        kind.fetch = fetch


def describe_indices(fetcher: Any, index: Any) -> str:
    """The indices a fetch was handed, in words: a map-style dataset's indices, or an iterable dataset's count."""
    if type(fetcher).__name__.startswith("_Iterable"):
        return f"the next {len(index) if hasattr(index, '__len__') else 1} items of the iterable dataset"
    shown = list(index) if hasattr(index, "__iter__") else [index]
    more, seeded = " ..." if len(shown) > 64 else "", isinstance(getattr(fetcher, "dataset", None), SeededItems)
    if seeded:  # the course's training split: each key is (the item's seed, its index)
        return f"dataset indices {[key[1] for key in shown[:64]]}{more} (each with its own augmentation seed)"
    return f"dataset indices {shown[:64]}{more}"


def collect_stacks(pids: Sequence[int], folder: str | Path, timeout_s: float = 3.0) -> list[str]:
    """Every worker's stack (from faulthandler) and the indices it holds; one text per worker, in worker order.

    Only a worker whose probe is in place is asked (its pid in its ready file): one still starting, under spawn say,
    would be ended by the signal, so it is reported as starting instead.
    """
    ready = [is_ready(folder, k, pid) for k, pid in enumerate(pids)]
    for pid, asked in zip(pids, ready):
        if asked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)
    files = [stack_file(folder, k) for k in range(len(pids))]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(f.exists() and f.stat().st_size
                                                  for f, asked in zip(files, ready) if asked):
        time.sleep(0.05)
    time.sleep(0.2)  # let the last lines land
    texts = []
    for k, (pid, stacks) in enumerate(zip(pids, files)):
        if not ready[k]:
            texts.append(f"worker {k} (pid {pid}): still starting (its worker_init_fn has not run yet), so not asked "
                         "for its stack")
            continue
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


def is_ready(folder: str | Path, worker_id: int, pid: int) -> bool:
    """Whether worker WORKER_ID, process PID, has its stack probe in place."""
    try:
        return ready_file(folder, worker_id).read_text() == str(pid)
    except OSError:
        return False


def main_thread_stack() -> str:
    """This process's threads' stacks, the main thread's included (for num_workers=0, where the main process loads)."""
    with tempfile.TemporaryFile("w+") as f:
        faulthandler.dump_traceback(file=f, all_threads=True)
        f.seek(0)
        return f.read().rstrip()


def stall_report(stall_s: float, pids: Sequence[int], folder: str | Path | None) -> str:
    """What a stall looks like: each worker's stack and the indices it holds, or, without probed workers, this
    process's threads (with num_workers=0 its main thread loads the batches)."""
    if pids and folder is not None:
        return "\n\n".join([f"No batch for {stall_s:g} s. Each worker's Python stack (most recent call first), and "
                            "the batch it was fetching:", *collect_stacks(pids, folder)])
    return "\n".join([f"No batch for {stall_s:g} s. This process's threads (most recent call first); with "
                      "num_workers=0 its main thread loads the batches:", main_thread_stack()])


def live_workers(iterator: Any) -> list[int]:
    """The pids of a DataLoader iterator's live workers (torch keeps them in its `_workers` list); none at 0 workers."""
    return [w.pid for w in getattr(iterator, "_workers", None) or [] if w.pid is not None and w.is_alive()]


class Watchdog:
    """Ends a wait for a batch that lasts past STALL_S seconds: REPORT() says what the workers were doing, then the
    main thread's wait raises WorkerFailure with it (exit status 2 at the command line).

    The main thread is interrupted with a signal, which ends its blocking wait on the loader's queue; the loader then
    shuts its workers down as usual. Should the main thread not return to Python within GRACE_S (stuck in C code),
    KILL() ends what it started and the process exits with status 2 from here, FOLDER (the probes') removed first:
    os._exit runs no cleanup.
    """

    def __init__(self, stall_s: float, report: Callable[[], str], kill: Callable[[], None],
                 folder: str | Path | None = None) -> None:
        refuse_without_signals("--stall-s")
        if threading.current_thread() is not threading.main_thread():
            raise OptionError("--stall-s: the watchdog interrupts the main thread; run from the main thread")
        self.stall_s, self.report, self.kill, self.folder = stall_s, report, kill, folder
        self.armed_at: float | None = None
        self.message = ""
        self.shown = WORKERS_SHOWN  # what the report printed, for the closing line
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
            self.message = f"no batch arrived for {self.stall_s:g} s (--stall-s): {self.shown}"
            signal.pthread_kill(self.main, signal.SIGUSR2)
            if not self.stop.wait(GRACE_S):
                self.kill()
                print(f"error: {self.message}; the main process did not return from the loader, so it ends here",
                      file=sys.stderr, flush=True)
                if self.folder is not None:
                    shutil.rmtree(self.folder, ignore_errors=True)
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


class StallWatch(Watchdog):
    """`train --stall-s`: the watchdog over every pass of a training run, training and validation alike.

    watched(loader) is the loader as one pass reads it: each wait for a batch is watched, iter() included (persistent
    workers answer it). Each loader's workers are probed before they first start, in a folder of its own (the train
    and validation workers both count from worker 0). After a stall, leaving the watch drops the loaders' iterators,
    so torch shuts their workers down, and kills any worker still there; the loaders' own worker_init_fn is put back.
    """

    def __init__(self, stall_s: float) -> None:
        super().__init__(stall_s, self.stalled, self.kill_workers, tempfile.mkdtemp(prefix="helpers-stall-"))
        self.loaders: dict[int, tuple[DataLoader, str | None, Callable[[int], Any] | None]] = {}
        self.current: tuple[DataLoader, Any] | None = None  # the loader waited on now, and its pass's iterator
        self.pids: set[int] = set()

    def probe(self, loader: DataLoader) -> None:
        """Give LOADER's workers the probes, unless it has none or they already run (started before the watch)."""
        if id(loader) in self.loaders:
            return
        folder, own = None, loader.worker_init_fn
        if loader.num_workers and getattr(loader, "_iterator", None) is None:
            folder = os.path.join(self.folder, f"loader-{len(self.loaders)}")
            os.makedirs(folder)
            loader.worker_init_fn = StallProbes(folder, own, record_indices=True)
        self.loaders[id(loader)] = (loader, folder, own)

    @contextlib.contextmanager
    def waiting_on(self, loader: DataLoader, iterator: Any = None) -> Iterator[None]:
        """Around one wait on LOADER (ITERATOR: its pass, once iter() has returned it)."""
        self.current = (loader, iterator)
        with self.waiting():
            yield

    def watched(self, loader: Any) -> Any:
        """LOADER as one pass reads it (len and iter), every wait for a batch watched; anything else as it is."""
        return Watched(self, loader) if isinstance(loader, DataLoader) else loader

    def stalled(self) -> str:
        """The report for the loader waited on: its workers' stacks and indices, or this process's threads."""
        loader, iterator = self.current or (None, None)
        folder = self.loaders[id(loader)][1] if loader is not None else None
        pids = live_workers(iterator or getattr(loader, "_iterator", None))
        self.pids.update(pids)
        self.shown = WORKERS_SHOWN if pids and folder else MAIN_SHOWN
        return stall_report(self.stall_s, pids if folder else [], folder)

    def kill_workers(self) -> None:
        """End every worker seen in a stall that is still there (the loader's shutdown leaves none, as a rule)."""
        kill(self.pids)

    def __exit__(self, kind: Any = None, exc: BaseException | None = None, tb: Any = None) -> None:
        super().__exit__()
        try:
            if self.message:  # a stall: no pass goes on, so its workers go now, not when the process exits
                if tb is not None:
                    traceback.clear_frames(tb)  # the frames hold the pass's iterator, and so its workers
                self.current = None
                for loader, _, _ in self.loaders.values():
                    loader._iterator = None  # persistent workers: torch keeps them there (dataloader.py)
                gc.collect()
                self.kill_workers()
        finally:
            for loader, folder, user_init in self.loaders.values():
                if folder is not None:
                    loader.worker_init_fn = user_init
            self.loaders.clear()
            shutil.rmtree(self.folder, ignore_errors=True)


class Watched:
    """A DataLoader as one pass of training reads it, each wait for a batch inside the StallWatch's waiting_on."""

    def __init__(self, watch: StallWatch, loader: DataLoader) -> None:
        self.watch, self.loader = watch, loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        self.watch.probe(self.loader)
        with self.watch.waiting_on(self.loader):
            iterator = iter(self.loader)
        return self.batches(iterator)

    def batches(self, iterator: Iterator[Any]) -> Iterator[Any]:
        """ITERATOR's batches, each wait for one watched."""
        while True:
            with self.watch.waiting_on(self.loader, iterator):
                batch = next(iterator, END)
            if batch is END:
                return
            yield batch


def watching(stall_s: float | None) -> contextlib.AbstractContextManager:
    """A StallWatch for STALL_S seconds, or, for None, a context that watches nothing (its `watched` passes loaders on)."""
    return StallWatch(stall_s) if stall_s is not None else Unwatched()


class Unwatched(contextlib.nullcontext):
    """No --stall-s: loaders pass through as they are."""

    def __init__(self) -> None:
        super().__init__(self)

    @staticmethod
    def watched(loader: Any) -> Any:
        return loader

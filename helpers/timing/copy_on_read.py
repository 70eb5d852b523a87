"""The copy-on-read lab: one pass over a large index per kind of index, each worker's memory before and after.

`python -m helpers memory --entries N --workers W`. No image is decoded: each entry's path and label are only read,
which is all it takes for a Python list to be copied into every worker under fork (pytorch/pytorch#13246).
"""
from __future__ import annotations

import functools
import gc
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..loading.data import ImageDataset
from ..errors import OptionError
from ..machine import MEMORY_MARGIN
from .memory import Snapshot, available_mb, mean, snapshot, worker_pids
from ..progress import progress_bar
from ..loading.sample_table import SampleTable

KINDS = ("python-list", "numpy", "helpers")
BATCH_SIZE = 4096
START_TIMEOUT_S = 120.0  # a worker that has not started by then has failed; the loader reports why
ENTRY_BYTES = 200  # a (path, label) tuple of a 30-character path, its string and the list's pointer, rounded up


def check_fits(entries: int, workers: int) -> None:
    """Refuse an index whose worst case (the list copied into every worker, the main process too) cannot fit."""
    need_mb = entries * ENTRY_BYTES * (workers + 2) / 2**20
    if need_mb > MEMORY_MARGIN * available_mb():
        most = int(MEMORY_MARGIN * available_mb() * 2**20 / (ENTRY_BYTES * (workers + 2)))
        raise OptionError(f"--entries: got {entries}; with {workers} workers the lab may need {need_mb:.0f} MB, "
                          f"more than {MEMORY_MARGIN:.0%} of the {available_mb():.0f} MB available; accepted here: up to {most}")


def synthetic_entries(n: int) -> tuple[list[str], list[int]]:
    """N paths and labels shaped like the course's data, without files behind them."""
    classes = ("cat", "dog")
    return [f"data/cats-dogs/{classes[i % 2]}/{i:08d}.jpg" for i in range(n)], [i % 2 for i in range(n)]


class PythonListIndex(Dataset):
    """The pattern that grows: a list of (path, label) tuples, each read in a worker with its refcount bumped."""

    def __init__(self, paths: list[str], labels: list[int]) -> None:
        self.entries = list(zip(paths, labels))

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def nbytes(self) -> int:
        return sys.getsizeof(self.entries) + sum(sys.getsizeof(e) + sys.getsizeof(e[0]) for e in self.entries)

    def __getitem__(self, i: int) -> tuple[int, int]:
        path, label = self.entries[i]
        return len(path), label


class NumpyIndex(Dataset):
    """The same index as two NumPy arrays (fixed-width bytes and int64): two objects, however many entries."""

    def __init__(self, paths: list[str], labels: list[int]) -> None:
        self.paths = np.array([p.encode() for p in paths])
        self.labels = np.array(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return self.paths.nbytes + self.labels.nbytes

    def __getitem__(self, i: int) -> tuple[int, int]:
        return len(self.paths[i]), int(self.labels[i])


def course_index(paths: list[str], labels: list[int]) -> ImageDataset:
    """The course's own ImageDataset over a SampleTable, its loader swapped for len so nothing is opened."""
    return ImageDataset(SampleTable(paths, labels), transform=None, loader=len)


def dataset_bytes(dataset: Dataset) -> int:
    """What a lab dataset's index holds in the main process (labels 0 and 1 are shared small ints)."""
    return dataset.samples.nbytes if isinstance(dataset, ImageDataset) else dataset.nbytes


BUILDERS: dict[str, Callable[[list[str], list[int]], Dataset]] = {
    "python-list": PythonListIndex, "numpy": NumpyIndex, "helpers": course_index}


def hold_at_start(ready: Any, go: Any, worker_id: int) -> None:
    """A worker's init: say it has started, then wait until the main process has measured it, before any read."""
    ready.release()
    go.wait(START_TIMEOUT_S)


def wait_started(ready: Any, it: Iterator, workers: int) -> None:
    """Until WORKERS have said they started; a worker that died first ends the wait (the next batch says why)."""
    started, deadline = 0, time.monotonic() + START_TIMEOUT_S
    while started < workers and time.monotonic() < deadline:
        if ready.acquire(timeout=0.5):
            started += 1
        elif len(worker_pids(it)) < workers:
            return


def one_pass(dataset: Dataset, workers: int, start_method: str | None, seed: int = 0,
             freeze: bool = True) -> tuple[Snapshot, Snapshot, Snapshot]:
    """One shuffled pass over DATASET: snapshots with every worker started but nothing read, half-way, and with the
    last batch in.

    The second is taken before asking for the batch after the last, which is when a non-persistent loader ends its
    workers. FREEZE calls gc.freeze() first, so that a full collection in a worker does not touch every object the
    parent made (torch's modules included): what is measured is then the index alone.
    """
    context = multiprocessing.get_context(start_method)
    ready, go = context.Semaphore(0), context.Event()
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(seed),
                        worker_init_fn=functools.partial(hold_at_start, ready, go) if workers else None,
                        multiprocessing_context=context if workers else None)
    if freeze:
        gc.freeze()
    it = iter(loader)
    try:
        wait_started(ready, it, workers)
        before = snapshot(worker_pids(it))
        go.set()
        for _ in range(len(loader) // 2):
            next(it)
        middle = snapshot(worker_pids(it))
        for _ in range(len(loader) - len(loader) // 2):
            next(it)
        return before, middle, snapshot(worker_pids(it))
    finally:
        go.set()
        del it
        gc.unfreeze()


def measure_kind(kind: str, entries: int, workers: int, start_method: str | None, seed: int = 0) -> dict:
    """Build one kind of index of ENTRIES, make one pass over it with WORKERS, and say what each worker's memory did."""
    dataset = BUILDERS[kind](*synthetic_entries(entries))
    gc.collect()
    start = time.perf_counter()
    before, middle, after = one_pass(dataset, workers, start_method, seed)
    return dict(
        index=kind, entries=entries, num_workers=workers,
        start_method=multiprocessing.get_context(start_method).get_start_method(),
        index_mb=dataset_bytes(dataset) / 2**20, main_uss_mb=after.processes[0].uss_mb,
        uss_before_mb_per_worker=mean([p.uss_mb for p in before.workers]),
        uss_middle_mb_per_worker=mean([p.uss_mb for p in middle.workers]),
        uss_after_mb_per_worker=mean([p.uss_mb for p in after.workers]),
        uss_growth_mb_per_worker=mean(after.growth_since(before)),
        pss_total_mb=after.total_pss_mb, shm_mb=after.shm_mb, pass_s=time.perf_counter() - start)


def copy_on_read(entries: int, workers: int, start_method: str | None = None, kinds: tuple[str, ...] = KINDS,
                 seed: int = 0, progress: bool = True) -> list[dict]:
    """One row per kind of index: each worker's USS before and after one pass, its growth, and the total PSS.

    Under fork each kind is measured in a fresh process, so its workers inherit only its own index: not the memory
    another kind left free, which a worker's allocations would write to (and copy) as well. Spawned and forkserver
    workers inherit no memory, so there it is measured here.
    """
    check_fits(entries, workers)
    start_method = multiprocessing.get_context(start_method).get_start_method()  # the default here, not the child's
    rows, bar = [], progress_bar(len(kinds), "copy-on-read", progress, unit="index")
    for kind in kinds:
        if start_method != "fork":
            rows.append(measure_kind(kind, entries, workers, start_method, seed))
        else:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
                rows.append(fresh.submit(measure_kind, kind, entries, workers, start_method, seed).result())
        bar.update(1)
    bar.close()
    return rows


MEMORY_COLUMNS = (
    ("index", "index", "s"),
    ("start_method", "start", "s"),
    ("num_workers", "workers", "d"),
    ("index_mb", "index MB", ".1f"),
    ("uss_before_mb_per_worker", "USS before MB", ".1f"),
    ("uss_middle_mb_per_worker", "half-way MB", ".1f"),
    ("uss_after_mb_per_worker", "USS after MB", ".1f"),
    ("uss_growth_mb_per_worker", "growth MB/worker", ".1f"),
    ("main_uss_mb", "main USS MB", ".1f"),
    ("pss_total_mb", "total PSS MB", ".1f"),
    ("pass_s", "pass s", ".1f"),
)

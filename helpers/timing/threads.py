"""Thread workers: the DataLoader's dataset, batches and collate, made by a pool of threads instead of processes.

PyTorch's DataLoader has no thread mode; torchdata's nodes do (ParallelMapper with method="thread"). Each thread
makes whole batches, as a worker process does, and at most 2 x num_workers batches are in flight (torchdata's
default, torchdata/nodes/map.py), as with the DataLoader's prefetch_factor=2. Threads share the process: nothing is
pickled or copied to the main process and nothing starts but a thread, but they run Python one at a time, so they
only overlap where the work releases the GIL (gil_release measures which steps do).
"""
from __future__ import annotations

import gc
import hashlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import OptionError
from ..machine import one_thread

WORKER_KINDS = ("process", "thread")
TORCHDATA = "torchdata==0.11.0"  # the version requirements.txt pins, tested with torch 2.14.1


def nodes_module() -> Any:
    """torchdata.nodes, or the course's one-line error naming the install command."""
    try:
        from torchdata import nodes
    except ImportError:
        raise OptionError(f"thread workers need torchdata's nodes: `pip install {TORCHDATA}`") from None
    return nodes


def fetch_batch(dataset: Dataset, collate_fn: Callable[[list], Any], indices: Sequence[int]) -> Any:
    """One batch, as a DataLoader worker makes it (torch/utils/data/_utils/fetch.py): __getitems__ if any, then collate."""
    fetch = getattr(dataset, "__getitems__", None)
    return collate_fn(fetch(list(indices)) if fetch else [dataset[i] for i in indices])


class ThreadLoader:
    """Iterable like a DataLoader: each pass draws the sampler's batches and makes them on NUM_WORKERS threads.

    torchdata's thread workers call torch.set_num_threads(1) (torchdata/nodes/_apply_udf.py), which is the whole
    process's setting; a pass restores the main process's thread count when it ends.
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, num_workers: int, sampler: Any,
                 collate_fn: Callable[[list], Any], in_order: bool = True,
                 generator: torch.Generator | None = None) -> None:
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.sampler, self.collate_fn, self.in_order, self.generator = sampler, collate_fn, in_order, generator

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        nodes = nodes_module()
        # The DataLoader draws its workers' base seed from its generator before the sampler's first draw
        # (torch/utils/data/dataloader.py, _BaseDataLoaderIter); drawing it too keeps the batches the same.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        batches = nodes.Batcher(nodes.SamplerWrapper(self.sampler), self.batch_size, drop_last=False)
        made = nodes.ParallelMapper(batches, partial(fetch_batch, self.dataset, self.collate_fn),
                                    num_workers=self.num_workers, method="thread", in_order=self.in_order)
        return passing(nodes.Loader(made))


def passing(loader: Any) -> Iterator[Any]:
    """LOADER's batches, with torch's thread count put back when the pass ends or is abandoned.

    torchdata's clean-up joins the pass's threads when its iterator is collected, and fails when that happens on one
    of those threads ("cannot join current thread", seen once in a bench run); collecting at the end of the pass,
    here, makes it happen on this thread.
    """
    try:
        with one_thread():
            yield from loader
    finally:
        del loader
        gc.collect()


def with_threads(loader: DataLoader, num_workers: int, in_order: bool = True) -> ThreadLoader:
    """The same dataset, sampler, batch size and collate as LOADER (made with num_workers=0), on thread workers."""
    if loader.batch_size is None:
        raise ValueError("with_threads needs a loader with a batch_size; it batches the sampler's indices itself")
    return ThreadLoader(loader.dataset, batch_size=loader.batch_size, num_workers=num_workers, sampler=loader.sampler,
                        collate_fn=loader.collate_fn, in_order=in_order, generator=loader.generator)


BLOCK = bytes(1 << 20)


def hashes(item: Any) -> Any:
    """A control that releases the GIL: hashlib does for data over 2047 bytes (Python's hashlib documentation)."""
    for _ in range(4):
        hashlib.sha256(BLOCK).digest()
    return item


def counts(item: Any) -> Any:
    """A control that holds the GIL: a loop in pure Python."""
    total = 0
    for k in range(100_000):
        total += k
    return item


CONTROLS = [("control: hashlib.sha256 of 4 MB (releases the GIL)", hashes),
            ("control: a pure-Python loop (holds the GIL)", counts)]
CONTROL_AFTER = ("control again, after the steps: hashlib.sha256 of 4 MB", hashes)


def gil_release(inputs: Sequence, steps: Sequence[tuple[str, Callable]], threads: int = 2,
                repeats: int = 3) -> list[dict]:
    """Per step, the speed-up of THREADS threads over one on the same items: near THREADS, the step releases the GIL
    (C code running while Python waits); near 1, it holds it. Each step runs on the previous step's real outputs.
    Put CONTROLS first and CONTROL_AFTER last: on a machine shared with other work, they show the speed-up there was
    to be had while the steps ran."""
    rows, current = [], list(inputs)
    with one_thread(), ThreadPoolExecutor(threads) as pool:
        for name, fn in steps:
            one, many = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                outputs = [fn(x) for x in current]
                one.append(time.perf_counter() - start)
                start = time.perf_counter()
                list(pool.map(fn, current))
                many.append(time.perf_counter() - start)
            speedup = statistics.median(one) / statistics.median(many)
            rows.append(dict(step=name, ms_one_thread=1000 * statistics.median(one) / len(current),
                             threads=threads, speedup=speedup, releases_gil=speedup >= 1 + 0.5 * (threads - 1)))
            current = outputs
    return rows

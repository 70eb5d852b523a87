"""Who made each batch, and when: one row per batch from the workers' and the main process's own clocks.

The clock is CLOCK_MONOTONIC where the system has one (Linux, macOS): a single clock for every process on the
machine (on Linux, seconds since boot), never set back, so a worker's stamps and the main process's compare directly.
time.perf_counter is not used across processes: Python documents its reference point as undefined. Elsewhere
(Windows) the wall clock, time.time(), which every process shares but which the system may adjust.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from torch.utils.data import Dataset, Sampler, get_worker_info

from .. import options
from ..loading.data import ImageFolderIndex, SkippedFiles, index_image_folder
from ..errors import explained_worker_failures
from ..loading.loaders import make_loader
from ..machine import past_the_cores
from ..loading.transforms import build_pipeline

if hasattr(time, "clock_gettime") and hasattr(time, "CLOCK_MONOTONIC"):
    def clock() -> float:
        """Seconds on the machine-wide monotonic clock, the same in every process."""
        return time.clock_gettime(time.CLOCK_MONOTONIC)
else:  # pragma: no cover - Windows
    clock = time.time

COLUMNS = ("epoch", "batch", "worker", "pid", "items", "epoch_start_s", "dispatched_s", "start_s", "end_s",
           "requested_s", "received_s", "step_end_s")
MAIN = "main"  # the worker column of a batch the main process made itself (num_workers=0)


class Tagged(list):
    """A batch's indices and its number in the pass, so that whoever makes the batch can say which one it made."""

    batch: int = -1


class TaggedBatches(Sampler):
    """BATCHES batches of BATCH_SIZE indices, in file order round the dataset; notes when the loader takes each one,
    which is when it is sent to a worker (DataLoader's _try_put_index draws the next batch as it sends it)."""

    def __init__(self, length: int, batch_size: int, batches: int) -> None:
        self.length, self.batch_size, self.batches = length, batch_size, batches
        self.dispatched: dict[int, float] = {}

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[Tagged]:
        self.dispatched = {}
        for b in range(self.batches):
            tagged = Tagged((b * self.batch_size + k) % self.length for k in range(self.batch_size))
            tagged.batch = b
            self.dispatched[b] = clock()
            yield tagged


@dataclass(frozen=True)
class Stamp:
    batch: int
    worker: int | str  # the worker's id, or MAIN
    pid: int
    start: float
    end: float
    items: int


def maker() -> int | str:
    """Who is running this: a DataLoader worker's id, a thread worker's name, or MAIN."""
    info = get_worker_info()
    if info is not None:
        return info.id
    thread = threading.current_thread()
    return MAIN if thread is threading.main_thread() else thread.name


class TimedFetch(Dataset):
    """DATASET fetched a batch at a time (its __getitems__ when it has one) and collated, with a Stamp of who and when."""

    def __init__(self, dataset: Dataset, collate_fn: Callable[[list], Any]) -> None:
        self.dataset, self.collate_fn = dataset, collate_fn

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, indices: Tagged) -> tuple[Any, Stamp]:
        start = clock()
        fetch = getattr(self.dataset, "__getitems__", None)
        items = fetch(list(indices)) if fetch else [self.dataset[i] for i in indices]
        batch = self.collate_fn(items)
        return batch, Stamp(indices.batch, maker(), os.getpid(), start, clock(), len(items))


def as_made(pair: Any) -> Any:
    """The loader's collate_fn when the dataset collates itself: the batch and its stamp, passed on untouched."""
    return pair


def record(data: str | Path | ImageFolderIndex | None = None, workers: int = 2, *, pipeline: str = "fast",
           image_size: int = 128, batch_size: int = 4, batches: int = 8, epochs: int = 1, persistent: bool = False,
           in_order: bool = True, prefetch_factor: int | None = None, consumer_ms: float = 0.0,
           start_method: str | None = None, dataset: Dataset | None = None,
           worker_kind: str = "process") -> list[dict]:
    """Run EPOCHS passes of BATCHES batches and return one row per batch (COLUMNS), seconds from the first iter().

    CONSUMER_MS: a sleep after each batch that stands for a model step (a sleep does not use the CPU, a real step
    would). DATASET replaces the pipeline's dataset over DATA (a dataset with slow files, or with __getitems__).
    WORKER_KIND "thread": the same batches made by WORKERS threads of this process (threads.ThreadLoader).
    """
    for flag, value in (("--persistent", persistent), ("--prefetch-factor", prefetch_factor)):
        options.needs_workers(flag, value, workers, "--workers")
    if dataset is None:
        from ..loading.samples import data_or_sample
        index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data_or_sample(data))
        dataset = build_pipeline(pipeline, image_size, train=False).dataset(index.samples)
    collate = build_pipeline(pipeline, image_size).collate
    sampler = TaggedBatches(len(dataset), batch_size, batches)  # type: ignore[arg-type]
    with past_the_cores(workers), explained_worker_failures():
        if worker_kind == "thread":
            from .threads import ThreadLoader
            loader: Any = ThreadLoader(TimedFetch(dataset, collate), batch_size=1, num_workers=workers,
                                       sampler=sampler, collate_fn=only, in_order=in_order)
            return threads_numbered(run(loader, sampler, epochs=epochs, consumer_ms=consumer_ms))
        loader = make_loader(TimedFetch(dataset, collate), batch_size=None, num_workers=workers, device="cpu",
                             sampler=sampler, persistent_workers=persistent, prefetch_factor=prefetch_factor,
                             start_method=start_method, collate_fn=as_made, in_order=in_order)
        return run(loader, sampler, epochs=epochs, consumer_ms=consumer_ms)


def run(loader: Any, sampler: TaggedBatches, *, epochs: int = 1, consumer_ms: float = 0.0) -> list[dict]:
    """EPOCHS passes over a loader of TimedFetch batches drawn by SAMPLER, as rows (COLUMNS): a loader built in view
    is timed as record's own is."""
    rows: list[dict] = []
    skipped = SkippedFiles()
    origin = clock()
    for epoch in range(epochs):
        rows += one_pass(loader, sampler, epoch, origin, consumer_ms / 1000, skipped)
    return rows


def only(batch: list) -> Any:
    """The thread loader's collate when it is given one TimedFetch batch at a time: that batch."""
    return batch[0]


def threads_numbered(rows: list[dict]) -> list[dict]:
    """Thread workers named 'thread 0', 'thread 1'... in the order they first started a batch."""
    names: dict[Any, str] = {}
    for r in sorted(rows, key=lambda r: r["start_s"]):
        names.setdefault(r["worker"], f"thread {len(names)}")
    return [dict(r, worker=names[r["worker"]]) for r in rows]


def one_pass(loader: Any, sampler: TaggedBatches, epoch: int, origin: float, pause_s: float,
             skipped: SkippedFiles) -> list[dict]:
    """Every batch of one pass, read to its end so the workers shut down cleanly, as rows."""
    began, rows = clock(), []
    for batch_and_stamp in _timed(iter(loader)):
        requested, received, (batch, stamp) = batch_and_stamp
        skipped.note(batch)
        if pause_s:
            time.sleep(pause_s)
        rows.append(dict(epoch=epoch, batch=stamp.batch, worker=stamp.worker, pid=stamp.pid, items=stamp.items,
                         epoch_start_s=began, dispatched_s=sampler.dispatched[stamp.batch], start_s=stamp.start,
                         end_s=stamp.end, requested_s=requested, received_s=received, step_end_s=clock()))
    for row in rows:
        for key in COLUMNS[5:]:
            row[key] -= origin
    return rows


def _timed(it: Iterator) -> Iterator[tuple[float, float, Any]]:
    """Each item of IT with when it was asked for and when it came."""
    while True:
        requested = clock()
        item = next(it, StopIteration)
        if item is StopIteration:
            return
        yield requested, clock(), item


def problems(rows: Sequence[dict]) -> list[str]:
    """What would make the timeline wrong: a worker making two batches at once, a batch received before it was made,
    made before it was sent, or one worker id with two processes within an epoch."""
    found, lanes = [], {}
    for r in rows:
        lanes.setdefault((r["epoch"], r["worker"], r["pid"]), []).append(r)
        if not r["dispatched_s"] <= r["start_s"] <= r["end_s"] <= r["received_s"]:
            found.append(f"epoch {r['epoch']} batch {r['batch']}: sent, made and received out of order")
    for (epoch, worker, _), lane in lanes.items():
        lane.sort(key=lambda r: r["start_s"])
        found += [f"epoch {epoch} worker {worker}: batches {a['batch']} and {b['batch']} overlap"
                  for a, b in zip(lane, lane[1:]) if b["start_s"] < a["end_s"]]
    pids = {}
    for epoch, worker, pid in lanes:
        pids.setdefault((epoch, worker), set()).add(pid)
    found += [f"epoch {e} worker {w}: {len(p)} processes" for (e, w), p in pids.items() if len(p) > 1 and w != MAIN]
    return found


def lane(worker: int | str) -> str:
    """A worker's name in a timeline: 'main', 'worker 0', 'thread 0'."""
    return str(worker) if worker == MAIN or str(worker).startswith("thread") else f"worker {worker}"


def who_made_what(rows: Sequence[dict]) -> dict[str, dict[str, list[int]]]:
    """Per epoch, the batches each worker made: what a timeline shows that does not depend on the machine's speed."""
    out: dict[str, dict[str, list[int]]] = {}
    for r in sorted(rows, key=lambda r: (r["epoch"], r["batch"])):
        out.setdefault(f"epoch {r['epoch']}", {}).setdefault(lane(r["worker"]), []).append(r["batch"])
    return out


def sent_before_first_ask(rows: Sequence[dict], epoch: int = 0) -> int:
    """How many batches of EPOCH the loader had sent to its workers before the main process first asked for one."""
    sel = [r for r in rows if r["epoch"] == epoch]
    first_ask = min(r["requested_s"] for r in sel)
    return sum(r["dispatched_s"] <= first_ask for r in sel)


def summary(rows: Sequence[dict]) -> dict[str, float]:
    """Seconds to the first batch, the main process's total wait (and its share of the time), and the share of time
    the workers sat idle."""
    first = min(rows, key=lambda r: r["received_s"])
    end = max(r["step_end_s"] for r in rows)
    lanes = {(r["epoch"], r["worker"], r["pid"]) for r in rows}
    busy = sum(r["end_s"] - r["start_s"] for r in rows)
    span = sum(max(r["end_s"] for r in rows if (r["epoch"], r["worker"], r["pid"]) == lane)
               - min(r["start_s"] for r in rows if (r["epoch"], r["worker"], r["pid"]) == lane) for lane in lanes)
    main_wait = sum(r["received_s"] - r["requested_s"] for r in rows)
    return dict(first_batch_s=first["received_s"] - first["epoch_start_s"], main_wait_s=main_wait, total_s=end,
                main_wait_fraction=main_wait / end if end > 0 else 0.0,
                worker_idle_fraction=1 - busy / span if span > 0 else 0.0)

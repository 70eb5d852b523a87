"""Measuring a loader: time to the first batch apart from steady throughput, the cost of each step of a chain.

Imports no model and no trainer, so the num_workers slider and every benchmark can use it on its own.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch.utils.data import Dataset

from ..errors import explained_worker_failures
from ..loading.data import SkippedFiles, collate_skipping_bad
from ..loading.loaders import make_loader
from ..machine import one_thread, past_the_cores
from .memory import snapshot, worker_pids


@dataclass
class StreamTiming:
    startup_s: float                 # iterator creation to first batch: worker start-up plus one batch's work
    images_per_s: float              # steady state, warm-up excluded
    data_wait_fraction: float | None  # share of step time spent in next(loader); None when nothing consumes batches
    images: int
    batches: int
    pss_mb: float | None = None         # main process plus workers at the end of the window (memory=True)
    pss_growth_mb: float | None = None  # over the window


def time_stream(loader: Iterable, batches: int = 10, warmup: int = 1,
                step: Callable[[object], None] | None = None,
                clock: Callable[[], float] = time.perf_counter, memory: bool = False) -> StreamTiming:
    """One fresh pass: time to the first batch, WARMUP untimed batches, then BATCHES timed ones, each fed to STEP.

    MEMORY reads the PSS of this process and the workers at both ends of the timed window, outside it.
    """
    start = clock()
    it = iter(loader)
    first = next(it)
    startup = clock() - start
    skipped = SkippedFiles()
    batch = first
    for drawn in range(warmup + 1):  # each warm-up batch is stepped as it comes, so the window starts in step
        if drawn:
            batch = next(it, None)
        if batch is not None and skipped.note(batch) and step is not None:
            step(batch)
    images = done = 0
    waited = 0.0
    window_start = snapshot(worker_pids(it)) if memory else None
    start = clock()
    while done < batches:
        before = clock()
        batch = next(it, StopIteration)
        waited += clock() - before
        if batch is StopIteration:
            break
        done += 1
        if not skipped.note(batch):
            continue
        if step is not None:
            step(batch)
        images += len(batch[1])
    elapsed = clock() - start
    window_end = snapshot(worker_pids(it)) if memory else None
    del it  # shut the workers down before the next measurement
    if done == 0:
        raise ValueError("The loader ran out before any timed batch: use fewer warm-up batches or more data.")
    timing = StreamTiming(startup, images / elapsed, waited / elapsed if step is not None else None, images, done)
    if window_start and window_end:
        timing.pss_mb = window_end.total_pss_mb
        timing.pss_growth_mb = window_end.total_pss_mb - window_start.total_pss_mb
    return timing


def step_costs(inputs: Sequence, steps: Sequence[tuple[str, Callable]], repeats: int = 3) -> list[dict]:
    """Milliseconds per image for each step of a chain, each step timed on the previous step's real outputs.

    On one thread, as in a worker (torch/utils/data/_utils/worker.py sets it): with torch's default threads, a step on
    a shared machine waits for a second core at every op (a 512 px normalize read 24 ms instead of 1 to 7).
    """
    rows, current = [], list(inputs)
    for name, fn in steps:
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            with one_thread():
                outputs = [fn(x) for x in current]
            seconds.append((time.perf_counter() - start) / len(current))
        rows.append(dict(step=name, ms_per_image=1000 * statistics.median(seconds),
                         ms_min=1000 * min(seconds), ms_max=1000 * max(seconds)))
        current = outputs
    return rows


def stream_window(num_workers: int, batches: int, step: Callable | None) -> tuple[int, int]:
    """Untimed warm-up batches and timed batches for NUM_WORKERS workers (or threads) prefetching two batches each."""
    warmup = 1 + 2 * num_workers  # let the first burst of prefetched batches drain before timing
    # Batches arrive in order, so while the loop waits on one, up to 2n later ones can finish and pile up; a
    # loader-only window of 16n batches keeps that pile under an eighth of what is timed.
    # (Measured: 8 workers on 2 cores read 2645 images/s over 16 batches, 1106 over 64.)
    return warmup, batches if step is not None else max(batches, 16 * num_workers)


def measure_loader(dataset: Dataset, num_workers: int, *, batch_size: int, batches: int, repeats: int = 1,
                   device: str | torch.device = "cpu", seed: int = 0, start_method: str | None = None,
                   step: Callable[[object], None] | None = None,
                   collate_fn: Callable[[list], object] = collate_skipping_bad,
                   memory: bool = False, worker_kind: str = "process") -> list[StreamTiming]:
    """Time one num_workers setting REPEATS times, with the warm-up and window every measurement here shares.

    STEP consumes each batch (the model's training step); without one, batches are only drawn from the loader.
    WORKER_KIND 'thread': the same batches made by num_workers threads (helpers.timing.threads) instead of processes.
    """
    with past_the_cores(num_workers):
        warmup, timed = stream_window(num_workers, batches, step)
        processes = num_workers if worker_kind == "process" else 0
        loader = make_loader(dataset, batch_size=batch_size, num_workers=processes, device=device, seed=seed,
                             persistent_workers=False,  # every repeat starts its workers: start-up is measured
                             num_samples=(warmup + timed + 1) * batch_size, start_method=start_method,
                             collate_fn=collate_fn)
        if worker_kind == "thread":
            from .threads import with_threads
            loader = with_threads(loader, num_workers)
        runs = []
        for _ in range(repeats):
            with explained_worker_failures():
                runs.append(time_stream(loader, timed, warmup, step, memory=memory))
        return runs


def default_batch_size(pipeline: str, device: torch.device) -> int:
    """The blog's 4 for its pipeline; for the fast one, a batch that keeps a GPU busy, or a modest one on the CPU."""
    if pipeline == "blog":
        return 4
    return 256 if device.type == "cuda" else 32

"""Measuring a DataLoader: worker start-up apart from steady-state throughput, repeated, reported as medians."""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .data import ImageFolderIndex, index_image_folder
from .loaders import build_loaders


@dataclass
class LoaderTiming:
    startup_s: float      # iterator creation to first batch: worker start plus one batch's work
    images_per_s: float   # steady state, after warm-up
    images: int
    batches: int


def time_loader(loader: Iterable, batches: int = 10, warmup: int = 1) -> LoaderTiming:
    """Time one pass: start-up to the first batch, then WARMUP untimed batches, then BATCHES timed ones."""
    start = time.perf_counter()
    it = iter(loader)
    next(it)
    startup = time.perf_counter() - start
    for _ in range(warmup):
        next(it, None)
    images, done = 0, 0
    start = time.perf_counter()
    for batch in it:
        if batch is not None:
            images += len(batch[1])
        done += 1
        if done >= batches:
            break
    elapsed = time.perf_counter() - start
    del it  # shut the workers down before the next measurement
    if done == 0:
        raise ValueError("The loader ran out before any timed batch: use fewer warm-up batches or more data.")
    return LoaderTiming(startup, images / elapsed, images, done)


def machine_summary() -> str:
    """The facts a throughput number means nothing without."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}"


def sweep_workers(data: str | Path | ImageFolderIndex, workers: Sequence[int] = (0, 1, 2), *,
                  pipeline: str = "standard", image_size: int = 224, batch_size: int = 16, batches: int = 8,
                  warmup: int = 1, repeats: int = 3, seed: int = 0, start_method: str | None = None) -> list[dict]:
    """Loader-only throughput for each worker count: median and spread over REPEATS fresh iterators."""
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    rows = []
    for n in workers:
        loader = build_loaders(index, pipeline=pipeline, image_size=image_size, batch_size=batch_size,
                               num_workers=n, seed=seed, device="cpu", start_method=start_method).train
        runs = [time_loader(loader, batches, warmup) for _ in range(repeats)]
        speeds = [r.images_per_s for r in runs]
        rows.append(dict(num_workers=n, images_per_s=statistics.median(speeds), images_per_s_min=min(speeds),
                         images_per_s_max=max(speeds), startup_s=statistics.median(r.startup_s for r in runs),
                         images_timed=sum(r.images for r in runs)))
    return rows


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A plain-text table; COLUMNS are (key, header, format spec)."""
    cells = [[header for _, header, _ in columns]]
    cells += [[format(row[key], spec) for key, _, spec in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


SWEEP_COLUMNS = (
    ("num_workers", "num_workers", "d"),
    ("images_per_s", "images/s (median)", ".1f"),
    ("images_per_s_min", "min", ".1f"),
    ("images_per_s_max", "max", ".1f"),
    ("startup_s", "start-up s", ".2f"),
)

"""Where a loader's time goes: each step of a worker's work, the collate, and the trip to the main process."""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import torch
from torch.utils.data import Dataset, default_collate

from ..loading.data import ImageFolderIndex, index_image_folder
from ..loading.loaders import resolve_device
from ..machine import one_thread
from .measure import default_batch_size, measure_loader, step_costs
from .sweep import sweep
from .tables import format_table
from ..loading.transforms import pipeline_steps, run_steps


class Ceilings(Protocol):
    """What against() reads from a bench result (helpers.timing.bench.BenchResult has it): rows, and the CPU ceiling."""

    rows: list[dict]
    one_core_images_per_s: dict[str, float]
    cores: int


class ConstantImages(Dataset):
    """Ready-made images of one dtype: a loader over them spends its time on collate and the trip between processes."""

    def __init__(self, image_size: int, dtype: torch.dtype, length: int = 256) -> None:
        self.image, self.length = torch.zeros(3, image_size, image_size, dtype=dtype), length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.image, 0


def transfer_costs(image_size: int = 512, batch_size: int = 32,
                   dtypes: Sequence[torch.dtype] = (torch.float32, torch.uint8), workers: Sequence[int] = (0, 1, 2),
                   batches: int = 8, repeats: int = 3, start_method: str | None = None) -> list[dict]:
    """What collating a batch and moving it out of a worker costs, per dtype, with no decoding to hide it; the settings
    take turns within each repeat (helpers.timing.sweep).

    With 0 workers the batch is stacked in this process on one thread, as a worker would stack it, so the
    difference to 1 worker is the trip alone, not a difference in threads.
    """
    datasets = {dtype: ConstantImages(image_size, dtype) for dtype in dtypes}

    def once(setting: tuple[torch.dtype, int]) -> float:
        dtype, n = setting
        with one_thread() if n == 0 else contextlib.nullcontext():
            run, = measure_loader(datasets[dtype], n, batch_size=batch_size, batches=batches,
                                  start_method=start_method)
        return 1000 * batch_size / run.images_per_s

    rows = []
    for row in sweep([(d, n) for d in dtypes for n in workers], once, repeats, higher_is_better=False):
        dtype, n = row.setting
        image = datasets[dtype].image
        mb = batch_size * image.numel() * image.element_size() / 1e6
        rows.append(dict(dtype=str(dtype).removeprefix("torch."), num_workers=n, batch_size=batch_size,
                         image_size=image_size, mb_per_batch=mb, ms_per_batch=row.median,
                         ms_min=row.min, ms_max=row.max, mb_per_s=mb / row.median * 1000))
    return rows


def pin_costs(image_size: int = 512, batch_size: int = 256, repeats: int = 5) -> list[dict]:
    """What pinning one uint8 batch costs on CUDA, as the loader's pin-memory thread does it for every batch.

    Each batch is a fresh shared-memory tensor, as one arriving from a worker is; the first pin also allocates
    page-locked memory, later ones can reuse what the caching host allocator kept.
    """
    shape = (batch_size, 3, image_size, image_size)
    mb = batch_size * 3 * image_size * image_size / 1e6
    rows = []
    for k in range(repeats):
        batch = torch.ones(shape, dtype=torch.uint8).share_memory_()
        start = time.perf_counter()
        pinned = batch.pin_memory()
        seconds = time.perf_counter() - start
        rows.append(dict(pin=k + 1, mb_per_batch=mb, ms=1000 * seconds, gb_per_s=mb / 1000 / seconds,
                         images_per_s=batch_size / seconds))
        del pinned
    return rows


def where_time_goes(paths: Sequence[str], pipeline: str, image_size: int = 512, batch_size: int = 32,
                    repeats: int = 3, start_method: str | None = None) -> list[dict]:
    """A worker's cost per image split into its parts (each step, collate, the trip to the main process), on one thread."""
    steps = pipeline_steps(pipeline, image_size, train=True)
    files = [paths[i % len(paths)] for i in range(max(batch_size, 32))]  # a batch of 4 is too few to time a step
    with one_thread():
        rows = [dict(part=r["step"], ms_per_image=r["ms_per_image"]) for r in step_costs(files, steps, repeats)]
        items = [(run_steps(steps, f)[-1], 0) for f in files[:batch_size]]
        seconds = []
        for _ in range(max(repeats, 10)):  # one collate is a few milliseconds: take the median of many
            start = time.perf_counter()
            default_collate(items)
            seconds.append(time.perf_counter() - start)
    rows.append(dict(part="collate (stack the batch)", ms_per_image=1000 * statistics.median(seconds) / batch_size))
    # Collate is counted above, so the trip is what one worker adds over making the same batches in-process.
    trip = {r["num_workers"]: r["ms_per_batch"] for r in transfer_costs(
        image_size, batch_size, (items[0][0].dtype,), (0, 1), repeats=repeats, start_method=start_method)}
    rows.append(dict(part="the trip to the main process", ms_per_image=max(0.0, trip[1] - trip[0]) / batch_size))
    return rows


TRANSFER_COLUMNS = (
    ("dtype", "dtype", "s"),
    ("num_workers", "workers", "d"),
    ("batch_size", "batch", "d"),
    ("mb_per_batch", "MB/batch", ".1f"),
    ("ms_per_batch", "ms/batch", ".1f"),
    ("ms_min", "min", ".1f"),
    ("ms_max", "max", ".1f"),
    ("mb_per_s", "MB/s", ".0f"),
)


@dataclass
class Breakdown:
    costs: dict[str, list[dict]]  # per pipeline (labelled with its batch size): where_time_goes rows
    transfer: list[dict]          # transfer_costs rows, float32 against uint8

    def report(self) -> str:
        """Each pipeline's parts in milliseconds per image and what they add up to, then the trip by dtype."""
        lines = []
        for pipeline, rows in self.costs.items():
            total = sum(r["ms_per_image"] for r in rows)
            lines.append(f"{pipeline}: " + ", ".join(f"{r['part']} {r['ms_per_image']:.2f}" for r in rows)
                         + f" ms per image; {total:.2f} ms in all = {1000 / total:.0f} images/s per core")
        return "\n".join(lines + ["", format_table(self.transfer, TRANSFER_COLUMNS)])

    def against(self, result: Ceilings) -> str:
        """Each pipeline's best loader-only throughput beside its CPU ceiling, and beside one that pays for the trip."""
        lines = []
        for label, rows in self.costs.items():
            pipeline = label.split()[0]
            measured = [r["images_per_s"] for r in result.rows if r["pipeline"] == pipeline and r["mode"] == "loader"
                        and r.get("loader", "dataloader") == "dataloader"]  # the trip is a worker process's
            if not measured or pipeline not in result.one_core_images_per_s:
                continue
            ceiling = result.one_core_images_per_s[pipeline] * result.cores
            trip = rows[-1]["ms_per_image"] / sum(r["ms_per_image"] for r in rows)
            lines.append(f"{pipeline}: best {max(measured):.0f} images/s = {max(measured) / ceiling:.0%} of the CPU "
                         f"ceiling ({ceiling:.0f}); the trip takes {trip:.0%} of a worker's time, and a ceiling that "
                         f"pays for it is {ceiling * (1 - trip):.0f} images/s "
                         f"({max(measured) / (ceiling * (1 - trip)):.0%} of it reached)")
        return "\n".join(lines)


def explain(data: str | Path | ImageFolderIndex, pipelines: Sequence[str] = ("blog", "fast"), image_size: int = 512,
            batch_size: int | None = None, device: str = "auto", repeats: int = 3,
            transfer_workers: Sequence[int] = (0, 1, 2), start_method: str | None = None) -> Breakdown:
    """Where the loader's time goes for each pipeline, and what the float32 and uint8 batches cost to move."""
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    paths = [s.path for s in index.samples]
    dev = resolve_device(device)
    costs = {}
    for pipeline in (p for p in pipelines if p != "gpu"):  # the gpu pipeline's work happens outside the workers
        size = batch_size or default_batch_size(pipeline, dev)
        costs[f"{pipeline} (batch {size})"] = where_time_goes(paths, pipeline, image_size, size, repeats, start_method)
    transfer = transfer_costs(image_size, batch_size or default_batch_size("fast", dev), workers=transfer_workers,
                              repeats=repeats, start_method=start_method)
    return Breakdown(costs, transfer)

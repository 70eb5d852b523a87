"""Timing num_workers honestly: start-up apart from steady state, warm-up excluded, medians over repeats, a ceiling."""
from __future__ import annotations

import contextlib
import csv
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from .data import ImageDataset, ImageFolderIndex, index_image_folder
from .gpu_decode import NO_CUDA_NOTE, DeviceDecode, collate_encoded, encoded_loader
from .loaders import SkippedFiles, collate_skipping_bad, make_loader, resolve_device
from .model import build_model
from .train import train_step
from .transforms import build_pipeline, pipeline_steps, run_steps

CSV_COLUMNS = ("pipeline", "mode", "num_workers", "batch_size", "image_size", "device", "images_per_s",
               "images_per_s_min", "images_per_s_max", "startup_s", "data_wait_fraction", "ceiling_fraction")


@dataclass
class StreamTiming:
    startup_s: float                 # iterator creation to first batch: worker start-up plus one batch's work
    images_per_s: float              # steady state, warm-up excluded
    data_wait_fraction: float | None  # share of step time spent in next(loader); None when nothing consumes batches
    images: int
    batches: int


def time_stream(loader: Iterable, batches: int = 10, warmup: int = 1,
                step: Callable[[object], None] | None = None) -> StreamTiming:
    """One fresh pass: time to the first batch, WARMUP untimed batches, then BATCHES timed ones, each fed to STEP."""
    start = time.perf_counter()
    it = iter(loader)
    first = next(it)
    startup = time.perf_counter() - start
    skipped = SkippedFiles()
    for batch in [first] + [next(it, None) for _ in range(warmup)]:
        if batch is not None and skipped.note(batch) and step is not None:
            step(batch)
    images = done = 0
    waited = 0.0
    start = time.perf_counter()
    while done < batches:
        before = time.perf_counter()
        batch = next(it, StopIteration)
        waited += time.perf_counter() - before
        if batch is StopIteration:
            break
        done += 1
        if not skipped.note(batch):
            continue
        if step is not None:
            step(batch)
        images += len(batch[1])
    elapsed = time.perf_counter() - start
    del it  # shut the workers down before the next measurement
    if done == 0:
        raise ValueError("The loader ran out before any timed batch: use fewer warm-up batches or more data.")
    return StreamTiming(startup, images / elapsed, waited / elapsed if step is not None else None, images, done)


def step_costs(inputs: Sequence, steps: Sequence[tuple[str, Callable]], repeats: int = 3) -> list[dict]:
    """Milliseconds per image for each step of a chain, each step timed on the previous step's real outputs."""
    rows, current = [], list(inputs)
    for name, fn in steps:
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            outputs = [fn(x) for x in current]
            seconds.append((time.perf_counter() - start) / len(current))
        rows.append(dict(step=name, ms_per_image=1000 * statistics.median(seconds),
                         ms_min=1000 * min(seconds), ms_max=1000 * max(seconds)))
        current = outputs
    return rows


def measure_loader(dataset: Dataset, num_workers: int, *, batch_size: int, batches: int, repeats: int = 1,
                   device: str | torch.device = "cpu", seed: int = 0, start_method: str | None = None,
                   step: Callable[[object], None] | None = None,
                   on_repeat: Callable[[], object] | None = None,
                   collate_fn: Callable[[list], object] = collate_skipping_bad) -> list[StreamTiming]:
    """Time one num_workers setting REPEATS times, with the warm-up and window every measurement here shares.

    STEP consumes each batch (the model's training step); without one, batches are only drawn from the loader.
    """
    warmup = 1 + 2 * num_workers  # let the first burst of prefetched batches drain before timing
    # Batches arrive in order, so while the loop waits on one, up to 2n later ones can finish and pile up; a
    # loader-only window of 16n batches keeps that pile under an eighth of what is timed.
    # (Measured: 8 workers on 2 cores read 2645 images/s over 16 batches, 1106 over 64.)
    timed = batches if step is not None else max(batches, 16 * num_workers)
    loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers, device=device, seed=seed,
                         num_samples=(warmup + timed + 1) * batch_size, start_method=start_method,
                         collate_fn=collate_fn)
    runs = []
    for _ in range(repeats):
        runs.append(time_stream(loader, timed, warmup, step))
        if on_repeat is not None:
            on_repeat()
    return runs


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_summary() -> str:
    """The facts a throughput number means nothing without."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{usable_cores()} CPU cores, {gpu}, torch {torch.__version__}"


@contextlib.contextmanager
def one_thread():
    """Run torch ops on one thread, as a DataLoader worker does, so a cost measured here is a worker's cost."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def one_core_throughput(dataset: ImageDataset, batch_size: int, seconds: float = 2.0) -> float:
    """Images per second for the whole per-image pipeline plus collate, in this process on one thread."""
    with one_thread():
        collate_skipping_bad([dataset[k % len(dataset)] for k in range(batch_size)])  # warm-up, not timed
        images, start, i = 0, time.perf_counter(), batch_size
        while time.perf_counter() - start < seconds or images < batch_size:
            batch = collate_skipping_bad([dataset[(i + k) % len(dataset)] for k in range(batch_size)])
            images += len(batch[1]) if batch else 0
            i += batch_size
        return images / (time.perf_counter() - start)


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
    """What collating a batch and moving it out of a worker costs, per dtype, with no decoding to hide it.

    With 0 workers the batch is stacked in this process on one thread, as a worker would stack it, so the
    difference to 1 worker is the trip alone, not a difference in threads.
    """
    rows = []
    for dtype in dtypes:
        dataset = ConstantImages(image_size, dtype)
        mb = batch_size * dataset.image.numel() * dataset.image.element_size() / 1e6
        for n in workers:
            with one_thread() if n == 0 else contextlib.nullcontext():
                runs = measure_loader(dataset, n, batch_size=batch_size, batches=batches, repeats=repeats,
                                      start_method=start_method)
            ms = [1000 * batch_size / r.images_per_s for r in runs]
            rows.append(dict(dtype=str(dtype).removeprefix("torch."), num_workers=n, batch_size=batch_size,
                             image_size=image_size, mb_per_batch=mb, ms_per_batch=statistics.median(ms),
                             ms_min=min(ms), ms_max=max(ms), mb_per_s=mb / statistics.median(ms) * 1000))
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

    def against(self, result: BenchResult) -> str:
        """Each pipeline's best loader-only throughput beside its CPU ceiling, and beside one that pays for the trip."""
        lines = []
        for label, rows in self.costs.items():
            pipeline = label.split()[0]
            measured = [r["images_per_s"] for r in result.rows if r["pipeline"] == pipeline and r["mode"] == "loader"]
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


class TrainingStep:
    """The frozen ResNet18's training step, for end-to-end timing; synchronizes so each step's time is its own."""

    def __init__(self, device: torch.device, normalize_on_device: bool, pretrained: bool = False) -> None:
        self.device, self.normalize = device, normalize_on_device
        self.model = build_model(2, pretrained=pretrained).to(device).train()
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.head.parameters(), lr=1e-3)
        self.criterion = nn.CrossEntropyLoss()

    def __call__(self, batch) -> None:
        images, labels = batch
        train_step(self.model, images, labels, self.criterion, self.optimizer, self.device, self.normalize)
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def throughput_on_device(self, batch, steps: int = 10) -> float:
        """The model's own ceiling: images per second on one batch already on the device."""
        images, labels = (t.to(self.device) for t in batch)
        for _ in range(2):
            self((images, labels))
        start = time.perf_counter()
        for _ in range(steps):
            self((images, labels))
        return steps * len(labels) / (time.perf_counter() - start)


@dataclass
class BenchResult:
    rows: list[dict]
    one_core_images_per_s: dict[str, float]   # per pipeline
    cores: int
    model_images_per_s: dict[str, float] = field(default_factory=dict)  # per pipeline, end-to-end mode only
    machine: str = ""
    notes: list[str] = field(default_factory=list)  # pipelines skipped, and why

    def recommendation(self, pipeline: str, mode: str) -> dict | None:
        """The smallest num_workers within 5 % of the best median, with the settings that go with it."""
        rows = [r for r in self.rows if r["pipeline"] == pipeline and r["mode"] == mode]
        if not rows:
            return None
        best = max(r["images_per_s"] for r in rows)
        pick = min((r for r in rows if r["images_per_s"] >= 0.95 * best), key=lambda r: r["num_workers"])
        return dict(num_workers=pick["num_workers"], images_per_s=pick["images_per_s"],
                    persistent_workers=pick["num_workers"] > 0,
                    prefetch_factor=2 if pick["num_workers"] > 0 else None,
                    pin_memory=pick["device"].startswith("cuda"))


def bench(data: str | Path | ImageFolderIndex, workers: Sequence[int] = (0, 1, 2, 4), *,
          pipelines: Sequence[str] = ("blog", "fast"), models: Sequence[str] = ("none",), image_size: int = 512,
          batch_size: int | None = None, batches: int = 20, repeats: int = 3, device: str = "auto",
          start_method: str | None = None, seed: int = 0, progress: bool = True,
          decode_on_cpu: bool = False) -> BenchResult:
    """Sweep num_workers for each pipeline and mode; loader-only when model is 'none', else loader plus training.

    The gpu pipeline needs CUDA and is skipped with a note without it; decode_on_cpu runs its code on the CPU instead
    (libjpeg-turbo in the main process), which checks the path but measures nothing worth quoting.
    """
    from tqdm.auto import tqdm

    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    dev = resolve_device(device)
    result = BenchResult([], {}, usable_cores(), machine=machine_summary())
    jobs = [(p, m, n) for p in pipelines for m in models for n in workers]
    bar = tqdm(total=len(jobs) * repeats, desc="bench", disable=not progress, unit="run")
    for pipeline in pipelines:
        if pipeline == "gpu" and dev.type != "cuda" and not decode_on_cpu:
            result.notes.append(NO_CUDA_NOTE)
            bar.update(len(models) * len(workers) * repeats)
            continue
        dataset, collate, finish, normalize = _bench_pipeline(index, pipeline, image_size, dev)
        size = batch_size or default_batch_size(pipeline, dev)
        if finish is None:  # the gpu pipeline's workers only read bytes: one core's throughput bounds nothing
            result.one_core_images_per_s[pipeline] = one_core_throughput(dataset, size)
        ceiling = result.one_core_images_per_s.get(pipeline, 0.0) * result.cores
        for model in models:
            train = TrainingStep(dev, normalize) if model == "resnet18" else None
            step = _chain(finish, train)
            if train is not None:
                sample = collate([dataset[i % len(dataset)] for i in range(size)])
                result.model_images_per_s[pipeline] = train.throughput_on_device(finish(sample) if finish else sample)
            for n in workers:
                runs = measure_loader(dataset, n, batch_size=size, batches=batches, repeats=repeats, device=dev,
                                      seed=seed, start_method=start_method, step=step, on_repeat=bar.update,
                                      collate_fn=collate)
                speeds = [r.images_per_s for r in runs]
                waits = [r.data_wait_fraction for r in runs if r.data_wait_fraction is not None and train]
                result.rows.append(dict(
                    pipeline=pipeline, mode="loader" if train is None else "end-to-end", num_workers=n,
                    batch_size=size, image_size=image_size, device=str(dev),
                    images_per_s=statistics.median(speeds), images_per_s_min=min(speeds),
                    images_per_s_max=max(speeds), startup_s=statistics.median(r.startup_s for r in runs),
                    data_wait_fraction=statistics.median(waits) if waits else None,
                    ceiling_fraction=statistics.median(speeds) / ceiling if ceiling else None))
    bar.close()
    return result


def _bench_pipeline(index: ImageFolderIndex, pipeline: str, image_size: int, device: torch.device):
    """The dataset, collate function, device-side finish (or None) and normalize flag that PIPELINE is timed with."""
    if pipeline == "gpu":
        decode = DeviceDecode(device, image_size)
        finish = (lambda batch: _synchronized(decode(batch), device)) if device.type == "cuda" else decode
        return ImageDataset(index.samples, None, encoded_loader(image_size)), collate_encoded, finish, True
    pipe = build_pipeline(pipeline, image_size, train=True)
    return ImageDataset(index.samples, pipe.transform, pipe.loader), collate_skipping_bad, None, pipe.normalize_on_device


def _synchronized(value, device: torch.device):
    """Wait for DEVICE's queued work, so the time of a step that launches kernels includes them."""
    torch.cuda.synchronize(device)
    return value


def _chain(finish: Callable | None, train: Callable | None) -> Callable | None:
    """One consumer from the loader's device-side finish and the model's step; None when there is neither."""
    if finish is None:
        return train
    if train is None:
        return finish
    return lambda batch: train(finish(batch))


def default_batch_size(pipeline: str, device: torch.device) -> int:
    """The blog's 4 for its pipeline; for the fast one, a batch that keeps a GPU busy, or a modest one on the CPU."""
    if pipeline == "blog":
        return 4
    return 256 if device.type == "cuda" else 32


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A plain-text table; COLUMNS are (key, header, format spec); None prints as '-'."""
    cells = [[header for _, header, _ in columns]]
    cells += [["-" if row[key] is None else format(row[key], spec) for key, _, spec in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


BENCH_COLUMNS = (
    ("pipeline", "pipeline", "s"),
    ("mode", "mode", "s"),
    ("num_workers", "workers", "d"),
    ("batch_size", "batch", "d"),
    ("images_per_s", "images/s", ".1f"),
    ("images_per_s_min", "min", ".1f"),
    ("images_per_s_max", "max", ".1f"),
    ("startup_s", "start-up s", ".2f"),
    ("data_wait_fraction", "data wait", ".0%"),
    ("ceiling_fraction", "of CPU ceiling", ".0%"),
)


def report(result: BenchResult) -> str:
    """The table, the ceilings it is measured against, and a recommendation per pipeline and mode."""
    lines = [f"Measured on {result.machine}", format_table(result.rows, BENCH_COLUMNS), "", *result.notes]
    for pipeline, one in result.one_core_images_per_s.items():
        lines.append(f"CPU ceiling, {pipeline}: {result.cores} cores x {one:.1f} images/s on one core, one thread "
                     f"= {one * result.cores:.1f} images/s")
        if pipeline in result.model_images_per_s:
            lines.append(f"Model ceiling, {pipeline}: {result.model_images_per_s[pipeline]:.1f} images/s "
                         f"on batches already on the device")
    for pipeline, mode in dict.fromkeys((r["pipeline"], r["mode"]) for r in result.rows):
        rec = result.recommendation(pipeline, mode)
        lines.append(f"Recommended for {pipeline}, {mode}: num_workers={rec['num_workers']} "
                     f"({rec['images_per_s']:.1f} images/s, within 5% of the best), "
                     f"persistent_workers={rec['persistent_workers']}, prefetch_factor={rec['prefetch_factor']}, "
                     f"pin_memory={rec['pin_memory']}")
    return "\n".join(lines)


def write_csv(rows: Sequence[dict], path: str | Path) -> None:
    write_rows(rows, path, CSV_COLUMNS)


def write_rows(rows: Sequence[dict], path: str | Path, columns: Sequence[str] | None = None) -> None:
    """ROWS as CSV, with COLUMNS (default: the first row's keys) in that order."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns or rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: str | Path) -> list[dict]:
    """Rows written by write_csv, with numbers as numbers and empty cells as None."""
    def value(text: str):
        if text == "":
            return None
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]

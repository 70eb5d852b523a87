"""Measure the loader's knobs on this machine and write results/knobs_<tag>_<part>.{txt,csv,png}: which steps
release the GIL (gil), prefetch_factor 1-8 (prefetch), __getitems__ for the fast pipeline (getitems), and in_order
against a few very large files (in_order).

    PYTHONPATH=$PWD .venv/bin/python scripts/measure_knobs.py --data data/sample --tag cpu2 --gil-attempts 10
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg, read_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import options  # noqa: E402
from helpers.errors import explained_worker_failures  # noqa: E402
from helpers.lessons.plots import plot_settings  # noqa: E402
from helpers.lessons.timeline_plot import plot_timeline  # noqa: E402
from helpers.loading.data import ImageDataset, ImageFolderIndex, decodes_scaled, index_image_folder  # noqa: E402
from helpers.loading.loaders import make_loader  # noqa: E402
from helpers.loading.transforms import build_pipeline, pipeline_steps  # noqa: E402
from helpers.machine import conditions_line, load_average, machine_summary, past_the_cores  # noqa: E402
from helpers.timing import threads, timeline  # noqa: E402
from helpers.timing.measure import stream_window, time_stream  # noqa: E402
from helpers.timing.memory import batch_mb  # noqa: E402
from helpers.timing.sweep import sweep  # noqa: E402
from helpers.timing.tables import format_table, write_rows  # noqa: E402

PARTS = ("gil", "prefetch", "getitems", "in_order")
SWEEP = [("images_per_s", "images/s", ".1f"), ("images_per_s_min", "min", ".1f"), ("images_per_s_max", "max", ".1f"),
         ("startup_s", "start-up s", ".2f"), ("pss_mb", "PSS MB", ".0f")]


def with_slow_files(src: ImageFolderIndex, dest: str | Path, large: int = 2, large_px: int = 4000,
                    every: int = 8, seed: int = 0) -> ImageFolderIndex:
    """A copy of SRC's files with LARGE very large JPEGs (LARGE_PX wide) at places EVERY, 3 x EVERY, ... of the file
    order: each takes many times a small file's decode, the slow file that holds up the batches behind it."""
    dest = Path(dest)
    rng = np.random.default_rng(seed)
    names = []
    for k, sample in enumerate(src.samples):
        cls = src.classes[sample.label]
        target = dest / cls / f"{k:05d}{Path(sample.path).suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample.path, target)
        names.append(target)
    for j in range(large):
        place = min(every * (2 * j + 1) - 1, len(names) - 1)  # the large file lands at EVERY, 3 x EVERY, ...
        while place > 0 and header_size(names[place]) == (0, 0):  # a bad file cannot be enlarged: the one before
            place -= 1
        with Image.open(names[place]) as small:
            image = small.convert("RGB").resize((large_px, large_px * 3 // 4))
        noise = rng.integers(-12, 13, (image.height, image.width, 3))  # fine grain, as a real photo has
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
        image.save(names[place].with_name(f"{names[place].stem}a.jpg"), quality=92)  # sorts right after it
    return index_image_folder(dest)


def slow_positions(index: ImageFolderIndex, min_pixels: int = 4_000_000) -> list[int]:
    """Where in the file order the very large files are (their size read from the header only)."""
    return [k for k, (w, h) in enumerate(map(header_size, index.samples)) if w * h >= min_pixels]


def header_size(sample: Any) -> tuple[int, int]:
    """(width, height) from the header of a sample's (or a path's) file, (0, 0) for a file that is not an image."""
    try:
        with Image.open(getattr(sample, "path", sample)) as img:
            return img.size
    except (OSError, ValueError):
        return (0, 0)


class FetchedTogether(Dataset):
    """The fast pipeline's dataset with __getitems__: the DataLoader asks for a batch's files in one call, so a batch's
    files are read, then decoded with one decode_jpeg call on the list, then resized (torch/utils/data/_utils/fetch.py
    calls __getitems__ when a dataset has it)."""

    def __init__(self, dataset: ImageDataset, image_size: int) -> None:
        self.dataset, self.image_size = dataset, image_size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, indices: Sequence[int]) -> list:
        samples = [self.dataset.samples[i] for i in indices]
        try:
            files = [read_file(s.path) for s in samples]
            if any(decodes_scaled(f, self.image_size) for f in files):  # the pipeline scales these: one at a time too
                return [self.dataset[i] for i in indices]
            images = decode_jpeg(files, mode=ImageReadMode.RGB, apply_exif_orientation=True)
        except RuntimeError:  # a bad or non-JPEG file among them: one at a time, so only that file is skipped
            return [self.dataset[i] for i in indices]
        return [(self.dataset.transform(image), s.label) for image, s in zip(images, samples)]


def loader_sweep(dataset: Dataset | Sequence[Dataset], settings: Sequence[dict], *, workers: int = 2,
                 batch_size: int = 32, batches: int = 40, repeats: int = 3, seed: int = 0,
                 image_size: int | None = None, reference: int | None = None) -> list[dict]:
    """Images/s (every repeat), start-up and PSS for each SETTING, a dict of make_loader's keyword arguments (in_order,
    prefetch_factor); IMAGE_SIZE adds the uint8 batches in flight (workers x prefetch_factor x one batch) in MB.

    DATASET is one for all settings or one per setting; each row's verdict is against the setting numbered REFERENCE,
    or the one before it when None.
    """
    datasets = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset] * len(settings)
    warmup, timed = stream_window(workers, batches, None)

    def once(k: int) -> Any:
        with past_the_cores(workers), explained_worker_failures():
            loader = make_loader(datasets[k], batch_size=batch_size, num_workers=workers, device="cpu", seed=seed,
                                 persistent_workers=False, num_samples=(warmup + timed + 1) * batch_size,
                                 **settings[k])
            return time_stream(loader, timed, warmup, memory=True)

    rows = []
    for swept in sweep(range(len(settings)), once, repeats, value=lambda r: r.images_per_s, reference=reference):
        setting = settings[swept.setting]
        row = dict(setting, num_workers=workers, batch_size=batch_size, images_per_s=swept.median,
                   images_per_s_min=swept.min, images_per_s_max=swept.max,
                   startup_s=swept.median_of(lambda r: r.startup_s), pss_mb=swept.median_of(lambda r: r.pss_mb),
                   repeats=swept.values, verdict=swept.verdict)
        if image_size:
            in_flight = workers * (setting.get("prefetch_factor") or 2)
            row["in_flight_mb"] = in_flight * batch_mb(batch_size, image_size, torch.uint8)
        rows.append(row)
    return rows


def fast_dataset(index: ImageFolderIndex, image_size: int, together: bool = False) -> Dataset:
    """The fast pipeline's dataset over INDEX, one file per call or (TOGETHER) a batch per call."""
    dataset = build_pipeline("fast", image_size).dataset(index.samples)
    return FetchedTogether(dataset, image_size) if together else dataset


def in_order_costs(rows: Sequence[dict]) -> list[tuple[int, int]]:
    """(sent, received) batch numbers wherever a pass handed a batch over before an earlier one: what order gives up."""
    out = []
    for epoch in sorted({r["epoch"] for r in rows}):
        arrived = [r["batch"] for r in sorted((r for r in rows if r["epoch"] == epoch), key=lambda r: r["received_s"])]
        out += [(k, b) for k, b in enumerate(arrived) if b != k]
    return out


def gil(index, size: int, attempts: int) -> tuple[str, list[dict], list]:
    """The GIL probe on both pipelines, repeated until the hashlib control shows a free second core."""
    for attempt in range(1, attempts + 1):
        load = round(os.getloadavg()[0], 1)
        rows = [dict(row, pipeline=name, attempt=attempt, load_before=load)
                for name in ("fast", "blog")
                for row in threads.gil_release(index.samples.paths[:64], [*threads.CONTROLS, *pipeline_steps(name, size),
                                                                            threads.CONTROL_AFTER], threads=2)]
        if min(r["speedup"] for r in rows if "hashlib" in r["step"]) >= 1.6:
            break
    title = (f"Which steps release the GIL: 2 threads against 1 on the same 64 images (attempt {attempt} of at most "
             f"{attempts}; load average {load} before it)")
    return title, rows, [("pipeline", "pipeline", "s"), ("step", "step", "s"),
                         ("ms_one_thread", "ms/image, 1 thread", ".2f"), ("speedup", "2 threads / 1", ".2f"),
                         ("releases_gil", "releases the GIL", "")]


def verdicts(rows: list[dict], key: str, reference: object) -> list[str]:
    """Each setting's repeats, and the sweep's verdict against the REFERENCE setting of KEY (helpers.timing.sweep)."""
    return [f"Repeats, {key}={r.get(key)}: {' '.join(f'{x:.1f}' for x in r['repeats'])} images/s"
            + (f"; against {key}={reference}: {r['verdict']}" if r.get("verdict") else "")
            for r in rows if "repeats" in r]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="data/sample")
    p.add_argument("--out", default="results")
    p.add_argument("--tag", default="cpu2")
    p.add_argument("--image-size", type=options.positive_int, default=512)
    p.add_argument("--workers", type=options.worker_count, default=2)
    p.add_argument("--batches", type=options.positive_int, default=40)
    p.add_argument("--repeats", type=options.positive_int, default=3)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--gil-attempts", type=options.positive_int, default=1,
                   help="repeat the GIL probe until its hashlib control shows a free second core (2 threads at least "
                        "1.6 x one), at most this many times; the table says which attempt it kept")
    args = p.parse_args()
    index, size, load_before = index_image_folder(args.data), args.image_size, load_average()
    stem = f"{args.out}/knobs_{args.tag}"
    common = dict(workers=args.workers, batches=args.batches, repeats=args.repeats)
    machine = (f"Measured on {machine_summary()}, {args.workers} workers, batch 32, {size} px, fast pipeline unless "
               f"named; a machine shared with other work (load average {os.getloadavg()[0]:.1f} at the start), so "
               "read ratios within one table")

    def write(part: str, title: str, rows: list[dict], columns: list, *more: str) -> None:
        write_rows(rows, f"{stem}_{part}.csv", [k for k in rows[0] if k != "verdict"])  # the txt says it
        text = "\n".join([machine, "", title, format_table(rows, columns), *more,
                          conditions_line(load_before)]) + "\n"
        Path(f"{stem}_{part}.txt").write_text(text)
        print(text, flush=True)

    if "gil" in args.parts:
        write("gil", *gil(index, size, args.gil_attempts))
    if "prefetch" in args.parts:
        rows = loader_sweep(fast_dataset(index, size), [dict(prefetch_factor=f) for f in (1, 2, 4, 8)],
                                  image_size=size, reference=1, **common)
        write("prefetch", "prefetch_factor", rows, [("prefetch_factor", "prefetch_factor", "d"), *SWEEP,
                                                    ("in_flight_mb", "batches in flight MB", ".0f")],
              *verdicts(rows, "prefetch_factor", 2))
        plot_settings(rows, "prefetch_factor", f"prefetch_factor, {args.workers} workers, fast {size} px",
                      "in_flight_mb").savefig(f"{stem}_prefetch.png", dpi=110, bbox_inches="tight")
    if "getitems" in args.parts:
        fetches = ("one file per call", "__getitems__")  # timed in turns, like every other sweep
        datasets = [fast_dataset(index, size, together=fetch == "__getitems__") for fetch in fetches]
        rows = [dict(r, fetch=fetch) for r, fetch in
                zip(loader_sweep(datasets, [{}, {}], reference=0, **common), fetches)]
        write("getitems", "__getitems__ (one call per batch) against one call per file", rows,
              [("fetch", "fetch", "s"), *SWEEP], *verdicts(rows, "fetch", "one file per call"))
    if "in_order" in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            slow = with_slow_files(index, tmp, large=2, large_px=4000)
            where = slow_positions(slow)
            rows = loader_sweep(fast_dataset(slow, size), [dict(in_order=True), dict(in_order=False)],
                                      reference=0, **common)
            notes = []
            for in_order in (True, False):
                seen = timeline.record(slow, args.workers, image_size=size, batch_size=8, batches=16,
                                       in_order=in_order, consumer_ms=5)
                write_rows(seen, f"{stem}_timeline_in_order_{in_order}.csv", timeline.COLUMNS)
                plot_timeline(seen, f"in_order={in_order}: very large files at positions {where} (batches "
                                    f"{sorted({k // 8 for k in where})}), batch 8").savefig(
                    f"{stem}_timeline_in_order_{in_order}.png", dpi=110, bbox_inches="tight")
                notes.append(f"timeline in_order={in_order}, batch 8: handed over out of order (place, batch): "
                             f"{in_order_costs(seen)}; main process waited "
                             f"{timeline.summary(seen)['main_wait_s']:.3f} s")
            write("in_order", f"in_order with 2 very large JPEGs (4000 x 3000) among {len(slow.samples) - 2} small "
                  "ones, batches drawn at random", rows, [("in_order", "in_order", ""), *SWEEP], *notes,
                  *verdicts(rows, "in_order", True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

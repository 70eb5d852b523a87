"""The loader's other knobs measured on real JPEGs: in_order against slow files, __getitems__, prefetch_factor."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from ..loading.data import ImageDataset, ImageFolderIndex, decodes_scaled, index_image_folder
from ..errors import explained_worker_failures
from ..loading.loaders import make_loader
from ..machine import past_the_cores
from .measure import stream_window, time_stream
from .memory import batch_mb
from .sweep import sweep
from ..loading.transforms import build_pipeline


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

"""The blog's experiment as it meant to be run: one epoch's time and data-wait share for each num_workers and setup.

The blog printed one epoch time per num_workers and never showed the table. Here each row is one epoch (the
training pass and the validation pass, worker start-up included, as the blog timed it) with a fresh model, and
beside the time the share of it the training loop spent waiting in `next(loader)`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .data import ImageFolderIndex, index_image_folder
from .gpu_decode import DeviceDecode, collate_encoded, encoded_loader
from .loaders import Batch, collate_skipping_bad, make_loader, resolve_device
from .model import build_model
from .splits import split_datasets
from .transforms import Pipeline, build_pipeline
from .train import evaluate, train_one_epoch


@dataclass(frozen=True)
class Setup:
    """One row group of the table: which pipeline, at what size and batch."""

    pipeline: str  # blog, standard, fast or gpu
    image_size: int
    batch_size: int

    @property
    def label(self) -> str:
        return f"{self.pipeline} {self.image_size}px b{self.batch_size}"


BLOG = Setup("blog", 512, 4)
CORRECTED = (Setup("fast", 224, 4), Setup("gpu", 224, 4), Setup("fast", 224, 256), Setup("gpu", 224, 256))
TABLE_COLUMNS = (
    ("setup", "setup", "s"),
    ("num_workers", "workers", "d"),
    ("epoch_s", "epoch s", ".2f"),
    ("train_s", "train s", ".2f"),
    ("val_s", "val s", ".2f"),
    ("images_per_s", "images/s", ".0f"),
    ("data_wait_fraction", "data wait", ".0%"),
)


class WaitClock:
    """A loader wrapper that adds up the seconds spent in next(loader), and finishes each batch on the device."""

    def __init__(self, loader, finish: Callable[[Batch], tuple] | None = None) -> None:
        self.loader, self.finish, self.waited = loader, finish, 0.0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        it = iter(self.loader)
        while True:
            start = time.perf_counter()
            batch = next(it, None)
            self.waited += time.perf_counter() - start
            if batch is None:
                return
            if self.finish is not None and len(batch):
                finished = Batch(self.finish(batch))
                finished.skipped = batch.skipped
                batch = finished
            yield batch


def _pipelines(setup: Setup) -> tuple[Pipeline, Pipeline, Callable, bool]:
    """Train and validation pipelines, the collate function, and whether batches arrive as uint8."""
    if setup.pipeline == "gpu":
        read = Pipeline("gpu", (("read JPEG bytes", encoded_loader(setup.image_size)),), normalize_on_device=True)
        return read, read, collate_encoded, True
    train = build_pipeline(setup.pipeline, setup.image_size, train=True)
    return train, build_pipeline(setup.pipeline, setup.image_size, train=False), collate_skipping_bad, \
        train.normalize_on_device


def one_epoch(index: ImageFolderIndex, setup: Setup, num_workers: int, device: torch.device, *, seed: int = 0,
              val_fraction: float = 0.2, max_batches: int | None = None) -> dict:
    """One epoch (train, then validation) of the frozen ResNet18 with fresh, non-persistent loaders, as the blog ran it."""
    torch.manual_seed(seed)
    train_pipe, val_pipe, collate, uint8 = _pipelines(setup)
    train_set, val_set = split_datasets(index, train_pipe, val_pipe, val_fraction, seed)
    common = dict(batch_size=setup.batch_size, num_workers=num_workers, device=device, seed=seed, collate_fn=collate)
    finish = DeviceDecode(device, setup.image_size) if setup.pipeline == "gpu" else None
    train_loader = WaitClock(make_loader(train_set, shuffle=True, **common), finish)
    val_loader = WaitClock(make_loader(val_set, shuffle=False, **common), finish)
    model = build_model(len(index.classes), pretrained=False).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    run = dict(normalize_on_device=uint8, max_batches=max_batches, progress=False)
    start = time.perf_counter()
    train = train_one_epoch(model, train_loader, criterion, optimizer, device, **run)
    val = evaluate(model, val_loader, criterion, device, **run)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return dict(setup=setup.label, pipeline=setup.pipeline, image_size=setup.image_size,
                batch_size=setup.batch_size, num_workers=num_workers, device=str(device), epoch_s=seconds,
                train_s=train.seconds, val_s=val.seconds, images=train.images + val.images,
                images_per_s=(train.images + val.images) / seconds,
                data_wait_fraction=(train_loader.waited + val_loader.waited) / seconds,
                train_loss=train.loss, val_acc=val.accuracy)


def epoch_table(data: str | Path | ImageFolderIndex, setups: Sequence[Setup] = (BLOG, *CORRECTED),
                workers: Sequence[int] = (0, 1, 2, 4, 8, 12, 16), *, device: str = "auto", seed: int = 0,
                log: Callable[[str], None] | None = print) -> list[dict]:
    """One epoch per setup and num_workers; each setup first runs two untimed batches so CUDA start-up is not timed."""
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    dev = resolve_device(device)
    rows = []
    for setup in setups:
        if setup.pipeline == "gpu" and dev.type != "cuda":
            if log:
                log(f"{setup.label}: skipped, the gpu pipeline needs CUDA")
            continue
        one_epoch(index, setup, 0, dev, seed=seed, max_batches=2)  # warm-up: kernels, cuDNN, allocator
        for n in workers:
            rows.append(one_epoch(index, setup, n, dev, seed=seed))
            if log:
                r = rows[-1]
                log(f"{setup.label:22} {n:2} workers: epoch {r['epoch_s']:6.2f} s, {r['images_per_s']:6.0f} images/s, "
                    f"data wait {r['data_wait_fraction']:.0%}")
    return rows

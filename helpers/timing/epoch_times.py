"""The blog's experiment as it meant to be run: one epoch's time and data-wait share for each num_workers and setup.

The blog printed one epoch time per num_workers and never showed the table. Here each row is one epoch (the
training pass and the validation pass, worker start-up included, as the blog timed it) with a fresh model, and
beside the time the share of it the training loop spent waiting in `next(loader)` (helpers.training.loop counts it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..loading.data import ImageFolderIndex, index_image_folder
from ..loading.loaders import build_loaders, resolve_device
from ..training.loop import evaluate, model_and_optimizer, train_one_epoch
from ..machine import past_the_cores, past_the_cores_note
from .sweep import sweep


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
SETUPS = {setup.label: setup for setup in (BLOG, *CORRECTED)}
BLOG_WORKERS = (0, 1, 2, 4, 8, 12, 16)  # the blog's question, asked on a 16-core machine


def blog_workers(limit: int) -> list[int]:
    """The blog's num_workers settings that this machine's worker LIMIT allows (options.max_workers)."""
    return [n for n in BLOG_WORKERS if n <= limit]
TABLE_COLUMNS = (
    ("setup", "setup", "s"),
    ("num_workers", "workers", "d"),
    ("epoch_s", "epoch s", ".2f"),
    ("train_s", "train s", ".2f"),
    ("val_s", "val s", ".2f"),
    ("images_per_s", "images/s", ".0f"),
    ("data_wait_fraction", "data wait", ".0%"),
)


def one_epoch(index: ImageFolderIndex, setup: Setup, num_workers: int, device: torch.device, *, seed: int = 0,
              val_fraction: float = 0.2, max_batches: int | None = None) -> dict:
    """One epoch (train, then validation) of the frozen ResNet18 with fresh, non-persistent loaders, as the blog ran it."""
    torch.manual_seed(seed)
    loaders = build_loaders(index, pipeline=setup.pipeline, image_size=setup.image_size, batch_size=setup.batch_size,
                            num_workers=num_workers, val_fraction=val_fraction, seed=seed, device=device,
                            persistent_workers=False, resumable=False)  # the blog's loaders, started every pass
    model, optimizer = model_and_optimizer(len(index.classes), device, lr=1e-3, pretrained=False)
    criterion = nn.CrossEntropyLoss()
    run = dict(to_input=loaders.pipeline.to_model_input, max_batches=max_batches, progress=False)
    start = time.perf_counter()
    train = train_one_epoch(model, loaders.train, criterion, optimizer, device, **run)
    val = evaluate(model, loaders.val, criterion, device, **run)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return dict(setup=setup.label, pipeline=setup.pipeline, image_size=setup.image_size,
                batch_size=setup.batch_size, num_workers=num_workers, device=str(device), epoch_s=seconds,
                train_s=train.seconds, val_s=val.seconds, images=train.images + val.images,
                images_per_s=(train.images + val.images) / seconds,
                data_wait_fraction=(train.data_seconds + val.data_seconds) / seconds,
                train_loss=train.loss, val_acc=val.accuracy)


def epoch_table(data: str | Path | ImageFolderIndex, setups: Sequence[Setup] = (BLOG, *CORRECTED),
                workers: Sequence[int] = BLOG_WORKERS, *, device: str = "auto", seed: int = 0,
                log: Callable[[str], None] | None = print) -> list[dict]:
    """One epoch per setup and num_workers; each setup first runs two untimed batches so CUDA start-up is not timed."""
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    dev = resolve_device(device)
    rows = []
    note = past_the_cores_note(workers)
    if note and log:
        log(note)
    for setup in setups:
        if setup.pipeline == "gpu" and dev.type != "cuda":
            if log:
                log(f"{setup.label}: skipped, the gpu pipeline needs CUDA")
            continue
        one_epoch(index, setup, 0, dev, seed=seed, max_batches=2)  # warm-up: kernels, cuDNN, allocator

        def once(n: int, setup: Setup = setup) -> dict:
            with past_the_cores(n):
                return one_epoch(index, setup, n, dev, seed=seed)

        def said(n: int, r: dict, setup: Setup = setup) -> None:
            if log:
                log(f"{setup.label:22} {n:2} workers: epoch {r['epoch_s']:6.2f} s, {r['images_per_s']:6.0f} images/s, "
                    f"data wait {r['data_wait_fraction']:.0%}")

        # One epoch per setting, as the blog timed it: the sweep's single repeat, its row the epoch itself.
        rows += [row.runs[0] for row in sweep(list(workers), once, 1, value=lambda r: r["epoch_s"],
                                              on_repeat=said, higher_is_better=False)]
    return rows

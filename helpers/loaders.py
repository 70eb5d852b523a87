"""One factory for the train and validation DataLoaders, with every knob the course discusses and safe defaults."""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, default_collate

from .data import ImageFolderIndex, Unreadable, index_image_folder
from .splits import split_datasets
from .transforms import build_pipeline


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    classes: tuple[str, ...]
    normalize_on_device: bool  # batches are uint8 and to_model_input must normalize them


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' means CUDA when there is a GPU, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_worker(worker_id: int) -> None:
    """Give each worker's `random` and NumPy their own seed, derived from the per-worker torch seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class Batch(list):
    """[images, labels] plus the files left out of it; a list subclass keeps `skipped` through pin_memory and workers."""

    skipped: tuple[Unreadable, ...] = ()


def collate_skipping_bad(batch: list, collate: Callable[[list], list] = default_collate) -> Batch:
    """COLLATE after dropping the samples the dataset could not read; empty when every one was unreadable."""
    kept = [item for item in batch if not isinstance(item, Unreadable)]
    out = Batch(collate(kept) if kept else [])
    out.skipped = tuple(item for item in batch if isinstance(item, Unreadable))
    return out


_WARNED: set[str] = set()  # files already named in this process: a bad file is warned about once, not every epoch


class SkippedFiles:
    """The unreadable files one pass met: each named in one warning, in the main process, so a notebook shows it."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def note(self, batch: Batch) -> bool:
        """Record BATCH's skipped files; False when it holds no image at all."""
        for bad in getattr(batch, "skipped", ()):
            if bad.path in self.reasons:
                continue
            self.reasons[bad.path] = bad.reason
            if bad.path not in _WARNED:
                _WARNED.add(bad.path)
                warnings.warn(f"Skipped {bad.path}: {bad.reason}. `python -m helpers verify DIR --quarantine "
                              f"DIR-bad` lists every bad file and moves them out.", stacklevel=2)
        return len(batch) > 0

    def __len__(self) -> int:
        return len(self.reasons)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    num_workers: int = 2,
    device: str | torch.device = "auto",
    seed: int = 0,
    num_samples: int | None = None,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    start_method: str | None = None,
    timeout: float = 0,
    sampler: Sampler | Iterable[int] | None = None,
    collate_fn: Callable[[list], Batch] = collate_skipping_bad,
) -> DataLoader:
    """One DataLoader with the course's rules: pinned only for CUDA, seeded shuffling and workers, bad files skipped.

    num_samples draws that many indices with replacement, for streams longer than the dataset (benchmarks).
    sampler replaces shuffle and num_samples (a DistributedSampler, say); the seeded generator still seeds the workers.
    """
    generator = torch.Generator().manual_seed(seed)
    if sampler is None and num_samples:
        sampler = RandomSampler(dataset, replacement=True, num_samples=num_samples, generator=generator)
    workers = num_workers > 0
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        generator=generator if shuffle or sampler is not None else None,
        num_workers=num_workers,
        pin_memory=resolve_device(device).type == "cuda",
        worker_init_fn=seed_worker if workers else None,
        persistent_workers=persistent_workers and workers,
        prefetch_factor=prefetch_factor if workers else None,
        multiprocessing_context=start_method if workers else None,
        timeout=timeout if workers else 0,
        collate_fn=collate_fn,
    )


def build_loaders(
    data: str | Path | ImageFolderIndex,
    *,
    pipeline: str = "standard",
    image_size: int = 224,
    batch_size: int = 32,
    num_workers: int = 2,
    val_fraction: float = 0.2,
    stratified: bool = True,
    seed: int = 0,
    device: str | torch.device = "auto",
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    start_method: str | None = None,
    timeout: float = 0,
    val_batch_size: int | None = None,
) -> Loaders:
    """Train and validation loaders from a handful of arguments: seeded, pinned only for CUDA, validation unshuffled."""
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    train_pipe = build_pipeline(pipeline, image_size, train=True)
    val_pipe = build_pipeline(pipeline, image_size, train=False)
    train_set, val_set = split_datasets(index, train_pipe, val_pipe, val_fraction, seed, stratified)
    common = dict(num_workers=num_workers, device=device, seed=seed, persistent_workers=persistent_workers,
                  prefetch_factor=prefetch_factor, start_method=start_method, timeout=timeout)
    train = make_loader(train_set, batch_size=batch_size, shuffle=True, **common)
    val = make_loader(val_set, batch_size=val_batch_size or batch_size, shuffle=False, **common)
    return Loaders(train, val, index.classes, train_pipe.normalize_on_device)


def reseed(loader: DataLoader, seed: int) -> None:
    """Fix the shuffle order and worker seeds of the next pass, so a resumed run sees what an unbroken one would."""
    if loader.generator is not None:
        loader.generator.manual_seed(seed)

"""One factory for the train and validation DataLoaders, with every knob the course discusses and safe defaults."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from .data import Batch, ImageFolderIndex, collate_skipping_bad, index_image_folder
from ..errors import OptionError
from .resume import EpochOrder, SeededItems
from .splits import split_datasets
from .storage import FarAway, Latency
from .transforms import Pipeline, build_pipeline


@dataclass
class Loaders:
    """Both splits' loaders, the classes, and what a trainer needs beside them: the pipelines and the device."""

    train: DataLoader
    val: DataLoader
    classes: tuple[str, ...]
    pipeline: Pipeline  # the training split's: its to_model_input finishes every batch on the device
    device: torch.device = torch.device("cpu")  # where the batches go (memory is pinned for CUDA)
    val_pipeline: Pipeline | None = None  # the validation split's, without augmentation (None: the training one)
    settings: dict = field(default_factory=dict)  # make_loader's keywords both splits were made with

    def __post_init__(self) -> None:
        self.val_pipeline = self.val_pipeline or self.pipeline

    def in_file_order(self) -> tuple[DataLoader, DataLoader]:
        """Both splits through the validation transform and unshuffled: each image once and the same in every pass,
        so what a pass computes can be stored (helpers.training.features caches the backbone's outputs)."""
        pipe = self.val_pipeline
        common = {**self.settings, "device": self.device, "collate_fn": pipe.collate}
        return (make_loader(pipe.dataset(self.train.dataset.samples), batch_size=self.train.batch_size, **common),
                make_loader(pipe.dataset(self.val.dataset.samples), batch_size=self.val.batch_size, **common))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' means CUDA when there is a GPU, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# The course's one default for keeping workers between passes: TrainConfig and both factories take it from here.
PERSISTENT_WORKERS = True


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    num_workers: int = 2,
    device: str | torch.device = "auto",
    seed: int = 0,
    num_samples: int | None = None,
    persistent_workers: bool = PERSISTENT_WORKERS,
    prefetch_factor: int | None = None,
    start_method: str | None = None,
    timeout: float = 0,
    sampler: Sampler | Iterable[int] | None = None,
    collate_fn: Callable[[list], Batch] = collate_skipping_bad,
    in_order: bool = True,
) -> DataLoader:
    """One DataLoader with the course's rules: pinned only for CUDA, seeded shuffling and workers, bad files skipped.

    num_samples draws that many indices with replacement, for streams longer than the dataset (benchmarks).
    sampler replaces shuffle and num_samples (a DistributedSampler, say). The seeded generator is passed in every case:
    PyTorch draws the workers' base seed from it and seeds torch, random and NumPy in each worker from that
    (torch/utils/data/_utils/worker.py), so no worker_init_fn is needed for runs to repeat.
    in_order=False hands batches over as workers finish them (torch 2.6 and later; refused with the fix before that).
    """
    generator = torch.Generator().manual_seed(seed)
    if sampler is None and num_samples:
        sampler = RandomSampler(dataset, replacement=True, num_samples=num_samples, generator=generator)
    workers = num_workers > 0
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        generator=generator,
        num_workers=num_workers,
        pin_memory=resolve_device(device).type == "cuda",
        persistent_workers=persistent_workers and workers,
        prefetch_factor=prefetch_factor if workers else None,
        multiprocessing_context=start_method if workers else None,
        timeout=timeout if workers else 0,
        collate_fn=collate_fn,
        **({} if in_order else out_of_order()),
    )


def out_of_order() -> dict:
    """DataLoader's in_order=False, or the course's error on a torch whose DataLoader lacks it (before 2.6)."""
    if "in_order" not in inspect.signature(DataLoader).parameters:
        raise OptionError(f"in_order=False needs torch 2.6 or later (DataLoader gained in_order in 2.6); this is torch "
                          f"{torch.__version__}: `pip install torch==2.14.1`, or leave batches in order")
    return dict(in_order=False)


def build_loaders(
    data: str | Path | ImageFolderIndex,
    *,
    pipeline: str = "standard",
    image_size: int = 224,
    batch_size: int = 32,
    num_workers: int = 2,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str | torch.device = "auto",
    persistent_workers: bool = PERSISTENT_WORKERS,
    prefetch_factor: int | None = None,
    start_method: str | None = None,
    timeout: float = 0,
    resumable: bool = True,
    read_latency_ms: float = 0.0,
) -> Loaders:
    """Train and validation loaders from a handful of arguments: seeded, pinned only for CUDA, validation unshuffled.

    resumable: the training order and each image's augmentation follow from seeds alone, so a pass can start mid-epoch
    and a resumed run equals an unbroken one with persistent workers too; False gives a plain shuffled DataLoader.
    read_latency_ms: each file read first waits this long, the model of remote storage (helpers.loading.storage).
    """
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    train_pipe = build_pipeline(pipeline, image_size, train=True)
    val_pipe = build_pipeline(pipeline, image_size, train=False)
    train_set, val_set = split_datasets(index, train_pipe, val_pipe, val_fraction, seed)
    if read_latency_ms:  # every file read first waits as the storage model says
        train_set, val_set = FarAway(train_set, Latency(read_latency_ms)), FarAway(val_set, Latency(read_latency_ms))
    device = resolve_device(device)
    settings = dict(num_workers=num_workers, seed=seed, persistent_workers=persistent_workers,
                    prefetch_factor=prefetch_factor, start_method=start_method, timeout=timeout)
    common = dict(settings, device=device, collate_fn=train_pipe.collate)
    if resumable:
        train = make_loader(SeededItems(train_set), batch_size=batch_size, sampler=EpochOrder(len(train_set), seed),
                            **common)
    else:
        train = make_loader(train_set, batch_size=batch_size, shuffle=True, **common)
    val = make_loader(val_set, batch_size=batch_size, shuffle=False, **common)
    return Loaders(train, val, index.classes, train_pipe, device, val_pipe, settings)

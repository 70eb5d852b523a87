"""Train/validation splits that are seeded, disjoint, and carry one transform each."""
from __future__ import annotations

from typing import Sequence

import torch

from .data import ImageDataset, ImageFolderIndex
from .transforms import Pipeline


def random_split_indices(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded shuffle cut in two: the same seed always gives the same split."""
    _check_fraction(val_fraction)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(n * val_fraction))
    return sorted(order[n_val:]), sorted(order[:n_val])


def stratified_split_indices(targets: Sequence[int], val_fraction: float = 0.2,
                             seed: int = 0) -> tuple[list[int], list[int]]:
    """Cut each class separately so validation keeps the class balance of the whole set."""
    _check_fraction(val_fraction)
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in sorted(set(targets)):
        members = [i for i, t in enumerate(targets) if t == label]
        order = torch.randperm(len(members), generator=generator).tolist()
        n_val = max(1, round(len(members) * val_fraction)) if len(members) > 1 else 0
        val += [members[k] for k in order[:n_val]]
        train += [members[k] for k in order[n_val:]]
    return sorted(train), sorted(val)


def split_datasets(index: ImageFolderIndex, train_pipeline: Pipeline, val_pipeline: Pipeline,
                   val_fraction: float = 0.2, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """Two datasets over disjoint files, each with its own pipeline, so augmentation never reaches validation; the
    split is stratified, so validation keeps the class balance."""
    train_idx, val_idx = stratified_split_indices(index.targets, val_fraction, seed)

    def subset(indices: list[int], pipeline: Pipeline) -> ImageDataset:
        return pipeline.dataset(index.samples.take(indices))

    return subset(train_idx, train_pipeline), subset(val_idx, val_pipeline)


def _check_fraction(val_fraction: float) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}.")

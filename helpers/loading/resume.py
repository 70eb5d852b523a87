"""Exact mid-epoch resume: an epoch's order, and every image's random augmentation, follow from seeds alone.

A DataLoader worker draws augmentations from its own torch generator, which advances with every image it has
handled; a run restarted mid-epoch has fresh workers whose generators are elsewhere, and torchdata's
StatefulDataLoader restores the sampler and the workers' base seed but not how far each worker's generator has run.
So here each image is seeded from (epoch seed, position in the epoch): resuming at any batch, with any number of
workers, persistent or not, gives every image the crop and flip an unbroken run gave it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch.utils.data import Dataset, Sampler


class EpochOrder(Sampler):
    """A seeded shuffle that starts at any position; yields (item seed, index) keys for SeededItems."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seed, self.start = size, seed, 0

    def start_epoch(self, seed: int, start: int = 0) -> None:
        """The next pass: the order SEED gives, from position START (items already trained on are left out)."""
        self.seed, self.start = seed, min(start, self.size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(self.size, generator=generator)
        item_seeds = torch.randint(0, 2**62, (self.size,), generator=generator)
        for position in range(self.start, self.size):
            yield int(item_seeds[position]), int(order[position])

    def __len__(self) -> int:
        return self.size - self.start


class SeededItems(Dataset):
    """DATASET's items, each made under its own seed, leaving the caller's generator as it was (workers or not)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        seed, index = key
        with torch.random.fork_rng(devices=[]):  # torchvision's random transforms draw from torch's CPU generator
            torch.manual_seed(seed)
            return self.dataset[index]

    def __getattr__(self, name: str) -> Any:  # .samples and the rest, as the wrapped dataset has them
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


@dataclass
class Partial:
    """An epoch's training so far: the loader's position and the sums its line reports, for a mid-epoch checkpoint."""

    epoch: int
    drawn: int = 0         # batches taken from the loader, so a resumed pass starts after them
    steps: int = 0         # optimizer steps
    loss_sum: float = 0.0
    correct: int = 0
    images: int = 0
    skipped: int = 0
    step_losses: list[float] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores: these sums and the random state dropout draws from next (CPU and CUDA)."""
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "rng": torch.get_rng_state(),
                "cuda_rng": cuda}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> "Partial":
        """The Partial a checkpoint stored, with the random state put back as it was when it was saved."""
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return cls(**{k: state[k] for k in cls.__dataclass_fields__})

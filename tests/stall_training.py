"""A training run whose data stalls, for tests/test_train_stall.py, in a module of its own as a user's dataset would be.

`python tests/stall_training.py train ARGS` is `python -m helpers train ARGS` (and `... scripts/train.py ARGS` is
scripts/train.py), the same parser and error boundary, with the course's two splits replaced by tiny in-memory
datasets: item STALL_AT of the STALL_SPLIT split (environment variables) blocks for ever in stuck_in_training_data.
Every process that reads an item writes its pid to STALL_TEST_PIDS, so the test can check that none is left.
"""
import os
import sys
import threading
from pathlib import Path

import torch
from torch.utils.data import Dataset

import helpers.loading.loaders
from helpers.__main__ import main
from helpers.app.cli import train_main


def stuck_in_training_data() -> None:
    """Where the stuck item waits, for ever: its name must appear in the stack --stall-s prints."""
    threading.Event().wait()


class Stalling(Dataset):
    """SIZE small images; item STALL_AT (None: none) never comes back."""

    def __init__(self, size: int, stall_at: int | None) -> None:
        self.size, self.stall_at = size, stall_at

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        Path(os.environ["STALL_TEST_PIDS"], f"{os.getpid()}.pid").touch()
        if i == self.stall_at:
            stuck_in_training_data()
        return torch.rand(3, 32, 32), i % 2


def stalling_splits(*_, **__) -> tuple[Stalling, Stalling]:
    """Stands in for helpers.loading.splits.split_datasets: 16 training items and 8 validation items."""
    split, at = os.environ["STALL_SPLIT"], int(os.environ["STALL_AT"])
    return Stalling(16, at if split == "train" else None), Stalling(8, at if split == "val" else None)


if __name__ == "__main__":
    helpers.loading.loaders.split_datasets = stalling_splits
    entry = train_main if sys.argv[1] == "scripts/train.py" else main
    sys.exit(entry(sys.argv[2:] if entry is train_main else sys.argv[1:]))

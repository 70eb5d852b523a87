"""Small loaders for tests/test_profile.py, in a module of their own, as a user's would be: `profile` imports them by
name, and spawned workers import them again."""
import os
import threading
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from helpers.loading.data import ImageDataset
from helpers.loading.sample_table import SampleTable

ENTRIES = 300_000


def paths_and_labels(n: int) -> tuple[list[str], list[int]]:
    return [f"data/cats-dogs/{('cat', 'dog')[i % 2]}/{i:08d}.jpg" for i in range(n)], [i % 2 for i in range(n)]


class TupleList(Dataset):
    """The copy-on-read pattern: a Python list of (path, label) tuples, every item read in a worker."""

    def __init__(self, n: int = ENTRIES) -> None:
        self.entries = list(zip(*paths_and_labels(n)))

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.entries[i]
        return torch.full((4,), float(len(path))), label


def tuples(num_workers: int) -> DataLoader:
    return DataLoader(TupleList(), batch_size=64, shuffle=True, num_workers=num_workers)


def fake_image(path: str) -> torch.Tensor:
    return torch.full((4,), float(len(path)))


def course(num_workers: int) -> DataLoader:
    """The course's own dataset over a SampleTable, its loader swapped for len so that no file is opened."""
    dataset = ImageDataset(SampleTable(*paths_and_labels(ENTRIES)), loader=fake_image)
    return DataLoader(dataset, batch_size=64, num_workers=num_workers)


class Counting(IterableDataset):
    """An iterable dataset that splits its range between the workers, as torch's documentation shows."""

    def __init__(self, n: int = 4000) -> None:
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, stride = (0, 1) if info is None else (info.id, info.num_workers)
        return (torch.tensor([float(i)]) for i in range(start, self.n, stride))


def iterable(num_workers: int) -> DataLoader:
    return DataLoader(Counting(), batch_size=16, num_workers=num_workers)


def step(batch) -> None:
    """A training step standing in for the user's: a little arithmetic on the batch."""
    (batch[0].float() ** 2).sum()


def stuck_in_user_code() -> None:
    """Where the stuck worker waits, for ever: its name must appear in the stack profile prints."""
    threading.Event().wait()


class Stuck(Dataset):
    def __len__(self) -> int:
        return 400

    def __getitem__(self, i: int) -> torch.Tensor:
        if i == 37:
            stuck_in_user_code()
        return torch.zeros(4)


def note_pid(worker_id: int) -> None:
    """The user's own worker_init_fn: each worker writes its pid where the test can check that it has ended."""
    folder = os.environ.get("PROFILE_TEST_PIDS")
    if folder:
        Path(folder, f"{os.getpid()}.pid").write_text(str(worker_id))


def stuck(num_workers: int) -> DataLoader:
    return DataLoader(Stuck(), batch_size=4, num_workers=num_workers, worker_init_fn=note_pid)


def ignores_num_workers(num_workers: int) -> DataLoader:
    return DataLoader(range(100), batch_size=4, num_workers=0)


def not_a_loader(num_workers: int) -> list:
    return [1, 2, 3]


def no_parameter() -> DataLoader:
    return DataLoader(range(100))


NOT_CALLABLE = 3


def read_a_very_slow_file(i: int) -> torch.Tensor:
    """A file that takes a minute to read, far past the stall limit the test gives."""
    time.sleep(60)
    return torch.zeros(4)


class Slow(Dataset):
    def __len__(self) -> int:
        return 400

    def __getitem__(self, i: int) -> torch.Tensor:
        return read_a_very_slow_file(i) if i == 9 else torch.zeros(4)


def slow(num_workers: int) -> DataLoader:
    return DataLoader(Slow(), batch_size=4, num_workers=num_workers, worker_init_fn=note_pid)


class Corrupt(Dataset):
    """Item 37 raises, as one corrupt record in a user's data would."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> torch.Tensor:
        if i == 37:
            raise ValueError(f"record {i} is corrupt")
        return torch.zeros(2)


def corrupt(num_workers: int) -> DataLoader:
    return DataLoader(Corrupt(), batch_size=4, num_workers=num_workers)


def factory_raises(num_workers: int) -> DataLoader:
    raise KeyError("DATA_ROOT is not set")


def step_raises(batch) -> None:
    raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

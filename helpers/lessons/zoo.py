"""The loader failures people meet most, each reproduced with real processes and ended in the course's message and fix.

Too many open files and a full /dev/shm run in a child process (its limits are lowered, or a small tmpfs is
mounted over its /dev/shm), so the caller's own limits never change. Notebook 09 shows them; tests/test_zoo.py
holds them.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, get_worker_info

from ..errors import CourseError, explained_worker_failures, one_line
from ..processes import call_in_child


# --- An IterableDataset that every worker repeats ---------------------------------------------------------------

class Numbers(IterableDataset):
    """0 to N-1 as a stream; SHARDED: each worker yields only its share (get_worker_info), else each yields all."""

    def __init__(self, n: int, sharded: bool) -> None:
        self.n, self.sharded = n, sharded

    def __iter__(self) -> Iterator[int]:
        info = get_worker_info()  # None in the main process; in a worker: its id and the number of workers
        if not self.sharded or info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


# --- persistent_workers and state the main process changes ------------------------------------------------------

class EpochTagged(Dataset):
    """Items tagged with self.epoch, which the main process sets before each epoch (the mistake), or with the epoch
    in the sampler's key (the fix: the sampler runs in the main process, so its epoch reaches every worker)."""

    def __init__(self, n: int = 8) -> None:
        self.n, self.epoch = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int | tuple[int, int]) -> int:
        epoch, _ = key if isinstance(key, tuple) else (self.epoch, key)
        return epoch


class EpochKeys(Sampler):
    """Indices 0..N-1, each sent with the epoch set_epoch gave, as DistributedSampler carries its epoch."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, i) for i in range(self.n))

    def __len__(self) -> int:
        return self.n


def epochs_workers_saw(persistent: bool, sampler_epoch: bool, epochs: int = 3, num_workers: int = 2,
                       context: str | None = None) -> list[list[int]]:
    """For epochs 1..EPOCHS, the epochs the items were made for: the main process tells each epoch to the dataset,
    or (SAMPLER_EPOCH) to the sampler. CONTEXT is the workers' start method (a notebook never forks its kernel)."""
    dataset = EpochTagged()
    sampler = EpochKeys(len(dataset)) if sampler_epoch else None
    loader = DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=num_workers, persistent_workers=persistent,
                        multiprocessing_context=context)
    seen = []
    for epoch in range(1, epochs + 1):
        dataset.epoch = epoch
        if sampler is not None:
            sampler.set_epoch(epoch)
        seen.append(sorted({int(x) for batch in loader for x in batch}))
    return seen


# --- Too many open files, and /dev/shm too small: in a child process --------------------------------------------

class ManyTensors(Dataset):
    """Items of TENSORS small tensors each: under the file_descriptor strategy each one a worker sends is a file."""

    def __init__(self, tensors: int, stacked: bool = False, n: int = 64) -> None:
        self.tensors, self.stacked, self.n = tensors, stacked, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        parts = [torch.full((4,), float(i)) for _ in range(self.tensors)]
        return torch.stack(parts) if self.stacked else parts


class Images(Dataset):
    """Float32 images of SIZE px, as the course's pipelines make them: 0.75 MiB each at 256 px."""

    def __init__(self, size: int, n: int = 16) -> None:
        self.size, self.n = size, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.zeros(3, self.size, self.size)


def lift_open_files_limit(worker_id: int) -> None:
    """In a worker: the open-files limit back up to the hard limit, so the main process is the one that runs out."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def load_all(loader: DataLoader) -> str:
    """Draw every batch; the outcome as one line: how many batches, or the course's error message."""
    try:
        with explained_worker_failures():
            return f"ok: {sum(1 for _ in loader)} batches"
    except CourseError as exc:
        return one_line(exc)


def open_files_child(limit: int, strategy: str, tensors: int, stacked: bool) -> None:
    """Runs in a child: lower this process's open-files limit to LIMIT, share by STRATEGY, load, print the outcome."""
    import resource

    torch.multiprocessing.set_sharing_strategy(strategy)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    loader = DataLoader(ManyTensors(tensors, stacked), batch_size=2, num_workers=2, timeout=60,
                        worker_init_fn=lift_open_files_limit)
    print(load_all(loader))


def shm_child(image_size: int, batch_size: int, file_size_limit: int | None) -> None:
    """Runs in a child: load float32 image batches through /dev/shm, optionally with files capped (RLIMIT_FSIZE)."""
    if file_size_limit is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    print(load_all(DataLoader(Images(image_size), batch_size=batch_size, num_workers=1, timeout=60)))


def in_child(call: str, prefix: list[str] | None = None, timeout: float = 120) -> str:
    """Run `helpers.lessons.zoo.CALL` in a fresh Python (under PREFIX, e.g. unshare); the last line it printed."""
    line = call_in_child("helpers.lessons.zoo", call, timeout=timeout, prefix=prefix or ())
    return re.sub(r"</torch_[\d_]+>", "</torch_...>", line)  # shared-memory file names hold a pid


def too_many_open_files(limit: int = 128, strategy: str = "file_descriptor", tensors: int = 64,
                        stacked: bool = False) -> str:
    """A loader whose items hold TENSORS tensors, in a process allowed LIMIT open files; the outcome line."""
    return in_child(f"open_files_child({limit}, {strategy!r}, {tensors}, {stacked})")


def small_tmpfs_prefix(size: str) -> list[str] | None:
    """A command prefix that runs a program with a tmpfs of SIZE over its /dev/shm, without root (a user and mount
    namespace), or None where this system does not allow it."""
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        return None
    probe = subprocess.run([unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs /dev/shm"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        return None
    return [unshare, "-rm", "sh", "-c", f'mount -t tmpfs -o size={size} tmpfs /dev/shm && exec "$@"', "sh"]


def shm_too_small(shm_size: str = "1m", image_size: int = 256, batch_size: int = 4) -> str | None:
    """Batches of BATCH_SIZE float32 images through a /dev/shm of SHM_SIZE; the outcome, or None where no small
    tmpfs can be mounted here."""
    prefix = small_tmpfs_prefix(shm_size)
    if prefix is None:
        return None
    return in_child(f"shm_child({image_size}, {batch_size}, None)", prefix)


def shm_file_size_limited(limit: int = 2**20, image_size: int = 256, batch_size: int = 4) -> str:
    """The same batches with every file this process writes capped at LIMIT bytes (RLIMIT_FSIZE, no root needed):
    the shared-memory file for a batch cannot grow, as in a full /dev/shm."""
    return in_child(f"shm_child({image_size}, {batch_size}, {limit})")

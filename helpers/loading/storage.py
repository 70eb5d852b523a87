"""Files that are far away: a model of remote storage (each read waits first) and a real cold page cache; how many
workers hide the wait is the loader model's (helpers/which_workers.py, Little's law).

FarAway is a MODEL, not a measurement of any storage: before each item is read it sleeps a fixed latency, plus,
if asked, a seeded random jitter and the file's size over a bandwidth, then reads the local file as before. It
models the part of NFS, a network disk or an object store that decides num_workers: a request that waits without
using a core. It does not model what a real store adds: caching, throttling, many requests sharing one link, a
first byte that comes later under load, or the CPU a network client spends.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from torch.utils.data import Dataset


@dataclass(frozen=True)
class Latency:
    """How long one read waits: MS always, up to JITTER_MS more (uniform, seeded per item), and SIZE / MB_PER_S."""

    ms: float = 0.0
    jitter_ms: float = 0.0
    mb_per_s: float | None = None  # None: no transfer time, only the latency
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ms < 0 or self.jitter_ms < 0 or (self.mb_per_s is not None and self.mb_per_s <= 0):
            raise ValueError(f"latency and jitter must be 0 or more and the bandwidth above 0; got {self}")

    def seconds(self, item: int, size_bytes: int = 0) -> float:
        """The wait for reading ITEM of SIZE_BYTES: the same item waits the same in every worker and run (seeded)."""
        wait = self.ms
        if self.jitter_ms:
            wait += self.jitter_ms * random.Random(self.seed * 1_000_003 + item).random()
        if self.mb_per_s:
            wait += 1000 * size_bytes / (self.mb_per_s * 1e6)
        return wait / 1000

    def mean_seconds(self, size_bytes: int = 0) -> float:
        """The average wait over many items: the latency, half the jitter, the transfer time of SIZE_BYTES."""
        return (self.ms + self.jitter_ms / 2) / 1000 + (size_bytes / (self.mb_per_s * 1e6) if self.mb_per_s else 0)

    def describe(self) -> str:
        """The model in words, for a results file or a figure's title."""
        parts = [f"{self.ms:g} ms per file"]
        if self.jitter_ms:
            parts.append(f"up to {self.jitter_ms:g} ms jitter (seed {self.seed})")
        if self.mb_per_s:
            parts.append(f"{self.mb_per_s:g} MB/s")
        return ", ".join(parts) + " (a model of remote storage: a sleep before each local read)"


def file_size(dataset: Any, index: int) -> int:
    """The size of the file behind DATASET[INDEX] when the dataset keeps its samples' paths (ImageDataset), else 0."""
    samples = getattr(dataset, "samples", None)
    if samples is None:
        return 0
    try:
        return os.stat(samples[index].path).st_size
    except (OSError, AttributeError):
        return 0


class FarAway(Dataset):
    """DATASET as if its files were far away: each item waits as LATENCY says (a sleep, no core used), then is read.

    SLEEP is time.sleep; a test passes a fake clock's sleep to count the waits without waiting.
    """

    def __init__(self, dataset: Dataset, latency: Latency, sleep: Callable[[float], None] = time.sleep) -> None:
        self.dataset, self.latency, self.sleep = dataset, latency, sleep

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        size = file_size(self.dataset, index) if self.latency.mb_per_s else 0
        self.sleep(self.latency.seconds(index, size))
        return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)  # samples, transform, loader: what code reading the wrapped dataset expects


def evict(paths: Iterable[str | Path]) -> int:
    """Drop PATHS from the page cache, so the next read comes from the disk: a real cold cache, for these files only.

    os.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) asks the kernel to free the file's cached pages (length 0 means
    to the end of the file; posix_fadvise(2)). It is advice, and pages not yet written to the disk stay (a file just
    copied stayed fully cached here), so each file is written back first (fdatasync) and resident_fraction checks
    the result. Returns how many files were advised. Linux and other POSIX systems only.
    """
    count = 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            count += 1
        finally:
            os.close(fd)
    return count


PAGE = mmap.PAGESIZE


def resident_fraction(paths: Sequence[str | Path]) -> float | None:
    """The share of PATHS' pages in the page cache, from mincore(2) on a mapping of each; None where it cannot be read.

    Since Linux 5.0 mincore reports the page cache only for files this process owns or may write (else only its own
    mapped pages), so check it on files you made: a copy under /tmp, not a shared data set.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype, libc.mmap.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                                   ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    resident = total = 0
    for path in paths:
        size = os.path.getsize(path)
        if size == 0:
            continue
        pages = -(-size // PAGE)
        fd = os.open(path, os.O_RDONLY)
        try:
            address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if address in (None, ctypes.c_void_p(-1).value):
                return None
            vector = (ctypes.c_ubyte * pages)()
            ok = libc.mincore(address, size, vector) == 0
            libc.munmap(address, size)
        finally:
            os.close(fd)
        if not ok:
            return None
        resident += sum(v & 1 for v in vector)
        total += pages
    return resident / total if total else None


def read_all(paths: Iterable[str | Path], chunk: int = 1 << 20) -> int:
    """Read every byte of PATHS (and nothing else): the storage's part of a pass, apart from decoding. Returns bytes."""
    done = 0
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while block := f.read(chunk):
                done += len(block)
    return done

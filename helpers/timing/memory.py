"""What a loader costs in memory: USS, PSS and RSS of the main process and each worker, read by psutil.

USS is what only that process holds (freed when it ends); PSS adds its share of the pages it shares, so the PSS of
the main process and its workers add up to what they cost together; RSS counts shared pages in full, once per
process, and so overstates workers that share their parent's memory. psutil reads USS and PSS on Linux (from
/proc/PID/smaps); elsewhere PSS falls back to RSS and USS to what the platform gives.
"""
from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import psutil
import torch
from torch.utils.data import DataLoader, Dataset

MB = 2**20


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "main" or "worker N"
    uss_mb: float
    pss_mb: float
    rss_mb: float


def process_memory(pid: int, role: str) -> ProcessMemory:
    """One process's USS, PSS and RSS in MiB (memory_full_info walks its mappings: milliseconds, not microseconds)."""
    info = psutil.Process(pid).memory_full_info()
    uss = getattr(info, "uss", info.rss)
    return ProcessMemory(pid, role, uss / MB, getattr(info, "pss", uss) / MB, info.rss / MB)


def worker_pids(loader_or_iterator: object = None) -> list[int]:
    """The pids of a DataLoader's live workers: from its iterator, else this process's children.

    A DataLoader with persistent workers keeps its iterator (and the workers) between passes, so the loader itself
    is enough; otherwise pass the iterator of the pass being measured. When torch's iterator does not say (its
    `_workers` list is internal), the process tree answers: under fork the workers are this process's children.
    """
    it = getattr(loader_or_iterator, "_iterator", None) or loader_or_iterator
    workers = getattr(it, "_workers", None)
    if workers is not None:
        return [w.pid for w in workers if w.pid is not None and w.is_alive()]
    return [child.pid for child in psutil.Process().children()]


def shm_mb() -> float | None:
    """What /dev/shm holds now (tensors in flight between workers and the main process); None where there is none."""
    return psutil.disk_usage("/dev/shm").used / MB if os.path.isdir("/dev/shm") else None


def available_mb() -> float:
    """Memory the system can give without swapping (psutil's `available`: free plus reclaimable cache)."""
    return psutil.virtual_memory().available / MB


@dataclass(frozen=True)
class Snapshot:
    """The main process and its workers at one moment, plus /dev/shm."""

    processes: tuple[ProcessMemory, ...]
    shm_mb: float | None

    @property
    def workers(self) -> tuple[ProcessMemory, ...]:
        return tuple(p for p in self.processes if p.role != "main")

    @property
    def total_pss_mb(self) -> float:
        return sum(p.pss_mb for p in self.processes)

    def growth_since(self, before: Snapshot, memory: str = "uss_mb") -> list[float]:
        """Each worker's growth in MEMORY (uss_mb or pss_mb) since BEFORE, for the workers seen in both, in order."""
        was = {p.pid: getattr(p, memory) for p in before.workers}
        return [getattr(p, memory) - was[p.pid] for p in self.workers if p.pid in was]


def snapshot(pids: Iterable[int] = ()) -> Snapshot:
    """This process and the worker PIDS now; a worker that has already exited is left out."""
    processes = [process_memory(os.getpid(), "main")]
    for n, pid in enumerate(pids):
        try:
            processes.append(process_memory(pid, f"worker {n}"))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return Snapshot(tuple(processes), shm_mb())


def mean(values: Sequence[float]) -> float | None:
    """The mean, or None for no values (a loader without workers has no worker memory)."""
    return sum(values) / len(values) if values else None


def batch_mb(batch_size: int, image_size: int, dtype: torch.dtype) -> float:
    """The bytes of one batch of RGB images of IMAGE_SIZE square, in MiB."""
    return batch_size * 3 * image_size * image_size * torch.empty((), dtype=dtype).element_size() / MB


class RandomImages(Dataset):
    """Images of noise, made in the worker: what crosses to the main process is only the batch."""

    def __init__(self, length: int, image_size: int, dtype: torch.dtype) -> None:
        self.length, self.image_size, self.dtype = length, image_size, dtype

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.zeros(3, self.image_size, self.image_size, dtype=self.dtype)


def shm_in_flight_mb(batch_size: int, image_size: int, dtype: torch.dtype, workers: int, prefetch_factor: int,
                     settle_s: float = 10.0) -> float | None:
    """How much more /dev/shm holds once WORKERS have filled their prefetch queues (and one batch is in hand).

    A worker hands each batch over in shared memory; until the main process takes it, it waits there, up to
    num_workers x prefetch_factor batches. Read again every quarter second until it holds that much and stops growing,
    or SETTLE_S has passed (a loaded machine fills the queues late). None where there is no /dev/shm.
    """
    if shm_mb() is None:
        return None
    loader = DataLoader(RandomImages(batch_size * (workers * prefetch_factor + 4), image_size, dtype),
                        batch_size=batch_size, num_workers=workers, prefetch_factor=prefetch_factor)
    gc.collect()  # batches of an earlier loader leave /dev/shm now, not during the measurement
    base = shm_mb()
    it = iter(loader)
    try:
        first = next(it)
        queued = workers * prefetch_factor * batch_mb(batch_size, image_size, dtype)
        deadline = time.monotonic() + settle_s
        held = shm_mb() - base
        while time.monotonic() < deadline:
            time.sleep(0.25)
            held, before = shm_mb() - base, held
            if held >= queued and held == before:
                break
        del first
        return held
    finally:
        del it

"""The machine a measurement runs on: the cores this process may use (affinity and cgroup quota), one thread as in a
worker, PyTorch's past-the-cores warning kept out of sweeps that go there on purpose, the memory a loader may hold,
and the one-line summary.

Imports torch and nothing of the course, so checking an option (helpers.options) loads no loader and no data code.
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import psutil
import torch


def cpu_quota(root: str | Path = "/sys/fs/cgroup", cgroup_file: str | Path = "/proc/self/cgroup") -> float | None:
    """The CPUs a cgroup quota (a container's --cpus) lets this process use, or None without one; os.cpu_count() ignores it."""
    root, quotas = Path(root), []
    try:
        lines = Path(cgroup_file).read_text().splitlines()
    except OSError:
        lines = []
    own = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), "/")
    folder = root / own.lstrip("/")
    while True:  # cgroup v2: this cgroup's cpu.max and every parent's ("max 100000" means no limit)
        quotas.append(read_quota(folder / "cpu.max", None))
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent
    for v1 in (root / "cpu", root / "cpu,cpuacct"):  # cgroup v1: the quota and period live in two files
        quotas.append(read_quota(v1 / "cpu.cfs_quota_us", v1 / "cpu.cfs_period_us"))
    found = [q for q in quotas if q is not None]
    return min(found) if found else None


def read_quota(quota_file: Path, period_file: Path | None) -> float | None:
    """QUOTA/PERIOD in CPUs from a cgroup file, or None when the file is absent or sets no limit."""
    try:
        words = quota_file.read_text().split()
        if period_file is not None:
            words += period_file.read_text().split()
        quota, period = words[0], float(words[1])
    except (OSError, IndexError, ValueError):
        return None
    if quota == "max" or float(quota) <= 0 or period <= 0:
        return None
    return float(quota) / period


def usable_cores(root: str | Path = "/sys/fs/cgroup", cgroup_file: str | Path = "/proc/self/cgroup") -> int:
    """The CPU cores this process can keep busy: the affinity mask (taskset) capped by the cgroup quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(root, cgroup_file)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def local_world_size(environ: dict[str, str] | None = None) -> int:
    """How many ranks torchrun started on this machine (LOCAL_WORLD_SIZE), 1 outside torchrun or when unreadable."""
    value = (os.environ if environ is None else environ).get("LOCAL_WORLD_SIZE", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def rank_cores(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """The cores one rank's workers may use (the usable cores shared by the local ranks, at least 1), and the ranks.

    Every rank of a torchrun job starts its own DataLoader workers on the same machine, so a rank sizing num_workers
    by the whole machine's cores asks for LOCAL_WORLD_SIZE times too many.
    """
    ranks = local_world_size(environ)
    return max(1, usable_cores() // ranks), ranks


MEMORY_MARGIN = 0.8  # a loader may use 80 % of the memory there was at the start: the rest is the margin


def memory_budget_mb() -> float:
    """What a loader may hold, the bench's pick and --num-workers auto alike: the margin's share of the memory
    available now plus what this process holds."""
    own = psutil.Process().memory_full_info()
    return MEMORY_MARGIN * (psutil.virtual_memory().available + getattr(own, "pss", own.rss)) / 2**20


@contextlib.contextmanager
def past_the_cores(num_workers: int) -> Iterator[None]:
    """Keep PyTorch's more-workers-than-cores warning out of a sweep that goes past the cores on purpose, for that
    setting only (DataLoader warns when it is made and at every new iterator: torch/utils/data/dataloader.py)."""
    with warnings.catch_warnings():
        if num_workers > usable_cores():
            warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)
        yield


def past_the_cores_note(workers: Sequence[int]) -> str | None:
    """The one line a sweep prints instead of PyTorch's warning, when some of its settings exceed the cores."""
    over = [n for n in dict.fromkeys(workers) if n > usable_cores()]
    if not over:
        return None
    return (f"num_workers {', '.join(map(str, over))}: more workers than the {usable_cores()} usable cores, on purpose, "
            "to show what happens past the core count; PyTorch's warning about that is left out for these settings only.")


def machine_summary() -> str:
    """The facts a throughput number means nothing without."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{usable_cores()} CPU cores, {gpu}, torch {torch.__version__}"


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread, as a DataLoader worker does, so a cost measured here is a worker's cost."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), so a results file says which cores its numbers came from."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages: how busy a shared machine was around a measurement."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def conditions_line(load_before: str) -> str:
    """The line every new results file ends with: the machine, the torch version, the load before and after."""
    return (f"Machine: {usable_cores()} usable cores of {os.cpu_count()} ({cpu_model()}), torch {torch.__version__}; "
            f"load average (1, 5, 15 min) before: {load_before}; after: {load_average()}")

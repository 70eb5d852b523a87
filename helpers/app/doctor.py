"""`python -m helpers doctor`: what this machine gives the DataLoader, each fact with a verdict and the fix.

Every probe takes what it reads (paths, limits, sizes) as parameters, so the verdicts are tested on fakes.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..machine import cpu_quota, local_world_size, usable_cores

OK, WARNING, PROBLEM = "ok", "warning", "problem"
GIB = 2**30
FDS_PER_WORKER = 4  # the main process's end of a worker's index queue, its data queue and its process sentinel


@dataclass
class Finding:
    """One fact about the machine, what it means for the loader (ok, warning or problem), and the fix."""

    check: str
    verdict: str
    value: str
    fix: str = ""


@dataclass
class Plan:
    """The loader the verdicts are judged against (the course's training defaults unless told otherwise)."""

    num_workers: int = 2
    batch_size: int = 16
    image_size: int = 224
    prefetch_factor: int = 2  # torch's default with workers (torch/utils/data/dataloader.py)
    tensors_per_batch: int = 2  # images and labels
    bytes_per_value: int = 4  # float32 images, the course's largest; 1 for the uint8 batches of the fast pipeline

    @property
    def batches_in_flight(self) -> int:
        """Batches the workers may hold finished at once, each in shared memory until the main process frees it."""
        return self.num_workers * self.prefetch_factor

    @property
    def batch_bytes(self) -> int:
        """One batch of images (float32 unless the plan says uint8)."""
        return self.batch_size * 3 * self.image_size**2 * self.bytes_per_value

    @property
    def bytes_in_memory(self) -> int:
        """The batches in flight and the one the training loop holds: what must fit in memory at once."""
        return (self.batches_in_flight + 1) * self.batch_bytes

    def largest_image_size(self, available: int) -> int:
        """The largest image size whose batches, with this plan's batch size, workers and prefetch, fit AVAILABLE."""
        per_pixel = (self.batches_in_flight + 1) * self.batch_size * 3 * self.bytes_per_value
        return int((available / per_pixel) ** 0.5)


def versions(python: tuple[int, int] = sys.version_info[:2], torch_version: str = torch.__version__) -> Finding:
    """Python 3.10+ and torch 2.4+, what the course is tested on."""
    import torchvision

    value = f"Python {python[0]}.{python[1]}, torch {torch_version}, torchvision {torchvision.__version__}"
    major_minor = tuple(int(part) for part in torch_version.split("+")[0].split(".")[:2])
    if python < (3, 10) or major_minor < (2, 4):
        return Finding("versions", PROBLEM, value, "install requirements.txt into a Python 3.10+ virtual environment")
    return Finding("versions", OK, value)


def start_method(method: str | None = None) -> Finding:
    """How DataLoader starts workers here: without multiprocessing_context it takes the default context."""
    method = method or multiprocessing.get_start_method()
    if method == "fork":
        return Finding("start method", OK, "fork: workers are copies of this process, so notebook-defined datasets "
                       "work", "touch no CUDA in the dataset, and create no thread pools before the loader starts")
    return Finding("start method", WARNING, f"{method}: each worker imports your code afresh and unpickles the dataset",
                   "define Dataset classes and transforms in a .py module, not a notebook cell, and guard scripts "
                   "with `if __name__ == '__main__':` (notebook 03)")


def cores(usable: int, counted: int | None, quota: float | None, ranks: int = 1, num_workers: int = 0) -> Finding:
    """The cores num_workers should be sized by, beside os.cpu_count(), which ignores quotas and affinity; under
    torchrun, each of the RANKS on this machine starts its own workers, so a rank gets its share of them."""
    value = f"{usable} usable (os.cpu_count() {counted}, " + (f"cgroup quota {quota:g} CPUs)" if quota else "no quota)")
    if ranks > 1:
        share = max(1, usable // ranks)
        value += f"; {ranks} ranks on this machine (torchrun's LOCAL_WORLD_SIZE): {share} per rank"
        if num_workers > share:
            return Finding("cpu cores", WARNING, value, f"size num_workers by {share} per rank, not by the machine: "
                           f"{ranks} ranks x {num_workers} workers = {ranks * num_workers} processes on {usable} cores")
    if counted and usable < counted:
        return Finding("cpu cores", WARNING, value, f"size num_workers by {usable}, not os.cpu_count(): more workers "
                       f"than usable cores only queue for them (`python -m helpers bench` measures the knee)")
    return Finding("cpu cores", OK, value)


def memory(available: int, plan: Plan) -> Finding:
    """RAM available against the worker processes the plan starts, each a Python with torch imported."""
    value = f"{available / GIB:.1f} GiB available"
    if available < GIB:
        return Finding("memory", PROBLEM, value, "close other programs or use --num-workers 0 or 1")
    if available < (1 + plan.num_workers / 2) * GIB:  # a rough guide: half a GiB per worker
        return Finding("memory", WARNING, value, "use fewer workers; watch for workers killed by the OOM killer")
    return Finding("memory", OK, value)


def too_large(plan: Plan, available: int) -> str | None:
    """Why the plan's batches cannot fit in AVAILABLE bytes of memory, with the largest image size that would; or None."""
    if plan.bytes_in_memory <= available:
        return None
    dtype = "uint8" if plan.bytes_per_value == 1 else "float32"
    return (f"{plan.batches_in_flight + 1} batches of {plan.batch_size} {dtype} images at {plan.image_size} px "
            f"({plan.num_workers} workers x prefetch {plan.prefetch_factor} in flight, and one in use) need "
            f"{plan.bytes_in_memory / GIB:.1f} GiB, and this machine has {available / GIB:.1f} GiB available; "
            f"accepted here: up to {plan.largest_image_size(available)} px at this batch size and number of workers")


def shared_memory(total: int | None, free: int | None, plan: Plan) -> Finding:
    """/dev/shm against the batches in flight: every batch a worker makes waits there for the main process."""
    if total is None or free is None:
        return Finding("/dev/shm", OK, "absent: this platform shares tensors another way")
    need = plan.batches_in_flight * plan.batch_bytes
    value = (f"{total / 2**20:.0f} MiB, {free / 2**20:.0f} MiB free; {plan.batches_in_flight} batches in flight "
             f"need about {need / 2**20:.0f} MiB")
    fix = ("in Docker, start the container with --shm-size=2g (or --ipc=host); else fewer workers, smaller batches "
           "or a lower --prefetch-factor")
    if free < need:
        return Finding("/dev/shm", PROBLEM, value, fix)
    if free < 4 * need:
        return Finding("/dev/shm", WARNING, value + " (little room for larger batches)", fix)
    return Finding("/dev/shm", OK, value)


def open_files(soft: int | None, hard: int | None, open_now: int, strategy: str, plan: Plan) -> Finding:
    """The open-files limit against the workers' needs: under file_descriptor, every shared tensor holds one."""
    if soft is None:
        return Finding("open files", OK, "no per-process limit on this platform")
    per_batch = plan.tensors_per_batch if strategy == "file_descriptor" else 0
    need = open_now + plan.num_workers * FDS_PER_WORKER + plan.batches_in_flight * per_batch
    unlimited = soft < 0 or soft >= 2**62  # RLIM_INFINITY is -1 on Linux, 2**63 - 1 on macOS
    value = (f"limit {'unlimited' if unlimited else soft} (hard {hard}), {open_now} open now, about {need} needed; "
             f"sharing strategy {strategy}")
    hard_limited = hard is not None and 0 <= hard < 2**62
    raise_it = (f"`ulimit -n {min(hard, 4096) if hard_limited else 4096}` before starting Python"
                if not hard_limited or hard > soft else
                f"a higher hard limit than {hard} (Docker: --ulimit nofile=4096:4096)")
    fix = (f"{raise_it}, or torch.multiprocessing.set_sharing_strategy('file_system'); the symptoms are "
           "'Too many open files' and 'received 0 items of ancdata'")
    if not unlimited and soft < need:
        return Finding("open files", PROBLEM, value, fix)
    if not unlimited and soft < 4 * need:
        return Finding("open files", WARNING, value + " (datasets that return many tensors need more)", fix)
    return Finding("open files", OK, value)


def accelerator(cuda_names: list[str], mps: bool) -> Finding:
    """CUDA (and so pinned memory) or MPS; none is fine for the course, only slower."""
    if cuda_names:
        return Finding("gpu", OK, f"CUDA: {', '.join(cuda_names)}; pin_memory=True speeds the copy (the course "
                       "sets it for CUDA only)")
    if mps:
        return Finding("gpu", OK, "Apple MPS; pin_memory is a CUDA feature, left off")
    return Finding("gpu", OK, "none: training runs on the CPU; pin_memory stays off (it only helps a GPU copy)")


def weights(path: Path) -> Finding:
    """Whether ResNet18's ImageNet weights are in torch's cache, so training needs no network."""
    if path.exists():
        return Finding("imagenet weights", OK, f"cached ({path.name})")
    return Finding("imagenet weights", WARNING, "not cached: training downloads them, or falls back to random "
                   "weights offline", "run once with network access: "
                   "`python -c \"from helpers.training.model import load_imagenet_weights as w; w()\"`")


def shm_space(path: str | Path = "/dev/shm") -> tuple[int | None, int | None]:
    """Total and free bytes of the shared-memory folder, or (None, None) without one."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None, None
    return usage.total, usage.free


def nofile_limits() -> tuple[int | None, int | None]:
    """The soft and hard open-files limits (RLIMIT_NOFILE), or (None, None) where there are none (Windows)."""
    try:
        import resource
    except ImportError:
        return None, None
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def open_fd_count() -> int:
    """Files this process holds open now (the interpreter, torch's libraries, the terminal)."""
    import psutil

    try:
        return psutil.Process().num_fds()
    except (AttributeError, psutil.Error):  # Windows has handles, not descriptors
        return 0


def diagnose(plan: Plan = Plan(), shm_path: str | Path = "/dev/shm", cgroup_root: str | Path = "/sys/fs/cgroup",
             cgroup_file: str | Path = "/proc/self/cgroup",
             nofile: tuple[int | None, int | None] | None = None) -> list[Finding]:
    """Every check, read from this machine; the parameters point the probes elsewhere (tests, other mounts)."""
    import psutil

    from ..training.model import imagenet_weights_path

    soft, hard = nofile if nofile is not None else nofile_limits()
    cuda = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return [
        versions(),
        start_method(),
        cores(usable_cores(cgroup_root, cgroup_file), os.cpu_count(), cpu_quota(cgroup_root, cgroup_file),
              local_world_size(), plan.num_workers),
        memory(psutil.virtual_memory().available, plan),
        shared_memory(*shm_space(shm_path), plan),
        open_files(soft, hard, open_fd_count(), torch.multiprocessing.get_sharing_strategy(), plan),
        accelerator(cuda, torch.backends.mps.is_available()),
        weights(imagenet_weights_path()),
    ]


def report(findings: list[Finding], plan: Plan) -> str:
    """The findings as lines a learner reads, problems first to catch the eye, then a one-line verdict."""
    mark = {OK: "ok     ", WARNING: "WARNING", PROBLEM: "PROBLEM"}
    lines = [f"Checked for num_workers={plan.num_workers}, batch {plan.batch_size}, {plan.image_size} px, "
             f"prefetch_factor {plan.prefetch_factor} on {platform.system()} {platform.machine()}:"]
    for f in findings:
        lines.append(f"{mark[f.verdict]}  {f.check}: {f.value}")
        if f.fix and f.verdict != OK:
            lines.append(f"         fix: {f.fix}")
        elif f.fix:
            lines.append(f"         note: {f.fix}")
    problems = sum(f.verdict == PROBLEM for f in findings)
    warnings = sum(f.verdict == WARNING for f in findings)
    lines.append(f"{problems} problem(s), {warnings} warning(s)." + (" Fix the problems before training." if problems
                                                                     else ""))
    return "\n".join(lines)


def as_json(findings: list[Finding], plan: Plan) -> str:
    """The same findings for machines."""
    return json.dumps({"plan": asdict(plan), "findings": [asdict(f) for f in findings],
                       "problems": sum(f.verdict == PROBLEM for f in findings)}, indent=2)


def exit_status(findings: list[Finding]) -> int:
    """0 when nothing is a problem, 1 otherwise (warnings do not fail)."""
    return int(any(f.verdict == PROBLEM for f in findings))

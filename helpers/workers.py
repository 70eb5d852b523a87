"""What worker processes do, shown with real processes: start methods, the main guard, pickling, per-worker seeds."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Interrupt)\b:?(.*)$")
_PID = re.compile(r"\bpid(\(s\))? [\d, ]+\d")


def error_lines(text: str) -> list[str]:
    """The exception lines of tracebacks, each once, with a message that starts on the next lines joined on."""
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines):
        match = _ERROR_LINE.match(line)
        if not match:
            continue
        if not match.group(1).strip():  # the message starts on the next line (the bootstrapping error does this)
            rest = []
            for nxt in lines[i + 1:]:
                if not nxt.strip():
                    if rest:
                        break
                    continue
                rest.append(nxt.strip())
            line = f"{line.strip()} {' '.join(rest)}"
        line = _PID.sub(lambda m: "pid(s) N" if m.group(1) else "pid N", line.strip())
        if line not in found:
            found.append(line)
    return found


class WorkerFailure(RuntimeError):
    """A DataLoader worker crashed, hung or could not start; the message names the likely cause and the fix."""


# (what the error says, what it usually means and what to do), the first match wins.
_WORKER_HINTS = (
    (re.compile(r"re-initialize CUDA in forked subprocess", re.I),
     "a worker started by fork touched CUDA after the main process had already used it, and CUDA cannot be used "
     "again in a forked child (torch/cuda/__init__.py refuses). Fix: keep the dataset and its transforms on the "
     "CPU and move each batch to the GPU in the training loop (as the course does: pin_memory plus a "
     "non-blocking copy, or the gpu pipeline, which decodes in the main process), or start workers with "
     "--start-method spawn."),
    (re.compile(r"timed out after", re.I),
     "no batch arrived within the loader's `timeout`. A worker hangs (a lock or thread pool copied by fork, a network "
     "drive that stopped answering) or one batch is simply that slow. Fix: raise --timeout, or set it to 0 to wait "
     "for ever; to find a hang, run once with --num-workers 0, or try --start-method spawn."),
    (re.compile(r"bus error|shared memory|/dev/shm", re.I),
     "the workers ran out of shared memory, through which every batch travels to the main process; containers give "
     "/dev/shm 64 MB by default. Fix: start the container with --shm-size=2g (or --ipc=host), or use fewer workers "
     "or smaller batches."),
    (re.compile(r"pickl|can't get attribute", re.I),
     "the dataset or its transform could not be sent to the worker processes. Under spawn or forkserver (Windows, "
     "macOS, and Linux from Python 3.14) each worker unpickles them: lambdas, classes defined in a notebook cell or "
     "in __main__, open files and locks cannot travel. Fix: define the Dataset and its transforms in a module (as "
     "helpers does), and open files inside __getitem__."),
    (re.compile(r"killed by signal: killed", re.I),
     "a worker was killed from outside, most often by the out-of-memory killer. Fix: fewer workers, smaller batches "
     "or prefetch_factor, or more memory."),
    (re.compile(r"exited unexpectedly|killed by signal", re.I),
     "a worker process died. Its own error, if it printed one, is above on stderr. Common causes: shared memory "
     "too small (stderr says 'bus error' or 'shm'; in a container, start it with --shm-size=2g or --ipc=host), "
     "under spawn it could not import or unpickle the dataset (define it in a module), it ran out of memory, or a "
     "C extension crashed. Fix: run once with --num-workers 0 to see the error in the main process."),
)


def explain_worker_failure(exc: BaseException) -> str | None:
    """The likely cause and fix for an error from a DataLoader's workers, or None when it is not one."""
    text = f"{type(exc).__name__}: {exc}"
    return next((hint for pattern, hint in _WORKER_HINTS if pattern.search(text)), None)


@contextlib.contextmanager
def explained_worker_failures() -> Iterator[None]:
    """Re-raise a worker crash, hang or pickling error as WorkerFailure naming the likely cause and the fix."""
    try:
        yield
    except Exception as exc:
        hint = explain_worker_failure(exc)
        if hint is None or isinstance(exc, WorkerFailure):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkerFailure(f"DataLoader workers failed ({type(exc).__name__}: {first}). Likely cause: {hint}") from exc


@dataclass
class ScriptRun:
    """A script's exit code, its standard output, and the errors its tracebacks end in (pids masked)."""

    returncode: int
    stdout: str
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        out = [f"exit code {self.returncode}"]
        out += [f"stdout: {line}" for line in self.stdout.splitlines()]
        out += [f"error:  {line}" for line in self.errors]
        return "\n".join(out)


def run_script(path: str | Path, timeout: float = 120) -> ScriptRun:
    """Run a Python file in a fresh interpreter, as a user would from a terminal, and keep what matters of its output."""
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return ScriptRun(result.returncode, result.stdout, error_lines(result.stderr))


@contextlib.contextmanager
def _stderr_to_file() -> Iterator[Path]:
    """Point file descriptor 2 at a file, so worker processes' tracebacks are caught rather than sprayed into the page."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as tmp:
        path = Path(tmp.name)
    fd = os.open(path, os.O_WRONLY)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield path
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class LoadAttempt:
    """The outcome of fetching one batch through worker processes."""

    start_method: str
    ok: bool
    batch: list | None
    error: str | None          # what the main process raised
    worker_errors: list[str]   # what the workers printed before dying

    def __str__(self) -> str:
        if self.ok:
            return f"{self.start_method}: ok, first batch {self.batch}"
        lines = [f"{self.start_method}: FAILED in the main process with {self.error}"]
        lines += [f"    the worker said: {line}" for line in self.worker_errors]
        return "\n".join(lines)


def try_workers(dataset: Dataset, start_method: str, num_workers: int = 2, batch_size: int = 4,
                timeout: float = 60, seed: int = 0) -> LoadAttempt:
    """Fetch one batch with workers started by START_METHOD; report the failure instead of raising it."""
    with _stderr_to_file() as log:
        try:
            loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                multiprocessing_context=start_method, timeout=timeout,
                                generator=torch.Generator().manual_seed(seed))
            batch = next(iter(loader))
            attempt = LoadAttempt(start_method, True, _plain(batch), None, [])
        except Exception as exc:  # any failure is the lesson here
            message = _PID.sub(lambda m: "pid(s) N" if m.group(1) else "pid N", f"{type(exc).__name__}: {exc}")
            attempt = LoadAttempt(start_method, False, None, message.splitlines()[0], [])
    attempt.worker_errors = error_lines(log.read_text(errors="replace"))
    log.unlink()
    return attempt


def _plain(batch):
    if isinstance(batch, torch.Tensor):
        return batch.tolist()
    if isinstance(batch, (list, tuple)):
        return [_plain(b) for b in batch]
    return batch


class RandomDraws(Dataset):
    """Each item is a random number drawn inside a worker, the way a random augmentation draws its parameters.

    source: "torch" draws from torch's global generator, which PyTorch seeds per worker; "numpy-copied" draws from a
    NumPy Generator made in __init__, so every worker gets its own copy of the same state (the classic bug);
    "numpy-per-worker" makes that Generator inside each worker from the worker's seed (the fix).
    """

    SOURCES = ("torch", "numpy-copied", "numpy-per-worker")

    def __init__(self, length: int = 8, source: str = "torch", seed: int = 0) -> None:
        if source not in self.SOURCES:
            raise ValueError(f"source must be one of {self.SOURCES}, got {source!r}")
        self.length, self.source = length, source
        self.rng = np.random.default_rng(seed) if source == "numpy-copied" else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[int, int, int]:
        info = torch.utils.data.get_worker_info()
        worker = -1 if info is None else info.id
        if self.source == "torch":
            draw = int(torch.randint(0, 1000, ()).item())
        else:
            if self.rng is None:  # numpy-per-worker: first call in this process
                self.rng = np.random.default_rng(torch.initial_seed())
            draw = int(self.rng.integers(0, 1000))
        return index, worker, draw


def worker_draws(num_workers: int = 2, seed: int | None = 0, length: int = 8,
                 source: str = "torch") -> list[tuple[int, int, int]]:
    """(index, worker id, random draw) for every item of one pass; seed=None leaves the loader unseeded."""
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    loader = DataLoader(RandomDraws(length, source), batch_size=None, num_workers=num_workers, generator=generator)
    return [tuple(int(v) for v in item) for item in loader]

"""The course's errors: each says what went wrong and how to fix it, and every command prints it as one line."""
from __future__ import annotations

import contextlib
import re
from typing import Iterator

GET_DATA_HINT = (
    "Make the built-in sample set with `python -m helpers sample-data data/sample`, "
    "or see data/README.md for the real cats-vs-dogs data."
)


class CourseError(Exception):
    """An error a user can fix; the command line prints its message as one line and exits with exit_status."""

    exit_status = 2


class OptionError(CourseError, ValueError):
    """An option value the course cannot use: the message names the option, the value and what is accepted."""


class DataError(CourseError, ValueError):
    """A data folder the course cannot use, with the reason and the fix in the message."""


class CheckpointError(CourseError, RuntimeError):
    """A checkpoint that cannot be resumed from, with the file and the fix in the message."""


class WorkerFailure(CourseError, RuntimeError):
    """A DataLoader worker crashed, hung or could not start; the message names the likely cause and the fix."""


class UserCodeError(CourseError, RuntimeError):
    """The user's own code raised (their module, factory, step or a dataset item): their frames are printed first."""


class LossNotFinite(CourseError, FloatingPointError):
    """Training produced a loss that is not a number; going on would train on garbage."""


# (what the error says, what it usually means and what to do), the first match wins.
WORKER_HINTS = (
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
    (re.compile(r"too many open files|items of ancdata", re.I),
     "the process ran out of open files. With the file_descriptor sharing strategy (Linux's default) every tensor "
     "a worker sends is a file descriptor, open until the batch is freed; 'received 0 items of ancdata' is the main "
     "process failing to receive one. Fix: raise the limit (`ulimit -n 4096`; `python -m helpers doctor` shows it), "
     "call torch.multiprocessing.set_sharing_strategy('file_system'), or send fewer tensors (stack an item's "
     "tensors into one)."),
    (re.compile(r"bus error|shared memory|/dev/shm|file </torch_", re.I),
     "the workers ran out of shared memory, through which every batch travels to the main process; containers give "
     "/dev/shm 64 MB by default. Fix: start the container with --shm-size=2g (or --ipc=host), or use fewer workers "
     "or smaller batches."),
    (re.compile(r"pickl|can't get attribute", re.I),
     "the dataset or its transform could not be sent to the worker processes. Under spawn or forkserver (Windows, "
     "macOS, and Linux from Python 3.14) each worker unpickles them: lambdas and functions defined inside other "
     "functions (as collate_fn, worker_init_fn or a transform), classes defined in a notebook cell, open files and "
     "locks cannot travel. Fix: define the Dataset, its transforms and those functions at the top level of a module "
     "(as helpers does; functools.partial of one for arguments), and open files inside __getitem__."),
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
    return next((hint for pattern, hint in WORKER_HINTS if pattern.search(text)), None)


@contextlib.contextmanager
def explained_worker_failures() -> Iterator[None]:
    """Re-raise a worker crash, hang or pickling error as WorkerFailure naming the likely cause and the fix."""
    try:
        yield
    except Exception as exc:
        hint = explain_worker_failure(exc)
        if hint is None or isinstance(exc, CourseError):
            raise
        raise WorkerFailure(f"DataLoader workers failed ({worker_error(exc)}). Likely cause: {hint}") from exc


def worker_error(exc: BaseException) -> str:
    """The error a worker itself raised, which DataLoader re-raises below 'Caught ... in DataLoader worker process N'."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback" in str(exc):
        return lines[-1]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def one_line(exc: CourseError) -> str:
    """The message as the command line prints it: one line, however the message was wrapped."""
    return "error: " + " ".join(str(exc).split())

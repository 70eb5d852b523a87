"""Teaching demos of worker processes, run for real: start methods, the main guard, pickling, per-worker seeds.

Notebook 03 shows these; training never imports them.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from ..processes import run_group

_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Interrupt)\b:?(.*)$")
_PID = re.compile(r"\bpid(\(s\))? [\d, ]+\d")


def mask_pids(text: str) -> str:
    """Process ids replaced by N, so the same failure reads the same on every run."""
    return _PID.sub(lambda m: "pid(s) N" if m.group(1) else "pid N", text)


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
        line = mask_pids(line.strip())
        if line not in found:
            found.append(line)
    return found


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
    result = run_group([sys.executable, str(path)], timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return ScriptRun(result.returncode, result.stdout, error_lines(result.stderr))


@dataclass
class CaughtStderr:
    """What stderr_to_file caught: TEXT is filled in when the block ends, after file descriptor 2 is restored."""

    path: Path
    text: str = ""


@contextlib.contextmanager
def stderr_to_file() -> Iterator[CaughtStderr]:
    """Point file descriptor 2 at a file, so worker processes' tracebacks are caught rather than sprayed into the page;
    on the way out, whatever happened, fd 2 is restored, the text kept and the file removed."""
    sys.stderr.flush()
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as tmp:
        caught = CaughtStderr(Path(tmp.name))
    saved = None
    try:
        saved = os.dup(2)
        fd = os.open(caught.path, os.O_WRONLY)
        os.dup2(fd, 2)
        os.close(fd)
        yield caught
    finally:
        try:
            if saved is not None:
                try:
                    os.dup2(saved, 2)
                finally:
                    os.close(saved)
        finally:  # the log goes even when stderr could not be restored
            with contextlib.suppress(OSError):
                caught.text = caught.path.read_text(errors="replace")
            caught.path.unlink(missing_ok=True)


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
                timeout: float = 10, seed: int = 0) -> LoadAttempt:
    """Fetch one batch with workers started by START_METHOD; report the failure instead of raising it.

    A forkserver's workers are not this process's children, so the loader learns that one died only when TIMEOUT
    runs out and it checks on them: long enough for a spawned worker to start, short enough not to wait for nothing.
    """
    with stderr_to_file() as log:
        try:
            loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                multiprocessing_context=start_method, timeout=timeout,
                                generator=torch.Generator().manual_seed(seed))
            batch = next(iter(loader))
            attempt = LoadAttempt(start_method, True, _plain(batch), None, [])
        except Exception as exc:  # any failure is the lesson here
            message = mask_pids(f"{type(exc).__name__}: {exc}")
            attempt = LoadAttempt(start_method, False, None, message.splitlines()[0], [])
    attempt.worker_errors = error_lines(log.text)
    return attempt


def _plain(batch):
    if isinstance(batch, torch.Tensor):
        return batch.tolist()
    if isinstance(batch, (list, tuple)):
        return [_plain(b) for b in batch]
    return batch

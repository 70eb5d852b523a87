"""The worker demonstrations behave as the notebook says, with real processes. The two guard scripts are run and
compared by nbval in notebook 03 (their exit codes, the bootstrapping error, the guarded script's batches)."""
import sys

import pytest

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from helpers.lessons.demos import error_lines, try_workers


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


def test_error_lines_joins_a_message_that_starts_on_the_next_line_and_masks_pids():
    text = "Traceback...\nRuntimeError: \n        An attempt has been made\n        to start.\n\nmore\n" \
           "RuntimeError: DataLoader worker (pid(s) 4242, 4243) exited unexpectedly\n"
    assert error_lines(text) == ["RuntimeError: An attempt has been made to start.",
                                 "RuntimeError: DataLoader worker (pid(s) N) exited unexpectedly"]


class _Squares(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return i * i


def test_a_class_spawned_workers_cannot_import_fails_with_the_workers_reason(monkeypatch):
    # Like a notebook cell's class: present in this process's __main__, absent from a fresh interpreter's.
    unimportable = type("Unimportable", (_Squares,), {"__module__": "__main__"})
    monkeypatch.setattr(sys.modules["__main__"], "Unimportable", unimportable, raising=False)
    assert try_workers(unimportable(), "fork").batch == [0, 1, 4, 9]
    attempt = try_workers(unimportable(), "spawn", num_workers=1)
    assert not attempt.ok and "exited unexpectedly" in attempt.error
    assert any("Can't get attribute 'Unimportable'" in line for line in attempt.worker_errors)


def test_worker_seeds_differ_per_worker_repeat_per_seed_and_numpy_copies_repeat():
    draws = worker_draws(2, seed=0)
    assert [w for _, w, _ in draws] == [0, 1] * 4
    assert draws == worker_draws(2, seed=0) and draws != worker_draws(2, seed=1)
    per_worker = lambda d, w: [x for _, wk, x in d if wk == w]  # noqa: E731
    copied = worker_draws(2, seed=0, source="numpy-copied")
    assert per_worker(copied, 0) == per_worker(copied, 1)
    fixed = worker_draws(2, seed=0, source="numpy-per-worker")
    assert per_worker(fixed, 0) != per_worker(fixed, 1)


def test_stderr_to_file_restores_stderr_and_removes_its_log_when_the_block_raises():
    import os

    import pytest

    from helpers.lessons.demos import stderr_to_file

    before = os.fstat(2).st_ino
    with pytest.raises(KeyboardInterrupt):
        with stderr_to_file() as caught:
            os.write(2, b"worker traceback\n")
            raise KeyboardInterrupt
    assert os.fstat(2).st_ino == before and not caught.path.exists() and caught.text == "worker traceback\n"


@pytest.mark.parametrize("failing", ["open", "dup2"])
def test_stderr_to_file_removes_its_log_when_redirecting_fails_first(failing, monkeypatch, tmp_path):
    import os
    import tempfile

    from helpers.lessons import demos

    class Failing:  # the os module as demos sees it, with one call failing (only there: pytest's capture needs os)
        def __getattr__(self, name):
            if name == failing:
                raise OSError("no descriptors left")
            return getattr(os, name)

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(demos, "os", Failing())
    before = os.fstat(2).st_ino
    with pytest.raises(OSError, match="no descriptors left"):
        with demos.stderr_to_file():
            pytest.fail("the block must not run when stderr could not be redirected")
    assert os.fstat(2).st_ino == before and list(tmp_path.iterdir()) == []

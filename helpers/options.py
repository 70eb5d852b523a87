"""Checks for option values, shared by every command and by TrainConfig: each says what it got and what it accepts.

Each check takes the text of a command-line option (or a value already of its type) and returns the value, or raises
argparse.ArgumentTypeError, which argparse reports against the option's name.
"""
from __future__ import annotations

import importlib
import math
import os
import sys
from argparse import ArgumentTypeError
from typing import Any, Callable

import torch

from .errors import OptionError
from .machine import usable_cores

WORKERS_PER_CORE = 4


def checked(value: Any, kind: type, what: str, ok: Callable[[Any], bool] = lambda number: True) -> Any:
    """VALUE as a KIND for which OK holds; otherwise the error argparse reports: what it got and WHAT is accepted."""
    refused = ArgumentTypeError(f"got {value!r}; accepted: {what}")
    if isinstance(value, bool) or (kind is int and isinstance(value, float)):
        raise refused
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise refused from None
    if (kind is float and not math.isfinite(number)) or not ok(number):
        raise ArgumentTypeError(f"got {number:g}; accepted: {what}" if kind is float else
                                f"got {number}; accepted: {what}")
    return number


def positive_int(value: Any) -> int:
    """A size or count that must be at least 1 (batch size, image size, epochs, batches)."""
    return checked(value, int, "a whole number, 1 or more", lambda n: n >= 1)


def count(value: Any) -> int:
    """A whole number of 0 or more (a seed)."""
    return checked(value, int, "a whole number, 0 or more", lambda n: n >= 0)


def positive_float(value: Any) -> float:
    """A rate that must be above 0 (the learning rate)."""
    return checked(value, float, "a number above 0", lambda n: n > 0)


def seconds(value: Any) -> float:
    """A time limit: 0 (no limit) or more."""
    return checked(value, float, "seconds, 0 (wait for ever) or more", lambda n: n >= 0)


def fraction(value: Any) -> float:
    """A share of the data, strictly between 0 and 1, so that both parts hold images."""
    return checked(value, float, "a fraction between 0 and 1 (not 0 or 1), for example 0.2", lambda n: 0 < n < 1)


def milliseconds(value: Any) -> float:
    """A pause that stands for work (a model step): 0 or more milliseconds."""
    return checked(value, float, "milliseconds, 0 or more", lambda n: n >= 0)


def needs_workers(flag: str, value: Any, num_workers: int, workers_flag: str = "--num-workers") -> None:
    """Refuse an option that only worker processes use (persistent workers, prefetch factor) with num_workers 0."""
    if num_workers == 0 and value:
        raise OptionError(f"{flag} {value} with {workers_flag} 0: it only applies to worker processes; give "
                          f"{workers_flag} 1 or more, or leave it out")


def max_workers() -> int:
    """The most worker processes the course starts on this machine."""
    return WORKERS_PER_CORE * usable_cores()


def worker_count(value: Any) -> int:
    """num_workers: 0 (load in the main process) up to what this machine's cores can hold."""
    limit = max_workers()
    what = (f"0 to {limit} on this machine ({WORKERS_PER_CORE} per usable CPU core, {usable_cores()} here: each "
            f"worker is a whole process with its own memory, and past the core count workers only queue for the CPU)")
    return checked(value, int, what, lambda n: 0 <= n <= limit)


def worker_count_or_auto(value: Any) -> int | str:
    """num_workers, or 'auto': the trainer tunes it between epochs (helpers.training.autotune)."""
    if str(value) == "auto":
        return "auto"
    try:
        return worker_count(value)
    except ArgumentTypeError as exc:
        raise ArgumentTypeError(f"{exc}; or auto") from None


WAITING_WORKERS_PER_CORE = 16  # workers that mostly wait on storage use little CPU: Little's law asks for many more


def waiting_worker_count(value: Any) -> int:
    """num_workers for a loader that may wait on storage: up to 16 per core; without the wait, worker_count's limit
    applies (refuse_workers_past_the_limit)."""
    limit = WAITING_WORKERS_PER_CORE * usable_cores()
    what = (f"0 to {limit} on this machine ({WAITING_WORKERS_PER_CORE} per usable CPU core when files wait on storage, "
            f"--read-latency-ms; {max_workers()} without)")
    return checked(value, int, what, lambda n: 0 <= n <= limit)


def refuse_workers_past_the_limit(workers: Any, waits: Any) -> None:
    """More than worker_count's limit only when the files wait on storage: there, waiting workers leave their cores."""
    over = [n for n in workers if n > max_workers()]
    if over and not waits:
        raise OptionError(f"--workers {over[0]}: more than {max_workers()} workers ({WORKERS_PER_CORE} per usable core) "
                          f"only help a loader that waits on storage; give --read-latency-ms to model that wait, or "
                          f"at most {max_workers()} workers")


def device_name(value: Any) -> str:
    """'auto', 'cpu', or a CUDA (or MPS) device that exists on this machine."""
    text = str(value)
    accepted = "auto, cpu, cuda or cuda:N (N below the number of GPUs)"
    if text in ("auto", "cpu"):
        return text
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ArgumentTypeError(f"got {text!r}; accepted: {accepted}") from None
    if device.type == "cuda":
        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if found == 0:
            raise ArgumentTypeError(f"got {text!r}, but this machine has no CUDA device; accepted here: auto or cpu")
        if device.index is not None and device.index >= found:
            raise ArgumentTypeError(f"got {text!r}; this machine has {found} CUDA device(s): cuda:0 to cuda:{found - 1}")
        return text
    if device.type == "mps" and torch.backends.mps.is_available():
        return text
    raise ArgumentTypeError(f"got {text!r}; accepted: {accepted}")


def import_named(spec: str, flag: str, path: str | None = None) -> Callable:
    """The callable SPEC names ('module:function', importable from PATH or sys.path); OptionError names what is wrong."""
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise OptionError(f"{flag} {spec}: expected MODULE:FUNCTION, for example my_loader:make_loader")
    if path is not None:
        if not os.path.isdir(path):
            raise OptionError(f"--path {path}: not a folder; give the folder that holds {module_name}.py")
        sys.path.insert(0, os.path.abspath(path))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in --path {path} and sys.path)" if path else " (set PYTHONPATH, or give --path FOLDER)"
        raise OptionError(f"{flag} {spec}: cannot import {module_name}: {exc}{where}") from None
    found = module
    for part in name.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise OptionError(f"{flag} {spec}: {module_name} has no {name}")
    if not callable(found):
        raise OptionError(f"{flag} {spec}: {name} is a {type(found).__name__}, not a function")
    return found

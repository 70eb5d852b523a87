"""A user's own code under `profile`: their function imported, their factory called and checked, and what their code
raises shown as their frames first, then one line saying what raised and what to try.

What can raise is named: importing their module, their factory, their step, or one dataset item (by its index, and
the worker that read it). A worker reports the index it failed on by a note on its exception, which DataLoader
carries to the main process in the worker's traceback text (torch/_utils.py, ExceptionWrapper).
"""
from __future__ import annotations

import contextlib
import inspect
import re
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from torch.utils.data import DataLoader

from ..errors import CourseError, OptionError, UserCodeError
from ..options import import_named

NOTE = "profile: the item that raised is dataset index"
NOT_THEIRS = tuple({str(Path(__file__).resolve().parents[1]),
                    *(str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("stdlib", "purelib", "platlib"))})
FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line \d+, in .*\n(?:    .*\n)?', re.M)


def theirs(filename: str) -> bool:
    """Whether a frame's file is the user's: not the course's, not Python's own library, not an installed package."""
    return not filename.startswith("<frozen") and not str(Path(filename).resolve()).startswith(NOT_THEIRS)


def raised(exc: BaseException, what: str, next_step: str) -> UserCodeError:
    """Print EXC's traceback cut to the user's own frames (a worker's: from the text DataLoader carries), and return
    the one line for the boundary: WHAT raised which error, and NEXT_STEP."""
    text = str(exc)
    if "Original Traceback" in text:  # raised in a worker: its traceback is text in the message
        frames = [m.group() for m in FRAME.finditer(text) if theirs(m.group("file"))]
        last = next((line for line in reversed(text.strip().splitlines())
                     if line.strip() and not line.startswith((" ", NOTE))), type(exc).__name__)
    else:
        frames = traceback.format_list([f for f in traceback.extract_tb(exc.__traceback__) if theirs(f.filename)])
        last = traceback.format_exception_only(type(exc), exc)[0].strip()
    print("Your code, most recent call last:\n" + "".join(frames) + last, file=sys.stderr, flush=True)
    return UserCodeError(f"{what} raised {' '.join(last.split())}; {next_step}")


@contextlib.contextmanager
def calling(what: str, next_step: str) -> Iterator[None]:
    """Around a call into the user's code (their import, factory or step): what it raises becomes one line."""
    try:
        yield
    except CourseError:
        raise
    except Exception as exc:
        raise raised(exc, what, next_step) from None


def in_python(spec: str, call: str = "") -> str:
    """The Python that reproduces SPEC ('module:function') alone: `from module import function; function(...)`."""
    module, _, name = spec.partition(":")
    return f"`from {module} import {name.split('.')[0]}; {name}{call}`"


def guarded(step: Callable[[Any], Any] | None, spec: str | None, factory: str) -> Callable[[Any], Any] | None:
    """STEP, with what it raises turned into one line naming it."""
    if step is None:
        return None

    def call(batch: Any) -> Any:
        with calling(f"your step {spec}", f"call it on one batch of {in_python(factory, '(num_workers=0)')} in "
                                          "Python and fix what raises"):
            return step(batch)
    return call


def failing_index(dataset: Any, indices: Iterable[Any]) -> Any:
    """The first of INDICES whose item DATASET cannot give, or None (read again, only after a failure)."""
    for i in indices:
        try:
            dataset[i]
        except Exception:
            return i
    return None


def name_failing_items() -> Callable[[], None]:
    """In this process, a failed fetch of a map-style dataset notes the index that raised; returns the undo.

    Wraps the fetch of torch's map-style fetcher (torch/utils/data/_utils/fetch.py); only a fetch that failed reads
    its items again, one by one, to find the first that raises."""
    try:
        from torch.utils.data._utils.fetch import _MapDatasetFetcher as fetcher
    except ImportError:
        return lambda: None
    original = fetcher.fetch

    def fetch(self: Any, index: Any) -> Any:
        try:
            return original(self, index)
        except Exception as exc:
            found = failing_index(self.dataset, index if isinstance(index, (list, tuple)) else [index])
            if found is not None and not any(n.startswith(NOTE) for n in getattr(exc, "__notes__", [])):
                exc.add_note(f"{NOTE} {found}")
            raise

    fetcher.fetch = fetch
    return lambda: setattr(fetcher, "fetch", original)


@contextlib.contextmanager
def reading(spec: str, dataset: Any = None, indices: Iterable[Any] = ()) -> Iterator[None]:
    """Around reading the user's loader (or DATASET's INDICES, here): what its items raise becomes one line naming
    the dataset index and the worker that read it."""
    try:
        yield
    except CourseError:
        raise
    except Exception as exc:
        if dataset is not None and (found := failing_index(dataset, indices)) is not None:
            exc.add_note(f"{NOTE} {found}")
        text = "\n".join([str(exc), *getattr(exc, "__notes__", [])])
        worker, index = re.search(r"in DataLoader worker process (\d+)", text), re.search(f"{NOTE} (.+)", text)
        where = f"worker {worker.group(1)}" if worker else "the main process"
        items = in_python(spec, "(num_workers=0).dataset")
        error = (raised(exc, f"dataset index {index.group(1)}, read in {where}", f"read item {index.group(1)} of "
                        f"{items} in Python and fix that item or skip it") if index else
                 raised(exc, f"your loader, in {where} (its dataset, collate_fn or worker_init_fn)",
                        f"read a few items of {items} in Python and fix what raises"))
        traceback.clear_frames(exc.__traceback__)  # its frames hold the loader's iterator, and so the workers
        raise error from None


def check_factory(factory: Callable, spec: str) -> None:
    """Refuse a factory that cannot be called as FACTORY(num_workers=n)."""
    try:
        inspect.signature(factory).bind(num_workers=0)
    except TypeError:
        raise OptionError(f"{spec}: cannot be called as {spec.partition(':')[2]}(num_workers=n); give it a "
                          f"num_workers parameter and pass it to DataLoader(...)") from None
    except ValueError:  # a builtin without a signature: calling it will say
        pass


def imported(spec: str, flag: str, path: str | None) -> Callable:
    """The user's function SPEC names ('module:function'); what their module raises on import becomes one line."""
    module = spec.partition(":")[0]
    with calling(f"importing {module} ({flag} {spec})", f"run `python -c 'import {module}'` from the folder that "
                                                         "holds it and fix what raises"):
        return import_named(spec, flag, path)


def build(factory: Callable, n: int, spec: str) -> DataLoader:
    """The user's DataLoader for N workers, refused with one line when it is not one."""
    with calling(f"your factory {spec}(num_workers={n})", f"run {in_python(spec, f'(num_workers={n})')} in Python "
                                                          "and fix what raises"):
        loader = factory(num_workers=n)
    if not isinstance(loader, DataLoader):
        raise OptionError(f"{spec} returned a {type(loader).__name__}, not a torch.utils.data.DataLoader")
    if loader.num_workers != n:
        raise OptionError(f"{spec} was asked for num_workers={n} but its DataLoader has {loader.num_workers}: pass "
                          "the factory's num_workers on to DataLoader(...)")
    return loader

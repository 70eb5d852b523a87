"""Which attributes of a Dataset make every worker grow: Python containers holding many objects (pytorch/pytorch#13246).

Reading an object in a worker writes its reference count, so under fork each page of small Python objects a worker
reads is copied into it; over an epoch a list of a million (path, label) tuples is copied whole into every worker.
NumPy arrays of numbers or bytes hold their data in one buffer with no per-item counts, so reading them copies
nothing (notebook 08, `python -m helpers memory`). This walks a dataset's attributes and names the containers.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any, Iterator

import numpy as np

MANY = 10_000  # Python objects inside one attribute from which it is named: 10,000 small objects are a few MB
DEPTH = 4  # attributes of attributes followed from the dataset (dataset.index.entries is depth 2)
BUDGET = 5_000_000  # objects counted inside one container at most, so a huge one is walked in bounded time
CONTAINERS = (list, tuple, dict, set, frozenset)
FIX = ("keep it in NumPy arrays instead: labels as an int64 array, paths as one byte buffer with offsets "
       "(helpers.loading.sample_table.SampleTable(paths, labels) does both), or fixed-width bytes "
       "(np.array([p.encode() for p in paths])); a pyarrow table works too")


@dataclass(frozen=True)
class Culprit:
    """One attribute that holds many Python objects, what it holds, and the fix."""

    attribute: str  # e.g. dataset.entries
    kind: str       # list, dict, object array, ...
    length: int     # its own len()
    objects: int    # Python objects inside it, itself included (at least, when the count stopped at BUDGET)
    mb: float       # sys.getsizeof of those objects
    fix: str = FIX

    def line(self) -> str:
        """The culprit in one sentence."""
        more = "at least " if self.objects >= BUDGET else ""
        return (f"{self.attribute}: a {self.kind} of {self.length:,} entries, {more}{self.objects:,} Python objects, "
                f"{self.mb:.1f} MB; every worker that reads it copies the pages it touches. Fix: {self.fix}")


def objects_inside(container: Any, budget: int = BUDGET) -> tuple[int, int]:
    """How many Python objects CONTAINER holds (itself and everything within, each counted once) and their bytes."""
    seen: set[int] = set()
    stack, count, size = [container], 0, 0
    while stack and count < budget:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        count += 1
        size += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, CONTAINERS):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray) and obj.dtype == object:
            stack.extend(obj.ravel().tolist())
    return count, size


def attributes(obj: Any) -> Iterator[tuple[str, Any]]:
    """OBJ's own attributes: its __dict__ and its __slots__."""
    yield from getattr(obj, "__dict__", {}).items()
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                yield name, getattr(obj, name)


def followed(value: Any) -> bool:
    """Whether to look inside VALUE's attributes: an object of some class, not a module, function, class or array."""
    skip = (ModuleType, FunctionType, BuiltinFunctionType, MethodType, type, np.ndarray, str, bytes, int, float)
    if isinstance(value, skip):
        return False
    return hasattr(value, "__dict__") or bool(getattr(type(value), "__slots__", ()))


def culprits(dataset: Any, name: str = "dataset", many: int = MANY) -> list[Culprit]:
    """The attributes of DATASET (and of the objects it holds, DEPTH deep) holding at least MANY Python objects,
    largest first: lists, tuples, dicts and sets, and NumPy arrays of dtype object."""
    found: dict[int, Culprit] = {}  # by the container's id: one object reached by two names is named once
    visited: set[int] = set()
    stack = [(name, dataset, 0)]
    while stack:
        path, obj, depth = stack.pop()
        if id(obj) in visited:
            continue
        visited.add(id(obj))
        for attr, value in attributes(obj):
            where = f"{path}.{attr}"
            if id(value) in found:
                found[id(value)] = replace(found[id(value)], attribute=f"{found[id(value)].attribute} (also {where})")
            elif isinstance(value, CONTAINERS) or (isinstance(value, np.ndarray) and value.dtype == object):
                count, size = objects_inside(value)
                if count >= many:
                    kind = "NumPy array of Python objects" if isinstance(value, np.ndarray) else type(value).__name__
                    found[id(value)] = Culprit(where, kind, len(value), count, size / 2**20)
                elif depth < DEPTH:  # a short list of objects that hold big containers (splits, datasets)
                    items = value.values() if isinstance(value, dict) else value
                    for k, item in enumerate(list(items)[:32]):
                        if followed(item):
                            stack.append((f"{where}[{k}]", item, depth + 1))
            elif depth < DEPTH and followed(value):
                stack.append((where, value, depth + 1))
    return sorted(found.values(), key=lambda c: -c.objects)


def as_dicts(found: list[Culprit]) -> list[dict]:
    """Culprits as plain dicts, to cross from a worker to the main process as JSON."""
    return [asdict(c) for c in found]

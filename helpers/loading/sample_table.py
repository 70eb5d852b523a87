"""The dataset's index as three NumPy arrays, so that workers reading it copy nothing (copy-on-read, notebook 08).

Under fork a worker shares its parent's memory until it writes to a page. Reading a Python object writes to it:
its reference count changes, and the page holding it is copied. A list of a million (path, label) objects is a
million reference counts spread over every page of the index. Here the paths are one byte buffer with offsets and
the labels one integer array: three objects, whatever the number of entries, whose data pages are only read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence, overload

import numpy as np


@dataclass(frozen=True)
class Sample:
    path: str
    label: int


class SampleTable(Sequence[Sample]):
    """(path, label) entries stored as a byte buffer, its end offsets and a label array; entry i is made on reading."""

    def __init__(self, paths: Iterable[str], labels: Iterable[int]) -> None:
        encoded = [os.fsencode(p) for p in paths]
        self.buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        self.ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
        self.labels = np.fromiter(labels, dtype=np.int64)
        if len(self.labels) != len(self.ends):
            raise ValueError(f"{len(self.ends)} paths but {len(self.labels)} labels")

    @classmethod
    def from_samples(cls, samples: Iterable[Sample]) -> SampleTable:
        """A table of SAMPLES (Sample objects, or a table already, which is returned as it is)."""
        if isinstance(samples, SampleTable):
            return samples
        samples = list(samples)
        return cls((s.path for s in samples), (s.label for s in samples))

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> str:
        """Entry I's path, decoded from the buffer (a new string, so nothing shared is written)."""
        i = range(len(self))[i]
        start = int(self.ends[i - 1]) if i else 0
        return os.fsdecode(self.buffer[start:int(self.ends[i])].tobytes())

    @overload
    def __getitem__(self, i: int) -> Sample: ...
    @overload
    def __getitem__(self, i: slice) -> SampleTable: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(range(len(self))[i])
        return Sample(self.path(i), int(self.labels[i]))

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def take(self, indices: Sequence[int]) -> SampleTable:
        """The entries at INDICES, in that order, as a new table (a split, a shard)."""
        indices = list(indices)
        return SampleTable((self.path(i) for i in indices), self.labels[np.asarray(indices, dtype=np.int64)])

    @property
    def paths(self) -> list[str]:
        return [self.path(i) for i in range(len(self))]

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes + self.ends.nbytes + self.labels.nbytes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleTable):
            return NotImplemented
        return (np.array_equal(self.ends, other.ends) and np.array_equal(self.labels, other.labels)
                and np.array_equal(self.buffer, other.buffer))

    __hash__ = None  # type: ignore[assignment]  # mutable arrays: equal tables need not stay equal

    def __repr__(self) -> str:
        return f"SampleTable({len(self)} entries, {self.nbytes} bytes)"

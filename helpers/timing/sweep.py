"""One sweep for every measuring command: settings timed in turns within each repeat, summed up as median, min, max
and a verdict (helpers.verdict), so a machine that drifts during a sweep moves every setting alike."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

from ..verdict import verdict

S = TypeVar("S")
SKIP = None  # what measure_once returns for a setting that is not timed (the caller's notes say why)


@dataclass
class Swept(Generic[S]):
    """One setting's repeats: what each measurement returned, the values compared, and their summary."""

    setting: S
    runs: list = field(default_factory=list)       # what measure_once returned, one per repeat, in order
    values: list[float] = field(default_factory=list)
    verdict: str | None = None  # against its neighbour (or the reference); None for the first of its group
    against: S | None = None    # the setting the verdict compares with

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def median_of(self, get: Callable[[Any], float | None]) -> float | None:
        """The median of GET over the runs, leaving out None; None when no run has a value."""
        found = [v for v in map(get, self.runs) if v is not None]
        return statistics.median(found) if found else None


def sweep(settings: Sequence[S], measure_once: Callable[[S], Any], repeats: int, *,
          value: Callable[[Any], float] = float, on_repeat: Callable[[S, Any], object] | None = None,
          group: Callable[[S], Hashable] = lambda s: None, reference: Any = None,
          higher_is_better: bool = True) -> list[Swept[S]]:
    """Time every setting REPEATS times, the settings taking turns within each repeat; one Swept per timed setting.

    MEASURE_ONCE(setting) returns one measurement, or SKIP (None) for a setting left out (then it gets no row);
    VALUE reads the number compared from it. ON_REPEAT(setting, measurement) is called after every call, skipped
    ones included, so a progress bar or a log can follow. Each row's verdict compares it with the row before it in
    the same GROUP, or, when REFERENCE is given, with that setting.
    """
    found: dict[int, Swept[S]] = {}
    for _ in range(repeats):
        for k, setting in enumerate(settings):
            run = measure_once(setting)
            if run is not SKIP:
                row = found.setdefault(k, Swept(setting))
                row.runs.append(run)
                row.values.append(value(run))
            if on_repeat is not None:
                on_repeat(setting, run)
    rows = [found[k] for k in sorted(found)]
    before: dict[Hashable, Swept[S]] = {}
    base = next((r for r in rows if r.setting == reference), None) if reference is not None else None
    for row in rows:
        other = base if reference is not None else before.get(group(row.setting))
        if other is not None and other is not row:
            row.verdict = verdict(row.values, other.values, higher_is_better)
            row.against = other.setting
        before[group(row.setting)] = row
    return rows

"""Comparisons in words, computed from repeats: the one place a sentence like "A beats B" comes from.

A setting is faster than another only when every repeat of it beat every repeat of the other (the ranges do
not overlap); anything else is "no measurable difference". Runs that disagree give "no measurable difference" too.
"""
from __future__ import annotations

from typing import Iterable, Sequence

FASTER = "faster"
SLOWER = "slower"
SAME = "no measurable difference"
TOO_FEW = "too few repeats"
MIN_REPEATS = 5


def verdict(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True,
            min_repeats: int = MIN_REPEATS) -> str:
    """A against B from their repeats (rates by default): faster or slower only when the ranges do not overlap."""
    if min(len(a), len(b)) < min_repeats:
        return TOO_FEW
    if not higher_is_better:
        a, b = [-x for x in a], [-x for x in b]
    if min(a) > max(b):
        return FASTER
    if max(a) < min(b):
        return SLOWER
    return SAME


def replicated(verdicts: Iterable[str]) -> str:
    """The verdict of several independent runs: theirs when every run agrees, else no measurable difference."""
    found = list(verdicts)
    if not found or TOO_FEW in found:
        return TOO_FEW
    return found[0] if all(v == found[0] for v in found) else SAME

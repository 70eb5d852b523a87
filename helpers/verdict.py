"""Comparisons in words, computed from repeats: the one place a sentence like "A beats B" comes from.

The repeats of a sweep are taken in turns (rounds): round i of A ran right beside round i of B, so a machine that
drifts moves both alike. A against B is read from the per-round ratios A_i / B_i, not from the two sets of numbers:
  - round 1 is a warm-up and is left out (page cache, allocator, the workers' first imports: in
    results/autotune_cpu2_run1.txt round 1 was the slowest of four of the six settings, by up to 3x);
  - the other rounds give the mean log-ratio and its Student-t interval at LEVEL (95 %, two-sided);
  - "faster" (or "slower") when that interval excludes 1x AND the ratio itself is past MARGIN (5 %, the smallest
    difference the course calls worth a setting); anything else is "no measurable difference".
False alarms: when A and B are the same, the interval excludes 1x in at most 5 % of comparisons if the log-ratios
are Gaussian; the margin and heavy-tailed timing noise make it rarer. Power: it takes MIN_REPEATS (5) repeats, 4
compared rounds; for Gaussian log-ratios a 1.3x difference is then found in at least 90 % of comparisons while their
standard deviation is under 0.10 (one round's ratio off by about 10 %); a busier machine needs more repeats.
Measured on a real loader (results/verdict_power_cpu2.txt, scripts/measure_verdict.py, 100 trials of each): at 5
repeats, "no measurable difference" in 99 % of A/A trials and "slower" in 96 % of 1.3x trials (the old rule, ranges
that do not overlap: 87 %).
"""
from __future__ import annotations

import math
import statistics
from typing import Iterable, Sequence

FASTER = "faster"
SLOWER = "slower"
SAME = "no measurable difference"
TOO_FEW = "too few repeats"
MIN_REPEATS = 5  # rounds of each setting: the first is a warm-up, the other 4 are compared
WARM_UP = 1      # rounds left out at the start
MARGIN = 0.05    # a ratio closer to 1 than this is "no measurable difference", however sure
LEVEL = 0.95     # the t-interval's coverage: at most 1 - LEVEL false alarms, fewer with the margin
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}  # Student t's 97.5th percentile (two-sided 95 %), by degrees of freedom


def t_95(df: int) -> float:
    """Student t's 97.5th percentile for DF degrees of freedom (the nearest tabled DF at or below it; 1.96 past 30)."""
    return T_95[max(k for k in T_95 if k <= df)] if df <= 30 else 1.960


def ratio_interval(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True,
                   min_repeats: int = MIN_REPEATS) -> tuple[float, float, float] | None:
    """How many times better A is than B, with its LEVEL interval, from the rounds after the warm-up; None: too few."""
    rounds = list(zip(a, b))[WARM_UP:]
    if min(len(a), len(b)) < min_repeats or len(rounds) < 2:
        return None
    logs = [math.log(x / y) if higher_is_better else math.log(y / x) for x, y in rounds]
    mean, half = statistics.fmean(logs), t_95(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def verdict(a: Sequence[float], b: Sequence[float], higher_is_better: bool = True,
            min_repeats: int = MIN_REPEATS) -> str:
    """A against B from repeats taken in turns (rates by default): faster or slower only when the paired ratios say so."""
    found = ratio_interval(a, b, higher_is_better, min_repeats)
    if found is None:
        return TOO_FEW
    ratio, low, high = found
    if low > 1 and ratio > 1 + MARGIN:
        return FASTER
    if high < 1 and ratio < 1 / (1 + MARGIN):
        return SLOWER
    return SAME


def replicated(verdicts: Iterable[str]) -> str:
    """The verdict of several independent runs: theirs when every run agrees, else no measurable difference."""
    found = list(verdicts)
    if not found or TOO_FEW in found:
        return TOO_FEW
    return found[0] if all(v == found[0] for v in found) else SAME

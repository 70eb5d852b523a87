"""The figure of the far-away-files lesson: images/s against num_workers, one line per wait, the cores marked."""
from __future__ import annotations

import statistics
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure


def plot_far_away(rows: Sequence[dict], rules: Sequence[dict], title: str = "") -> Figure:
    """Measured images/s against num_workers, one line per latency, so the eye compares the waits first.

    ROWS: one per (latency_ms, num_workers) and run, with images_per_s and, where measured, images_per_s_min and
    _max (storage results CSVs, one run or several); several runs of a setting draw the median of their medians,
    the bars from the lowest min to the highest max. RULES: one per latency and run with predicted_workers and cores;
    Little's law's workers are marked on each line as a point (a number of workers, not a rate).
    """
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    marked = False
    for latency in sorted({r["latency_ms"] for r in rows}):
        mine = [r for r in rows if r["latency_ms"] == latency and r.get("worker_kind", "process") == "process"]
        n = sorted({r["num_workers"] for r in mine})
        at = {w: [r for r in mine if r["num_workers"] == w] for w in n}
        median = [statistics.median(r["images_per_s"] for r in at[w]) for w in n]
        low = [m - min(r.get("images_per_s_min", m) for r in at[w]) for m, w in zip(median, n)]
        high = [max(r.get("images_per_s_max", m) for r in at[w]) - m for m, w in zip(median, n)]
        runs = len(at[n[0]])
        line = ax.errorbar(n, median, yerr=[low, high], fmt="o-", capsize=3, lw=2,
                           label=f"{latency:g} ms per file" + (f" ({runs} runs)" if runs > 1 else ""))
        predicted = [r["predicted_workers"] for r in rules if r["latency_ms"] == latency]
        if predicted and latency:
            x = statistics.median(predicted)
            y = float(np.interp(x, n, median))
            ax.plot([x], [y], marker="D", ms=9, mfc="white", color=line.lines[0].get_color(), ls="none",
                    label=None if marked else "Little's law's num_workers for that wait")
            marked = True
    if rules:
        ax.axvline(rules[0]["cores"], color="grey", ls="--", lw=1, label=f"{rules[0]['cores']} cores")
    ax.set(title=title or "Images/s against num_workers when every file waits on storage",
           xlabel="num_workers", ylabel="images/s (median; bars: min to max of the repeats)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=9, loc="lower right")
    fig.tight_layout()
    return fig

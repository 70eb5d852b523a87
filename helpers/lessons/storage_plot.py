"""The figure of the far-away-files lesson: images/s against num_workers at each latency, Little's law drawn beside."""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

from ..which_workers import Costs, predict


def plot_far_away(rows: Sequence[dict], rules: Sequence[dict], title: str = "") -> Figure:
    """Measured images/s (median, min to max) against num_workers per latency, Little's law dashed, its pick dotted.

    ROWS: one per (latency_ms, num_workers) with images_per_s and, where measured, images_per_s_min and _max (a
    storage results CSV, or a notebook's own); RULES: one per latency with predicted_workers, cpu_ms_per_item, cores.
    """
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for k, rule in enumerate(rules):
        mine = sorted((r for r in rows if r["latency_ms"] == rule["latency_ms"]
                       and r.get("worker_kind", "process") == "process"), key=lambda r: r["num_workers"])
        if not mine:
            continue
        n = [r["num_workers"] for r in mine]
        median = [r["images_per_s"] for r in mine]
        low = [m - r.get("images_per_s_min", m) for m, r in zip(median, mine)]
        high = [r.get("images_per_s_max", m) - m for m, r in zip(median, mine)]
        colour = colours[k % len(colours)]
        ax.errorbar(n, median, yerr=[low, high], fmt="o-", color=colour, capsize=3,
                    label=f"{rule['latency_ms']:g} ms per file, measured")
        latency_s, cpu_s = rule["latency_ms"] / 1000, rule["cpu_ms_per_item"] / 1000
        grid = list(range(0, max(n) + 1))
        costs = Costs(cpu_s, latency_s, cores=rule["cores"])
        ax.plot(grid, [predict(costs, w).images_per_s for w in grid], "--", color=colour,
                alpha=0.7, label=f"{rule['latency_ms']:g} ms, Little's law ({rule['predicted_workers']:.1f} workers)")
        ax.axvline(rule["predicted_workers"], color=colour, lw=0.8, ls=":")
    if rules:
        ax.axvline(rules[0]["cores"], color="grey", lw=1.5, label=f"{rules[0]['cores']} cores")
    ax.set(title=title or "Images/s against num_workers when every file waits on storage",
           xlabel="num_workers", ylabel="images/s (median of repeats, bars: min to max)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig

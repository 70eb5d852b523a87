"""The timeline as a picture: one lane per worker and one for the main process, each batch a bar."""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

from ..timing.timeline import MAIN, lane


def lane_name(worker: int | str) -> str:
    return "main process" if worker == MAIN else lane(worker)


def bar_id(row: dict) -> str:
    """The name a batch's bar carries in the figure, so the plot can be checked against the CSV."""
    return f"epoch {row['epoch']} batch {row['batch']} by {lane_name(row['worker'])}"


def plot_timeline(rows: Sequence[dict], title: str = "Who made each batch, and when") -> Figure:
    """A Gantt chart of the rows of timeline.record: the work, the queue before it, the main process's waits and steps.

    Start-up (iter() to the first batch sent) is shaded; a dashed line marks where each epoch's iter() was called.
    """
    workers = sorted({r["worker"] for r in rows if r["worker"] != MAIN}, key=str)
    lanes = [MAIN, *workers]
    fig = Figure(figsize=(11, 1.3 + 0.55 * len(lanes)))
    ax = fig.subplots()
    y = {w: len(lanes) - 1 - i for i, w in enumerate(lanes)}
    labelled: set[str] = set()

    def bar(lane: int | str, start: float, end: float, label: str, below: float = 0.0, **style) -> None:
        ax.barh(y[lane] - below, end - start, left=start, label=None if label in labelled else label, **style)
        labelled.add(label)

    for epoch in sorted({r["epoch"] for r in rows}):
        sel = [r for r in rows if r["epoch"] == epoch]
        began, first_sent = sel[0]["epoch_start_s"], min(r["dispatched_s"] for r in sel)
        ax.axvline(began, color="black", ls="--", lw=0.8)
        ax.text(began, len(lanes) - 0.45, f" epoch {epoch}: iter()", fontsize=8, va="bottom")
        if workers and first_sent - began > 0:
            ax.axvspan(began, first_sent, color="grey", alpha=0.15, lw=0,
                       label=None if "start-up" in labelled else "start-up: workers starting")
            labelled.add("start-up")
        colour = f"C{epoch % 10}"
        for r in sel:
            bar(r["worker"], r["dispatched_s"], r["start_s"], "sent, waiting for its worker", below=0.38, height=0.1,
                color="grey")
            bar(r["worker"], r["start_s"], r["end_s"], f"making a batch (epoch {epoch})", height=0.6, color=colour,
                edgecolor="white", lw=0.5, gid=bar_id(r))
            ax.text((r["start_s"] + r["end_s"]) / 2, y[r["worker"]], str(r["batch"]), ha="center", va="center",
                    fontsize=7, color="white")
            if r["worker"] != MAIN and r["received_s"] - r["requested_s"] > 0:  # MAIN's wait is its own making
                bar(MAIN, r["requested_s"], r["received_s"], "main process waiting for a batch", height=0.6,
                    color="tab:red", alpha=0.8)
            if r["step_end_s"] - r["received_s"] > 0:
                bar(MAIN, r["received_s"], r["step_end_s"], "main process: consumer step", height=0.35,
                    color="tab:green")
    ax.set_yticks([y[w] for w in lanes], [lane_name(w) for w in lanes])
    ax.set(title=title, xlabel="Seconds since the first iter(loader) (one clock for every process)",
           ylabel="Who is working")
    ax.set_xlim(left=0)
    ax.set_ylim(-0.6, len(lanes) - 0.2)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig

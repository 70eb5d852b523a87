"""Figures with titles and honest axes: a step is a step and an epoch is an epoch."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def plot_history(history: dict[str, list]) -> Figure:
    """Per-step training loss on a fractional-epoch axis, beside per-epoch train and validation loss."""
    fig, (steps, epochs) = plt.subplots(1, 2, figsize=(11, 4))
    steps.plot(history["step_epoch"], history["step_loss"], lw=0.8, alpha=0.8, label="train loss per step")
    steps.set(title="Training loss, every optimizer step", xlabel="Epoch (fraction of the way through)",
              ylabel="Cross-entropy loss")
    steps.legend()
    epochs.plot(history["epoch"], history["train_loss"], "o-", label="train (mean over train images)")
    epochs.plot(history["epoch"], history["val_loss"], "s-", label="validation (mean over val images)")
    epochs.set(title="Loss per epoch", xlabel="Epoch", ylabel="Cross-entropy loss")
    epochs.set_xticks(history["epoch"])
    epochs.legend()
    fig.tight_layout()
    return fig


def plot_bench(rows: list[dict], one_core_images_per_s: dict[str, float], cores: int, machine: str = "") -> Figure:
    """Images per second against num_workers, median with min-max bars, beside each pipeline's CPU ceiling."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in dict.fromkeys((r["pipeline"], r["mode"]) for r in rows):
        sel = [r for r in rows if (r["pipeline"], r["mode"]) == key]
        x = [r["num_workers"] for r in sel]
        y = [r["images_per_s"] for r in sel]
        err = [[r["images_per_s"] - r["images_per_s_min"] for r in sel],
               [r["images_per_s_max"] - r["images_per_s"] for r in sel]]
        line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{key[0]}, {key[1]}")
        ceiling = one_core_images_per_s.get(key[0])
        if ceiling and key[1] == "loader":
            ax.axhline(ceiling * cores, ls="--", lw=1, color=line[0].get_color(),
                       label=f"{key[0]} CPU ceiling ({cores} cores)")
    ax.axvline(cores, color="grey", lw=0.8, ls=":", label="num_workers = cores")
    ax.set(title=f"DataLoader throughput by num_workers\n{machine}", xlabel="num_workers",
           ylabel="Images per second (median, min-max bars)")
    ax.set_xticks(sorted({r["num_workers"] for r in rows}))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

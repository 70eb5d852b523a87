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

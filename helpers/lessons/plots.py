"""Figures with titles and honest axes: a step is a step and an epoch is an epoch."""
from __future__ import annotations

import statistics
from typing import Sequence

from matplotlib.figure import Figure


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure outside pyplot's registry: a notebook shows it once, as the cell's result, and scripts leak none."""
    return Figure(figsize=figsize)


def plot_history(history: dict[str, list]) -> Figure:
    """Per-step training loss on a fractional-epoch axis, beside per-epoch train and validation loss."""
    fig = _figure((11, 4))
    steps, epochs = fig.subplots(1, 2)
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


def plot_bench(rows: list[dict], one_core_images_per_s: dict[str, float], cores: int, machine: str = "",
               memory: bool = False) -> Figure:
    """Images per second against num_workers, median with min-max bars, beside each pipeline's CPU ceiling.

    MEMORY adds a panel of the PSS each setting reached (main process plus workers), when the rows hold it.
    """
    memory = memory and any(r.get("pss_mb") is not None for r in rows)
    fig = _figure((13, 4.5) if memory else (8, 4.5))
    ax, mem = fig.subplots(1, 2, width_ratios=(8, 5)) if memory else (fig.subplots(), None)
    peers, ceilings = any(series(r)[3] for r in rows), set()
    for key in dict.fromkeys(map(series, rows)):
        sel = [r for r in rows if series(r) == key]
        x, y = [r["num_workers"] for r in sel], [r["images_per_s"] for r in sel]
        err = [[r["images_per_s"] - r["images_per_s_min"] for r in sel],
               [r["images_per_s_max"] - r["images_per_s"] for r in sel]]
        line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=", ".join(filter(None, key)))
        ceiling = one_core_images_per_s.get(key[0])
        if ceiling and key[1] == "loader" and not key[3] and key[0] not in ceilings:
            ceilings.add(key[0])
            ax.axhline(ceiling * cores, ls="--", lw=1, color=line[0].get_color(),
                       label=f"{key[0]} CPU ceiling ({cores} cores)")
    ax.axvline(cores, color="grey", lw=0.8, ls=":", label="num_workers = cores")
    what = "The DataLoader and the specialised loaders" if peers else "DataLoader throughput"
    ax.set(title=f"{what} by num_workers\n{machine}", xlabel="num_workers (threads, for the peers)" if peers
           else "num_workers", ylabel="Images per second (median, min-max bars)")
    ax.set_xticks(sorted({r["num_workers"] for r in rows}))
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    if mem is not None:
        for key in dict.fromkeys(map(series, rows)):
            sel = [r for r in rows if series(r) == key and r.get("pss_mb") is not None]
            mem.plot([r["num_workers"] for r in sel], [r["pss_mb"] for r in sel], marker="o",
                     label=", ".join(filter(None, key)))
        mem.set(title="Memory by num_workers: PSS of the main\nprocess and its workers, end of the window",
                xlabel="num_workers", ylabel="PSS (MB)")
        mem.set_xticks(sorted({r["num_workers"] for r in rows}))
        mem.set_ylim(bottom=0)
        mem.legend(fontsize=8)
    fig.tight_layout()
    return fig


def series(row: dict) -> tuple[str, str, str, str]:
    """A bench row's line in a plot: pipeline, mode, 'threads' for the DataLoader on threads, and a peer's name."""
    loader = row.get("loader") or "dataloader"
    threads = "threads" if loader == "dataloader" and row.get("worker_kind") == "thread" else ""
    return row["pipeline"], row["mode"], threads, "" if loader == "dataloader" else loader


def _as_hwc(image):
    """A PIL image, or a CHW tensor (uint8, or float in 0-1 or normalized), as something imshow draws faithfully."""
    import torch

    if not isinstance(image, torch.Tensor):
        return image
    image = image.detach().cpu()
    if image.dtype == torch.uint8:
        return image.permute(1, 2, 0).numpy()
    image = image.float()
    low, high = image.min(), image.max()
    if low < 0 or high > 1:  # a normalized tensor: stretch it back into 0-1 to look at it
        image = (image - low) / (high - low + 1e-12)
    return image.permute(1, 2, 0).numpy()


def show_images(images: list, titles: list[str], title: str, columns: int = 4) -> Figure:
    """A grid of images with their size in each caption, so a resize is seen and not only described."""
    rows = -(-len(images) // columns)
    fig = _figure((2.6 * columns, 2.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles):
        shown = _as_hwc(image)
        height, width = (shown.shape[:2] if hasattr(shown, "shape") else (shown.height, shown.width))
        ax.imshow(shown)
        ax.set_title(f"{caption}\n{width} x {height} px", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_step_costs(costs: dict[str, list[dict]], title: str) -> Figure:
    """Horizontal bars of milliseconds per image for each step, one group per pipeline, with min-max whiskers."""
    fig = _figure((9, 0.45 * sum(len(v) for v in costs.values()) + 1.5))
    ax = fig.subplots()
    labels, values, errors, colors = [], [], [[], []], []
    for k, (pipeline, rows) in enumerate(costs.items()):
        for row in rows:
            labels.append(f"{pipeline}: {row['step']}")
            values.append(row["ms_per_image"])
            errors[0].append(row["ms_per_image"] - row["ms_min"])
            errors[1].append(row["ms_max"] - row["ms_per_image"])
            colors.append(f"C{k}")
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, xerr=errors, color=colors, capsize=3)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set(title=title, xlabel="Milliseconds per image (median of repeats, min-max whiskers)",
           ylabel="Pipeline: step")
    fig.tight_layout()
    return fig


def plot_class_balance(counts: dict[str, dict[str, int]], title: str) -> Figure:
    """Images per class in each split, side by side, with each class's share of its split written on its bar."""
    fig = _figure((7, 3.8))
    ax = fig.subplots()
    splits = list(counts)
    classes = sorted({c for split in counts.values() for c in split})
    width = 0.8 / len(classes)
    for k, cls in enumerate(classes):
        xs = [i + (k - (len(classes) - 1) / 2) * width for i in range(len(splits))]
        heights = [counts[s].get(cls, 0) for s in splits]
        bars = ax.bar(xs, heights, width, label=cls)
        shares = [f"{h / max(1, sum(counts[s].values())):.0%}" for h, s in zip(heights, splits)]
        ax.bar_label(bars, shares, fontsize=8)
    ax.set_xticks(range(len(splits)), splits)
    ax.set(title=title, xlabel="Split", ylabel="Images")
    ax.legend(title="class")
    fig.tight_layout()
    return fig


def plot_worker_measurements(measurements: dict[int, list[float]], title: str) -> Figure:
    """Every measurement the slider has taken, and the median per num_workers joined by a line."""
    fig = _figure((6.5, 3.8))
    ax = fig.subplots()
    for n, values in sorted(measurements.items()):
        ax.scatter([n] * len(values), values, color="C0", alpha=0.5)
    keys = sorted(measurements)
    medians = [statistics.median(measurements[n]) for n in keys]
    ax.plot(keys, medians, "o-", color="C1", label="median")
    ax.set(title=title, xlabel="num_workers", ylabel="Images per second")
    ax.set_xticks(keys)
    ax.set_ylim(0, 1.15 * max(max(v) for v in measurements.values()))  # headroom: the top point stays in view
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_time_breakdown(costs: dict[str, list[dict]], title: str) -> Figure:
    """One stacked bar per pipeline: where a worker's milliseconds per image go, part by part."""
    fig = _figure((9, 1.1 * len(costs) + 2.4))
    ax = fig.subplots()
    names, colors = list(costs), {}
    widest = max(sum(r["ms_per_image"] for r in rows) for rows in costs.values())
    for y, pipeline in enumerate(names):
        left = 0.0
        for row in costs[pipeline]:
            role = row["part"].split("(")[0].split(":")[0].strip()  # "Resize((512, 512)) on uint8" -> "Resize"
            new = role not in colors
            colors.setdefault(role, f"C{len(colors)}")
            bar = ax.barh(y, row["ms_per_image"], left=left, color=colors[role], edgecolor="white",
                          label=role if new else None)
            if row["ms_per_image"] > 0.05 * widest:
                ax.bar_label(bar, [f"{row['ms_per_image']:.2f}"], label_type="center", fontsize=8)
            left += row["ms_per_image"]
        ax.text(left, y, f"  {left:.2f} ms = {1000 / left:.0f} images/s per core", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(right=1.4 * widest)
    ax.set(title=title, xlabel="Milliseconds per image in one worker (one thread)", ylabel="Pipeline")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8)
    fig.tight_layout()
    return fig


def plot_transfer_costs(rows: list[dict], title: str) -> Figure:
    """Milliseconds per batch of ready-made images against num_workers, one line per dtype: the price of the trip."""
    fig = _figure((7, 4))
    ax = fig.subplots()
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        sel = [r for r in rows if r["dtype"] == dtype]
        err = [[r["ms_per_batch"] - r["ms_min"] for r in sel], [r["ms_max"] - r["ms_per_batch"] for r in sel]]
        ax.errorbar([r["num_workers"] for r in sel], [r["ms_per_batch"] for r in sel], yerr=err, marker="o",
                    capsize=3, label=f"{dtype}, {sel[0]['mb_per_batch']:.0f} MB per batch")
    ax.set(title=title, xlabel="num_workers (0: collated in the main process, no trip)",
           ylabel="Milliseconds per batch (median, min-max bars)")
    ax.set_xticks(sorted({r["num_workers"] for r in rows}))
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_cache_comparison(rows: list[dict], title: str) -> Figure:
    """Seconds per epoch (log scale), trained from images and from cached features: the time the cache saves."""
    rows = [r for r in rows if r["epochs"]]
    fig = _figure((6, 3.6))
    speed = fig.subplots()
    bars = speed.bar([r["method"] for r in rows], [r["epoch_s"] for r in rows], color=["C0", "C2"])
    speed.bar_label(bars, [f"{r['epoch_s']:.3g} s" for r in rows])
    speed.set_yscale("log")
    speed.set_ylim(top=4 * max(r["epoch_s"] for r in rows))  # room for the label above the tallest bar
    speed.set(title=title, xlabel="Training the head from", ylabel="Seconds per epoch (median, log scale)")
    fig.tight_layout()
    return fig


def plot_epoch_times(rows: list[dict], title: str) -> Figure:
    """Epoch seconds and the data-wait share against num_workers, one line per setup (helpers.timing.epoch_times)."""
    fig = _figure((12, 4.5))
    seconds, waits = fig.subplots(1, 2)
    for setup in dict.fromkeys(r["setup"] for r in rows):
        sel = [r for r in rows if r["setup"] == setup]
        x = [r["num_workers"] for r in sel]
        seconds.plot(x, [r["epoch_s"] for r in sel], "o-", label=setup)
        waits.plot(x, [100 * r["data_wait_fraction"] for r in sel], "o-", label=setup)
    seconds.set(title="One epoch (train + validation, start-up included)", xlabel="num_workers",
                ylabel="Seconds per epoch (log scale)", yscale="log")
    waits.set(title="Share of the epoch spent waiting for data", xlabel="num_workers", ylabel="Data wait (%)",
              ylim=(0, 105))
    seconds.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_fed_step(rows: Sequence, ceiling: Sequence[float], pick: int, title: str) -> Figure:
    """Training throughput and data wait against num_workers, beside the step's own speed on batches in memory.

    ROWS are helpers.timing.sweep rows of time_stream runs (setting: num_workers); CEILING the same loop's images/s
    over a list of batches made beforehand, one per repeat; PICK the num_workers from which more add nothing.
    """
    fig = _figure((12, 4.5))
    speed, waits = fig.subplots(1, 2, sharex=True)
    x = [r.setting for r in rows]
    for ax in (speed, waits):
        ax.axvspan(pick - 0.4, max(x) + 0.4, color="tab:green", alpha=0.12, lw=0,
                   label=f"from num_workers={pick} on, more workers add nothing (the pick)" if ax is speed else None)
    speed.axhline(statistics.median(ceiling), color="black", ls="--", lw=1.2,
                  label="the step on batches in memory: the ceiling (median)")
    spread = [[r.median - r.min for r in rows], [r.max - r.median for r in rows]]
    speed.errorbar(x, [r.median for r in rows], yerr=spread, marker="o", capsize=3, color="tab:blue",
                   label="fed by the DataLoader (median, min-max bars)")
    top = max(max(r.max for r in rows), statistics.median(ceiling))
    speed.set(title="Training throughput", xlabel="num_workers", ylabel="Images per second", ylim=(0, 1.2 * top))
    speed.legend(fontsize=9, loc="lower right")
    waits.plot(x, [100 * r.median_of(lambda t: t.data_wait_fraction) for r in rows], "o-", color="tab:red",
               label="data wait (median over repeats)")
    waits.set(title="Data wait: share of the step loop spent in next()", xlabel="num_workers",
              ylabel="Data wait (% of the loop)", ylim=(0, 100))
    waits.set_xticks(x)
    waits.legend(fontsize=9, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_copy_on_read(rows: list[dict], title: str) -> Figure:
    """Each worker's USS at the start and after one pass, a panel per start method, each on its own scale and every
    bar labelled in MB, so fork's growth is not flattened by the other methods' larger start."""
    methods = list(dict.fromkeys(r["start_method"] for r in rows))
    fig = _figure((max(6.0, 3.6 * len(methods)), 4.2))
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods):
        mine = [r for r in rows if r["start_method"] == method]
        x = range(len(mine))
        for offset, (key, label) in zip((-0.2, 0.2), (("uss_before_mb_per_worker", "started, nothing read"),
                                                      ("uss_after_mb_per_worker", "after one pass"))):
            bars = ax.bar([i + offset for i in x], [r[key] or 0.0 for r in mine], width=0.4, label=label)
            ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_xticks(list(x), [r["index"] for r in mine])
        ax.margins(y=0.15)
        ax.set(title=f"started by {method}", xlabel="index kind", ylabel="USS per worker (MB)")
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_forkserver_preload(rows: list[dict], labels: dict[str, str], title: str) -> Figure:
    """What set_forkserver_preload saves, per variant (LABELS names each): a worker's USS and the forkserver with its
    workers' PSS, median over the repeats with min-max bars, each labelled in MB."""
    fig = _figure((9.0, 3.8))
    for ax, (key, name) in zip(fig.subplots(1, 2), (("worker_uss_mb", "each worker's USS (MB)"),
                                                    ("added_pss_mb", "forkserver + workers, PSS (MB)"))):
        values = [[float(r[key]) for r in rows if r["variant"] == variant] for variant in labels]
        medians = [statistics.median(v) for v in values]
        err = [[m - min(v) for m, v in zip(medians, values)], [max(v) - m for m, v in zip(medians, values)]]
        bars = ax.bar(list(labels.values()), medians, yerr=err, capsize=4)
        ax.bar_label(bars, fmt="%.0f", fontsize=8, padding=3)
        ax.margins(y=0.15)
        ax.set(title=name, xlabel="preloaded in the forkserver", ylabel="MB (median, min-max)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_settings(rows: list[dict], label: str, title: str, memory_key: str | None = None) -> Figure:
    """Images/s per setting (median, min-max bars), with MEMORY_KEY's values beside it when given."""
    fig = Figure(figsize=(10, 3.8) if memory_key else (6, 3.8))
    axes = fig.subplots(1, 2) if memory_key else [fig.subplots()]
    names = [str(r[label]) for r in rows]
    err = [[r["images_per_s"] - r["images_per_s_min"] for r in rows],
           [r["images_per_s_max"] - r["images_per_s"] for r in rows]]
    axes[0].bar(names, [r["images_per_s"] for r in rows], yerr=err, capsize=4)
    axes[0].set(title=title, xlabel=label, ylabel="Images per second (median, min-max)")
    if memory_key:
        axes[1].bar(names, [r[memory_key] for r in rows], color="tab:orange")
        axes[1].set(title=f"{memory_key} by {label}", xlabel=label, ylabel="MB")
    fig.tight_layout()
    return fig


def plot_profile(rows: list[dict], title: str) -> Figure:
    """A user's loader per num_workers: samples/s (median, min-max) and each worker's USS growth over the pass."""
    fig = _figure((11, 4))
    rate, memory = fig.subplots(1, 2)
    x = [r["num_workers"] for r in rows]
    err = [[r["samples_per_s"] - r["samples_per_s_min"] for r in rows],
           [r["samples_per_s_max"] - r["samples_per_s"] for r in rows]]
    rate.errorbar(x, [r["samples_per_s"] for r in rows], yerr=err, marker="o", capsize=3)
    rate.set(title=title, xlabel="num_workers", ylabel="Samples per second (median, min-max)")
    rate.set_xticks(x)
    rate.set_ylim(bottom=0)  # from zero: a gain reads at its true size
    grown = [(r["num_workers"], float(g)) for r in rows  # one worker's value reads back from a CSV as a number
             for g in str(r["uss_growth_mb_workers"] if r["uss_growth_mb_workers"] is not None else "").split()]
    memory.scatter([n for n, _ in grown], [g for _, g in grown], color="tab:orange")
    memory.set(title="Each worker's private memory (USS) growth over one pass", xlabel="num_workers",
               ylabel="USS growth per worker (MB)")
    memory.set_xticks(x)
    memory.axhline(0, color="grey", lw=0.8)
    fig.tight_layout()
    return fig


def plot_ladder(rows: Sequence[dict], title: str) -> Figure:
    """One bar per rung, images per second with the spread of repeats, each labelled with its own gain."""
    fig = _figure((9, 0.6 * len(rows) + 1.6))
    ax = fig.subplots()
    labels = [f"{r['part']} (batch {r['batch_size']})" for r in rows]
    speeds = [r["images_per_s"] for r in rows]
    spread = [[s - r["images_per_s_min"] for s, r in zip(speeds, rows)],
              [r["images_per_s_max"] - s for s, r in zip(speeds, rows)]]
    ax.barh(labels, speeds, xerr=spread, color="tab:blue", capsize=3)
    for y, r in enumerate(rows):
        ax.annotate(f" x{r['gain']:.2f}", (r["images_per_s_max"], y), va="center")
    ax.invert_yaxis()
    ax.set_xlabel("images per second, loader only (median of repeats; bars: min to max)")
    ax.set_ylabel("one change per rung, top to bottom")
    ax.set_title(title)
    fig.tight_layout()
    return fig

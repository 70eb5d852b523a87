"""Measure the loader's knobs on this machine and write results/knobs_<tag>_*: which steps release the GIL,
prefetch_factor 1-8, __getitems__ for the fast pipeline, and in_order against a few very large files.

    PYTHONPATH=$PWD .venv/bin/python scripts/measure_knobs.py --data data/sample --tag cpu2
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import knobs, options, threads, timeline  # noqa: E402
from helpers.data import index_image_folder  # noqa: E402
from helpers.measure import machine_summary  # noqa: E402
from helpers.plots import plot_settings  # noqa: E402
from helpers.tables import format_table, write_rows  # noqa: E402
from helpers.timeline_plot import plot_timeline  # noqa: E402
from helpers.transforms import pipeline_steps  # noqa: E402

SWEEP = [("images_per_s", "images/s", ".1f"), ("images_per_s_min", "min", ".1f"), ("images_per_s_max", "max", ".1f"),
         ("startup_s", "start-up s", ".2f"), ("pss_mb", "PSS MB", ".0f")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="data/sample")
    p.add_argument("--out", default="results")
    p.add_argument("--tag", default="cpu2")
    p.add_argument("--image-size", type=options.positive_int, default=512)
    p.add_argument("--workers", type=options.worker_count, default=2)
    p.add_argument("--batches", type=options.positive_int, default=40)
    p.add_argument("--repeats", type=options.positive_int, default=3)
    args = p.parse_args()
    index, out, size = index_image_folder(args.data), Path(args.out), args.image_size
    stem = f"{out}/knobs_{args.tag}"
    common = dict(workers=args.workers, batches=args.batches, repeats=args.repeats)
    text = [f"Measured on {machine_summary()}, {args.workers} workers, batch 32, {size} px, fast pipeline unless "
            f"named; a machine shared with other work (load average {os.getloadavg()[0]:.1f} at the start), so read ratios "
            "within one table"]

    def report(title: str, rows: list[dict], columns: list) -> None:
        text.extend(["", title, format_table(rows, columns)])
        print(text[-2], text[-1], sep="\n", flush=True)

    gil = []
    for name in ("fast", "blog"):
        for row in threads.gil_release(index.samples.paths[:64], threads.CONTROLS + pipeline_steps(name, size),
                                      threads=2):
            gil.append(dict(row, pipeline=name))
    write_rows(gil, f"{stem}_gil.csv")
    report("Which steps release the GIL: 2 threads against 1 on the same 64 images", gil,
           [("pipeline", "pipeline", "s"), ("step", "step", "s"), ("ms_one_thread", "ms/image, 1 thread", ".2f"),
            ("speedup", "2 threads / 1", ".2f"), ("releases_gil", "releases the GIL", "")])

    prefetch = knobs.loader_sweep(knobs.fast_dataset(index, size), [dict(prefetch_factor=f) for f in (1, 2, 4, 8)],
                                  image_size=size, **common)
    write_rows(prefetch, f"{stem}_prefetch.csv")
    report("prefetch_factor", prefetch, [("prefetch_factor", "prefetch_factor", "d"), *SWEEP,
                                         ("in_flight_mb", "batches in flight MB", ".0f")])
    plot_settings(prefetch, "prefetch_factor", f"prefetch_factor, {args.workers} workers, fast {size} px",
                  "in_flight_mb").savefig(f"{stem}_prefetch.png", dpi=110, bbox_inches="tight")

    together = []
    for fetch in ("one file per call", "__getitems__"):
        dataset = knobs.fast_dataset(index, size, together=fetch == "__getitems__")
        together += [dict(r, fetch=fetch) for r in knobs.loader_sweep(dataset, [{}], **common)]
    write_rows(together, f"{stem}_getitems.csv")
    report("__getitems__ (one call per batch) against one call per file", together, [("fetch", "fetch", "s"), *SWEEP])

    with tempfile.TemporaryDirectory() as tmp:
        slow = knobs.with_slow_files(index, tmp, large=2, large_px=4000)
        where = knobs.slow_positions(slow)
        orders = knobs.loader_sweep(knobs.fast_dataset(slow, size), [dict(in_order=True), dict(in_order=False)],
                                    **common)
        write_rows(orders, f"{stem}_in_order.csv")
        report(f"in_order with 2 very large JPEGs (4000 x 3000) among {len(slow.samples) - 2} small ones, batches "
               "drawn at random", orders, [("in_order", "in_order", ""), *SWEEP])
        for in_order in (True, False):
            rows = timeline.record(slow, args.workers, image_size=size, batch_size=8, batches=16,
                                   in_order=in_order, consumer_ms=5)
            write_rows(rows, f"{stem}_timeline_in_order_{in_order}.csv", timeline.COLUMNS)
            plot_timeline(rows, f"in_order={in_order}: very large files at positions {where} (batches "
                                f"{sorted({k // 8 for k in where})}), batch 8").savefig(
                f"{stem}_timeline_in_order_{in_order}.png", dpi=110, bbox_inches="tight")
            text.append(f"timeline in_order={in_order}: arrival out of order at {knobs.in_order_costs(rows)}; "
                        f"{timeline.summary(rows)}")
    text.append(f"load average at the end: {os.getloadavg()[0]:.1f}")
    Path(f"{stem}.txt").write_text("\n".join(text) + "\n")
    print(f"written: {stem}*")
    return 0


if __name__ == "__main__":
    sys.exit(main())

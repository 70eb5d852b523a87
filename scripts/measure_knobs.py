"""Measure the loader's knobs on this machine and write results/knobs_<tag>_<part>.{txt,csv,png}: which steps
release the GIL (gil), prefetch_factor 1-8 (prefetch), __getitems__ for the fast pipeline (getitems), and in_order
against a few very large files (in_order).

    PYTHONPATH=$PWD .venv/bin/python scripts/measure_knobs.py --data data/sample --tag cpu2 --gil-attempts 10
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.timing import knobs, threads, timeline  # noqa: E402
from helpers import options  # noqa: E402
from helpers.loading.data import index_image_folder  # noqa: E402
from helpers.machine import conditions_line, load_average, machine_summary  # noqa: E402
from helpers.timing.tables import format_table, write_rows  # noqa: E402
from helpers.lessons.timeline_plot import plot_timeline  # noqa: E402
from helpers.loading.transforms import pipeline_steps  # noqa: E402

PARTS = ("gil", "prefetch", "getitems", "in_order")
SWEEP = [("images_per_s", "images/s", ".1f"), ("images_per_s_min", "min", ".1f"), ("images_per_s_max", "max", ".1f"),
         ("startup_s", "start-up s", ".2f"), ("pss_mb", "PSS MB", ".0f")]


def gil(index, size: int, attempts: int) -> tuple[str, list[dict], list]:
    """The GIL probe on both pipelines, repeated until the hashlib control shows a free second core."""
    for attempt in range(1, attempts + 1):
        load = round(os.getloadavg()[0], 1)
        rows = [dict(row, pipeline=name, attempt=attempt, load_before=load)
                for name in ("fast", "blog")
                for row in threads.gil_release(index.samples.paths[:64], [*threads.CONTROLS, *pipeline_steps(name, size),
                                                                            threads.CONTROL_AFTER], threads=2)]
        if min(r["speedup"] for r in rows if "hashlib" in r["step"]) >= 1.6:
            break
    title = (f"Which steps release the GIL: 2 threads against 1 on the same 64 images (attempt {attempt} of at most "
             f"{attempts}; load average {load} before it)")
    return title, rows, [("pipeline", "pipeline", "s"), ("step", "step", "s"),
                         ("ms_one_thread", "ms/image, 1 thread", ".2f"), ("speedup", "2 threads / 1", ".2f"),
                         ("releases_gil", "releases the GIL", "")]


def verdicts(rows: list[dict], key: str, reference: object) -> list[str]:
    """Each setting's repeats, and the sweep's verdict against the REFERENCE setting of KEY (helpers.timing.sweep)."""
    return [f"Repeats, {key}={r.get(key)}: {' '.join(f'{x:.1f}' for x in r['repeats'])} images/s"
            + (f"; against {key}={reference}: {r['verdict']}" if r.get("verdict") else "")
            for r in rows if "repeats" in r]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="data/sample")
    p.add_argument("--out", default="results")
    p.add_argument("--tag", default="cpu2")
    p.add_argument("--image-size", type=options.positive_int, default=512)
    p.add_argument("--workers", type=options.worker_count, default=2)
    p.add_argument("--batches", type=options.positive_int, default=40)
    p.add_argument("--repeats", type=options.positive_int, default=3)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--gil-attempts", type=options.positive_int, default=1,
                   help="repeat the GIL probe until its hashlib control shows a free second core (2 threads at least "
                        "1.6 x one), at most this many times; the table says which attempt it kept")
    args = p.parse_args()
    index, size, load_before = index_image_folder(args.data), args.image_size, load_average()
    stem = f"{args.out}/knobs_{args.tag}"
    common = dict(workers=args.workers, batches=args.batches, repeats=args.repeats)
    machine = (f"Measured on {machine_summary()}, {args.workers} workers, batch 32, {size} px, fast pipeline unless "
               f"named; a machine shared with other work (load average {os.getloadavg()[0]:.1f} at the start), so "
               "read ratios within one table")

    def write(part: str, title: str, rows: list[dict], columns: list, *more: str) -> None:
        write_rows(rows, f"{stem}_{part}.csv", [k for k in rows[0] if k != "verdict"])  # the txt says it
        text = "\n".join([machine, "", title, format_table(rows, columns), *more,
                          conditions_line(load_before)]) + "\n"
        Path(f"{stem}_{part}.txt").write_text(text)
        print(text, flush=True)

    if "gil" in args.parts:
        write("gil", *gil(index, size, args.gil_attempts))
    if "prefetch" in args.parts:
        rows = knobs.loader_sweep(knobs.fast_dataset(index, size), [dict(prefetch_factor=f) for f in (1, 2, 4, 8)],
                                  image_size=size, reference=1, **common)
        write("prefetch", "prefetch_factor", rows, [("prefetch_factor", "prefetch_factor", "d"), *SWEEP,
                                                    ("in_flight_mb", "batches in flight MB", ".0f")],
              *verdicts(rows, "prefetch_factor", 2))
        knobs.plot_settings(rows, "prefetch_factor", f"prefetch_factor, {args.workers} workers, fast {size} px",
                      "in_flight_mb").savefig(f"{stem}_prefetch.png", dpi=110, bbox_inches="tight")
    if "getitems" in args.parts:
        fetches = ("one file per call", "__getitems__")  # timed in turns, like every other sweep
        datasets = [knobs.fast_dataset(index, size, together=fetch == "__getitems__") for fetch in fetches]
        rows = [dict(r, fetch=fetch) for r, fetch in
                zip(knobs.loader_sweep(datasets, [{}, {}], reference=0, **common), fetches)]
        write("getitems", "__getitems__ (one call per batch) against one call per file", rows,
              [("fetch", "fetch", "s"), *SWEEP], *verdicts(rows, "fetch", "one file per call"))
    if "in_order" in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            slow = knobs.with_slow_files(index, tmp, large=2, large_px=4000)
            where = knobs.slow_positions(slow)
            rows = knobs.loader_sweep(knobs.fast_dataset(slow, size), [dict(in_order=True), dict(in_order=False)],
                                      reference=0, **common)
            notes = []
            for in_order in (True, False):
                seen = timeline.record(slow, args.workers, image_size=size, batch_size=8, batches=16,
                                       in_order=in_order, consumer_ms=5)
                write_rows(seen, f"{stem}_timeline_in_order_{in_order}.csv", timeline.COLUMNS)
                plot_timeline(seen, f"in_order={in_order}: very large files at positions {where} (batches "
                                    f"{sorted({k // 8 for k in where})}), batch 8").savefig(
                    f"{stem}_timeline_in_order_{in_order}.png", dpi=110, bbox_inches="tight")
                notes.append(f"timeline in_order={in_order}, batch 8: handed over out of order (place, batch): "
                             f"{knobs.in_order_costs(seen)}; main process waited "
                             f"{timeline.summary(seen)['main_wait_s']:.3f} s")
            write("in_order", f"in_order with 2 very large JPEGs (4000 x 3000) among {len(slow.samples) - 2} small "
                  "ones, batches drawn at random", rows, [("in_order", "in_order", ""), *SWEEP], *notes,
                  *verdicts(rows, "in_order", True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

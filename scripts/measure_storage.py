"""Measure what far-away files do to num_workers on this machine and write results/storage_<tag>_<part>.{txt,csv,png}:

- rule: images/s against num_workers at each per-file latency of the storage model (helpers/loading/storage.py),
  5 repeats taken in turns, Little's law's workers beside the bench's pick, memory per extra worker;
- threads: thread workers against processes at one latency;
- shards: the same images as one file each and as tar shards, under the same latency, whole passes;
- cold: reading (and decoding) copies of the images from a cold page cache (evicted) against a warm one.

    PYTHONPATH=$PWD .venv/bin/python scripts/measure_storage.py --parts rule --run 2 --latencies 0 20

Every file records the date, the command, the machine and the load average before and after.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import options  # noqa: E402
from helpers.lessons.storage_plot import plot_far_away  # noqa: E402
from helpers.loading.data import index_image_folder  # noqa: E402
from helpers.loading.storage import Latency  # noqa: E402
from helpers.machine import conditions_line, load_average  # noqa: E402
from helpers.timing import far_away  # noqa: E402
from helpers.timing.bench import CSV_COLUMNS, report  # noqa: E402
from helpers.timing.tables import format_table, write_rows  # noqa: E402

PARTS = ("rule", "threads", "shards", "cold")
RULE = [("latency_ms", "ms per file", "g"), ("cpu_ms_per_item", "CPU ms/item", ".1f"),
        ("predicted_workers", "Little's law", ".1f"), ("picked_workers", "picked", "d"),
        ("picked_over_predicted", "picked / law", ".2f"), ("images_per_s", "images/s", ".1f"),
        ("predicted_images_per_s", "predicted", ".1f"), ("ceiling_images_per_s", "CPU ceiling", ".1f")]


def header(argv: list[str]) -> list[str]:
    """The lines every results file opens with: the date, the load now, the command."""
    return [f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"cat /proc/loadavg before: {Path('/proc/loadavg').read_text().strip()}",
            "command: PYTHONPATH=$PWD .venv/bin/python scripts/measure_storage.py " + " ".join(argv)]


def write(out: Path, name: str, lines: list[str], rows: list[dict], columns=None) -> None:
    """NAME.txt (LINES, the load after) and NAME.csv (ROWS)."""
    lines = lines + [f"cat /proc/loadavg after: {Path('/proc/loadavg').read_text().strip()}"]
    (out / f"{name}.txt").write_text("\n".join(lines) + "\n")
    if rows:
        write_rows(rows, out / f"{name}.csv", columns)
    print(f"wrote {out / name}.txt", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/sample")
    p.add_argument("--out", default="results")
    p.add_argument("--tag", default="cpu2")
    p.add_argument("--run", type=options.positive_int, default=1, help="the rule's run number (replicated runs)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--latencies", type=options.milliseconds, nargs="+", default=[0, 5, 20, 50])
    p.add_argument("--workers", type=options.count, nargs="+", default=[0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16])
    p.add_argument("--thread-workers", type=options.positive_int, nargs="+", default=[2, 4, 6, 8, 12])
    p.add_argument("--latency", type=options.milliseconds, default=20, help="for threads and shards (default 20)")
    p.add_argument("--pipeline", default="blog")
    p.add_argument("--image-size", type=options.positive_int, default=512)
    p.add_argument("--repeats", type=options.positive_int, default=5)
    args = p.parse_args()
    argv = sys.argv[1:]
    out, index = Path(args.out), index_image_folder(args.data)
    out.mkdir(parents=True, exist_ok=True)
    tag, common = args.tag, dict(pipeline=args.pipeline, image_size=args.image_size, repeats=args.repeats)
    setup = (f"Pipeline {args.pipeline} at {args.image_size} px, its default batch, loader only, {len(index.samples)} "
             f"images read from the page cache, each read first waiting as the storage model says "
             f"(helpers/loading/storage.py: a sleep, a model of remote storage, not a measurement of one). "
             f"A machine shared with other work: read the load average.")

    if "rule" in args.parts:
        lines, before = header(argv) + [setup], load_average()
        results = far_away.by_latency(index, args.latencies, args.workers, **common)
        rows = far_away.rule_rows(results, args.pipeline)
        for result in results:
            lines += ["", f"## {result.storage.ms:g} ms per file", report(result)]
            mb = far_away.memory_per_worker(result, args.pipeline)
            if mb is not None:
                lines.append(f"Memory: each extra worker process added {mb:.1f} MB of PSS (least-squares slope over "
                             f"the settings with workers, at {result.storage.ms:g} ms per file)")
        lines += ["", "## The rule", format_table(rows, RULE), *far_away.rule_lines(rows), conditions_line(before)]
        name = f"storage_{tag}_run{args.run}"
        measured = [dict(r, latency_ms=res.storage.ms) for res in results for r in res.rows]
        write(out, name, lines, measured, CSV_COLUMNS + ("latency_ms",))
        write_rows(rows, out / f"{name}_rule.csv")
        plot_far_away(measured, rows,
                      f"{args.pipeline} pipeline, {args.image_size} px, 2 cores: images/s against num_workers "
                      f"when every file waits (run {args.run})").savefig(out / f"{name}.png", dpi=110,
                                                                         bbox_inches="tight")

    if "threads" in args.parts:
        lines, before = header(argv) + [setup], load_average()
        result, = far_away.by_latency(index, [args.latency], args.thread_workers, worker_kinds=("process", "thread"),
                                      **common)
        lines += [report(result)]
        write(out, f"storage_{tag}_threads", lines, result.rows, CSV_COLUMNS)

    if "shards" in args.parts:
        lines, before = header(argv) + [setup], load_average()
        with tempfile.TemporaryDirectory(prefix="shards-") as folder:
            rows = far_away.files_against_shards(index, folder, latency=Latency(args.latency), **common)
        lines += [f"Whole passes (worker start-up included) over the {rows[0]['images']} images, no shuffling, batch 4: "
                  f"one file per image (one wait of {args.latency:g} ms per file) against 8 tar shards (one wait "
                  f"per shard), in turns, {args.repeats} repeats",
                  format_table(rows, [("layout", "layout", "s"), ("num_workers", "workers", "d"),
                                      ("images_per_s", "images/s", ".1f"), ("images_per_s_min", "min", ".1f"),
                                      ("images_per_s_max", "max", ".1f"), ("verdict", "against files", "s")])]
        lines += [f"Repeats, {r['layout']} {r['num_workers']} workers: {r['repeats']} images/s" for r in rows]
        lines += [conditions_line(before)]
        write(out, f"storage_{tag}_shards", lines, rows)

    if "cold" in args.parts:
        lines, before = header(argv), load_average()
        with tempfile.TemporaryDirectory(prefix="cold-", dir=os.environ.get("COLD_DIR")) as folder:
            rows = far_away.cold_against_warm(index, folder, **common)
        lines += [f"A real cold page cache: {rows[0]['files']} copies of the images on this machine's disk, evicted "
                  f"with os.posix_fadvise(POSIX_FADV_DONTNEED) before each cold pass (resident share read with "
                  f"mincore), read again at once for the warm pass; in one process, {args.repeats} repeats in turns",
                  format_table(rows, [("part", "part", "s"), ("cache", "cache", "s"),
                                      ("files_per_s", "files/s", ".1f"), ("files_per_s_min", "min", ".1f"),
                                      ("files_per_s_max", "max", ".1f"), ("resident_before", "cached before", ".0%"),
                                      ("verdict", "against cold", "s")])]
        lines += [f"Repeats, {r['part']} {r['cache']}: {r['repeats']} files/s" for r in rows]
        lines += [conditions_line(before)]
        write(out, f"storage_{tag}_cold", lines, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

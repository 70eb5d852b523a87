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
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import options  # noqa: E402
from helpers.lessons.storage_plot import plot_far_away  # noqa: E402
from helpers.loading.data import ImageFolderIndex, index_image_folder  # noqa: E402
from helpers.loading.shards import TarShards, decode_rgb, decode_uint8, write_shards  # noqa: E402
from helpers.loading.storage import FarAway, Latency, evict, read_all, resident_fraction  # noqa: E402
from helpers.loading.transforms import build_pipeline  # noqa: E402
from helpers.machine import conditions_line, load_average, past_the_cores  # noqa: E402
from helpers.timing.bench import CSV_COLUMNS, BenchResult, bench, report  # noqa: E402
from helpers.timing.sweep import sweep  # noqa: E402
from helpers.timing.tables import format_table, write_rows  # noqa: E402
from helpers.which_workers import Costs, predict, workers_for  # noqa: E402

PARTS = ("rule", "threads", "shards", "cold")
RULE = [("latency_ms", "ms per file", "g"), ("cpu_ms_per_item", "CPU ms/item", ".1f"),
        ("predicted_workers", "Little's law", ".1f"), ("picked_workers", "picked", "d"),
        ("picked_over_predicted", "picked / law", ".2f"), ("images_per_s", "images/s", ".1f"),
        ("predicted_images_per_s", "predicted", ".1f"), ("ceiling_images_per_s", "CPU ceiling", ".1f")]


TOLERANCE = 0.25  # the test: the measured pick within 25 % of the prediction


def by_latency(data: str | Path | ImageFolderIndex, latencies_ms: Sequence[float], workers: Sequence[int], *,
               pipeline: str = "blog", image_size: int = 512, repeats: int = 5, batches: int = 20,
               worker_kinds: Sequence[str] = ("process",), progress: bool = False) -> list[BenchResult]:
    """One bench per latency (0 included, modelled as waiting 0 ms), each sweeping WORKERS in turns within its repeats."""
    return [bench(data, workers, pipelines=(pipeline,), image_size=image_size, repeats=repeats, batches=batches,
                  device="cpu", worker_kinds=worker_kinds, progress=progress, storage=Latency(ms))
            for ms in latencies_ms]


def rule_rows(results: Sequence[BenchResult], pipeline: str = "blog") -> list[dict]:
    """Per latency: the loader model's inputs, Little's law's workers (helpers/which_workers.py), the one pick (the
    fewest workers tied with the best by the verdict), their ratio, and the measured and predicted rates there.

    The CPU time per item is the median over the benches of one core's time per item (each bench measures it once,
    on the local files), so one reading on a busy machine does not move every prediction.
    """
    ones = [r.one_core_images_per_s[pipeline] for r in results if r.one_core_images_per_s.get(pipeline)]
    if not ones:
        return []
    one, rows = statistics.median(ones), []
    for result in results:
        rec, costs = result.recommendation(pipeline, "loader"), result.model(pipeline, "loader")
        if rec is None or result.storage is None:
            continue
        costs = Costs(1 / one, result.storage.mean_seconds(), costs.trip_s if costs else 0.0, 0.0, result.cores)
        need, n = workers_for(costs), rec["num_workers"]
        rows.append(dict(latency_ms=1000 * costs.wait_s, cpu_ms_per_item=1000 * costs.cpu_s, cores=result.cores,
                         predicted_workers=need, picked_workers=n, picked_over_predicted=n / need,
                         images_per_s=rec["images_per_s"], predicted_images_per_s=predict(costs, n).images_per_s,
                         ceiling_images_per_s=one * result.cores, within_tolerance=abs(n / need - 1) <= TOLERANCE))
    return rows


def rule_lines(rows: Sequence[dict]) -> list[str]:
    """One sentence per latency, computed from its row."""
    return [f"At {r['latency_ms']:g} ms per file: Little's law predicts {r['cores']} cores x ({r['latency_ms']:.1f} + "
            f"{r['cpu_ms_per_item']:.1f}) / {r['cpu_ms_per_item']:.1f} ms = {r['predicted_workers']:.1f} workers; the "
            f"pick (the fewest workers tied with the best by the verdict) is {r['picked_workers']} "
            f"({r['images_per_s']:.1f} images/s, the model {r['predicted_images_per_s']:.1f}), "
            f"{r['picked_over_predicted']:.2f} x the prediction: {'within' if r['within_tolerance'] else 'outside'} "
            f"{TOLERANCE:.0%}; {'past' if r['picked_workers'] > r['cores'] else 'not past'} the {r['cores']} cores"
            for r in rows]


def memory_per_worker(result: BenchResult, pipeline: str = "blog") -> float | None:
    """MB of PSS each extra worker process added: the least-squares slope over the settings with workers."""
    points = [(r["num_workers"], r["pss_mb"]) for r in result.rows
              if r["pipeline"] == pipeline and r.get("worker_kind", "process") == "process"
              and r["num_workers"] > 0 and r.get("pss_mb") is not None]
    if len(points) < 2:
        return None
    mean_n = sum(n for n, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    return sum((n - mean_n) * (m - mean_m) for n, m in points) / spread if spread else None


def pass_rate(loader: Any, clock: Callable[[], float] = time.perf_counter) -> tuple[float, int]:
    """Images per second over one whole pass of LOADER, worker start-up included, and the images it gave."""
    start, images = clock(), 0
    for batch in loader:
        images += len(batch[1])
    return images / (clock() - start), images


def files_against_shards(data: str | Path | ImageFolderIndex, folder: str | Path, *, latency: Latency,
                         shards: int = 8, workers: Sequence[int] = (2, 8), pipeline: str = "blog",
                         image_size: int = 512, batch_size: int = 4, repeats: int = 5) -> list[dict]:
    """Whole passes over the same images, as one file per image and as SHARDS tar files, both under LATENCY, taken in
    turns; one row per (layout, workers) with the repeats and the verdict of shards against files."""
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    pipe = build_pipeline(pipeline, image_size, train=False)
    tars = write_shards(index.samples, folder, shards)
    decode = decode_uint8 if pipe.normalize_on_device else decode_rgb
    sets = {"files": FarAway(pipe.dataset(index.samples), latency),
            "shards": TarShards(tars, decode, pipe.transform if len(pipe.steps) > 1 else None, latency=latency)}

    def once(setting: tuple[str, int]) -> tuple[float, int]:
        layout, n = setting
        with past_the_cores(n):
            loader = DataLoader(sets[layout], batch_size=batch_size, num_workers=n, collate_fn=pipe.collate)
            return pass_rate(loader)

    settings = [(layout, n) for n in workers for layout in ("files", "shards")]
    rows = []
    for row in sweep(settings, once, repeats, value=lambda r: r[0], group=lambda s: s[1]):
        layout, n = row.setting
        rows.append(dict(layout=layout, num_workers=n, shards=shards if layout == "shards" else None,
                         latency_ms=latency.ms, images=row.runs[0][1], images_per_s=row.median,
                         images_per_s_min=row.min, images_per_s_max=row.max, verdict=row.verdict,
                         repeats=" ".join(f"{v:.1f}" for v in row.values)))
    return rows


def cold_against_warm(data: str | Path | ImageFolderIndex, folder: str | Path, *, copies: int = 5,
                      pipeline: str = "blog", image_size: int = 512, repeats: int = 5) -> list[dict]:
    """Reading and decoding a copy of the images from a real cold page cache (evicted) and a warm one, in turns.

    Works on copies under FOLDER, written back to the disk first, so a shared data set's cache is left alone.
    """
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    folder = Path(folder)
    paths = []
    for k in range(copies):
        for i, sample in enumerate(index.samples):
            target = folder / f"copy{k}" / f"{i:05d}{Path(sample.path).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample.path, target)
            paths.append(str(target))
    pipe = build_pipeline(pipeline, image_size, train=False)

    def once(setting: tuple[str, str]) -> dict:
        part, cache = setting
        if cache == "cold":
            evict(paths)
        before = resident_fraction(paths)
        start = time.perf_counter()
        if part == "read":
            read_all(paths)
        else:
            for path in paths:
                pipe.transform(pipe.loader(path)) if len(pipe.steps) > 1 else pipe.loader(path)
        seconds = time.perf_counter() - start
        return dict(files_per_s=len(paths) / seconds, resident_before=before)

    settings = [(part, cache) for part in ("read", "read + decode") for cache in ("cold", "warm")]
    rows = []
    for row in sweep(settings, once, repeats, value=lambda r: r["files_per_s"], group=lambda s: s[0]):
        part, cache = row.setting
        rows.append(dict(part=part, cache=cache, files=len(paths), files_per_s=row.median, files_per_s_min=row.min,
                         files_per_s_max=row.max, resident_before=row.median_of(lambda r: r["resident_before"]),
                         verdict=row.verdict, repeats=" ".join(f"{v:.1f}" for v in row.values)))
    return rows


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
        results = by_latency(index, args.latencies, args.workers, **common)
        rows = rule_rows(results, args.pipeline)
        for result in results:
            lines += ["", f"## {result.storage.ms:g} ms per file", report(result)]
            mb = memory_per_worker(result, args.pipeline)
            if mb is not None:
                lines.append(f"Memory: each extra worker process added {mb:.1f} MB of PSS (least-squares slope over "
                             f"the settings with workers, at {result.storage.ms:g} ms per file)")
        lines += ["", "## The rule", format_table(rows, RULE), *rule_lines(rows), conditions_line(before)]
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
        result, = by_latency(index, [args.latency], args.thread_workers, worker_kinds=("process", "thread"),
                                      **common)
        lines += [report(result)]
        write(out, f"storage_{tag}_threads", lines, result.rows, CSV_COLUMNS)

    if "shards" in args.parts:
        lines, before = header(argv) + [setup], load_average()
        with tempfile.TemporaryDirectory(prefix="shards-") as folder:
            rows = files_against_shards(index, folder, latency=Latency(args.latency), **common)
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
            rows = cold_against_warm(index, folder, **common)
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

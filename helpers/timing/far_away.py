"""Measuring loaders whose files are far away: num_workers against the storage model's latency with Little's law's
prediction beside each pick, files against tar shards under the same latency, and a cold page cache against a warm one.
"""
from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from torch.utils.data import DataLoader

from ..loading.data import ImageFolderIndex, index_image_folder
from ..loading.shards import TarShards, decode_rgb, decode_uint8, write_shards
from ..loading.storage import FarAway, Latency, evict, read_all, resident_fraction, workers_needed
from ..loading.transforms import build_pipeline
from ..machine import past_the_cores
from .bench import BenchResult, bench
from .sweep import sweep
from ..verdict import SAME, TOO_FEW, verdict

TOLERANCE = 0.25  # the test: the measured pick within 25 % of the prediction


def by_latency(data: str | Path | ImageFolderIndex, latencies_ms: Sequence[float], workers: Sequence[int], *,
               pipeline: str = "blog", image_size: int = 512, repeats: int = 5, batches: int = 20,
               worker_kinds: Sequence[str] = ("process",), progress: bool = False) -> list[BenchResult]:
    """One bench per latency (0 included, modelled as waiting 0 ms), each sweeping WORKERS in turns within its repeats."""
    return [bench(data, workers, pipelines=(pipeline,), image_size=image_size, repeats=repeats, batches=batches,
                  device="cpu", worker_kinds=worker_kinds, progress=progress, storage=Latency(ms))
            for ms in latencies_ms]


def fewest_tied(timed: dict[int, Sequence[float]]) -> int | None:
    """The fewest workers whose repeats (TIMED: workers -> images/s) show no measurable difference from those of the
    best median (helpers/timing/verdict.py): a setting counts as the best only when the repeats cannot tell it from
    the best. None when a setting has too few repeats to say."""
    if not timed:
        return None
    best = max(timed, key=lambda n: statistics.median(timed[n]))
    said = {n: verdict(timed[n], timed[best]) for n in timed}
    if TOO_FEW in said.values():
        return None
    return min(n for n in timed if said[n] == SAME)


def tied_with_best(result: BenchResult, pipeline: str = "blog") -> int | None:
    """fewest_tied over one bench's process workers, loader only."""
    return fewest_tied({n: v for (loader, pipe, mode, kind, n), v in result.repeats.items()
                        if (loader, pipe, mode, kind) == ("dataloader", pipeline, "loader", "process")})


def worker_cpu_s(one_worker_rates: Sequence[float]) -> float | None:
    """A worker's own time per item: 1 / the median rate of ONE worker when files do not wait, so it counts what a
    worker adds to the transforms (collating into shared memory, torch/utils/data/_utils/collate.py, and sending the
    batch), which one thread in the main process leaves out."""
    return 1 / statistics.median(one_worker_rates) if one_worker_rates else None


def rule_rows(results: Sequence[BenchResult], pipeline: str = "blog") -> list[dict]:
    """Per latency: the CPU time per item, Little's law's workers, the bench's pick, their ratio, and the best rate;
    beside them the fewest workers tied with the best by the repeats' verdict (tied_workers), and its ratio.

    The CPU time per item is the median over the benches of one core's time per item (each bench measures it once,
    on the local files), so one reading on a busy machine does not move every prediction.
    """
    ones = [r.one_core_images_per_s[pipeline] for r in results if r.one_core_images_per_s.get(pipeline)]
    if not ones:
        return []
    one, rows = statistics.median(ones), []
    for result in results:
        rec = result.recommendation(pipeline, "loader")
        if rec is None or result.storage is None:
            continue
        cpu_s, wait_s = 1 / one, result.storage.mean_seconds()
        need = workers_needed(wait_s, cpu_s, result.cores)
        tied = tied_with_best(result, pipeline)
        rows.append(dict(latency_ms=1000 * wait_s, cpu_ms_per_item=1000 * cpu_s, cores=result.cores,
                         predicted_workers=need, picked_workers=rec["num_workers"],
                         picked_over_predicted=rec["num_workers"] / need, images_per_s=rec["images_per_s"],
                         ceiling_images_per_s=one * result.cores,
                         within_tolerance=abs(rec["num_workers"] / need - 1) <= TOLERANCE,
                         tied_workers=tied, tied_over_predicted=None if tied is None else tied / need,
                         tied_within_tolerance=None if tied is None else abs(tied / need - 1) <= TOLERANCE))
    return rows


def rule_lines(rows: Sequence[dict]) -> list[str]:
    """One sentence per latency, computed from its row."""
    lines = []
    for r in rows:
        lines.append(
            f"At {r['latency_ms']:g} ms per file: Little's law predicts {r['cores']} cores x ({r['latency_ms']:.1f} + "
            f"{r['cpu_ms_per_item']:.1f}) / {r['cpu_ms_per_item']:.1f} ms = {r['predicted_workers']:.1f} workers; the "
            f"bench picked {r['picked_workers']} (the fewest within 5% of the best median, "
            f"{r['images_per_s']:.1f} images/s), {r['picked_over_predicted']:.2f} x the prediction: "
            f"{'within' if r['within_tolerance'] else 'outside'} {TOLERANCE:.0%}; "
            f"{'past' if r['picked_workers'] > r['cores'] else 'not past'} the {r['cores']} cores")
        if r.get("tied_workers") is not None:
            lines.append(
                f"  the fewest workers with no measurable difference from the best median's repeats (helpers/timing/"
                f"verdict.py): {r['tied_workers']}, {r['tied_over_predicted']:.2f} x the prediction: "
                f"{'within' if r['tied_within_tolerance'] else 'outside'} {TOLERANCE:.0%}; "
                f"{'past' if r['tied_workers'] > r['cores'] else 'not past'} the {r['cores']} cores")
    return lines


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

"""Measuring loaders whose files are far away: num_workers against the storage model's latency with the loader model's
prediction beside the one pick (helpers/which_workers.py), files against tar shards under the same latency, and a
cold page cache against a warm one.
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
from ..loading.storage import FarAway, Latency, evict, read_all, resident_fraction
from ..loading.transforms import build_pipeline
from ..machine import past_the_cores
from .bench import BenchResult, bench
from .sweep import sweep
from ..which_workers import Costs, predict, workers_for

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

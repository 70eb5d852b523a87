"""The num_workers sweep: each pipeline timed loader-only or feeding the model, against its CPU ceiling, and a pick."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Collection, Sequence

from .ceilings import TrainingStep, one_core_throughput, synchronized_step
from ..loading.data import ImageFolderIndex, SkippedFiles, index_image_folder
from ..loading.gpu_decode import NO_CUDA_NOTE, DeviceDecode
from ..loading.loaders import resolve_device
from ..loading.storage import FarAway, Latency
from ..machine import (MEMORY_MARGIN, conditions_line, load_average, machine_summary, memory_budget_mb,
                       past_the_cores_note, usable_cores)
from .measure import default_batch_size, measure_loader
from .peers import cannot_work, measure_peer, missing, versions
from ..progress import progress_bar
from .tables import format_table, write_rows
from ..loading.transforms import build_pipeline
from .sweep import SKIP, sweep
from ..which_workers import Costs, explain, pick, predict, trip_seconds, workers_for


CSV_COLUMNS = ("loader", "pipeline", "mode", "worker_kind", "num_workers", "batch_size", "image_size", "device",
               "images_per_s", "images_per_s_min", "images_per_s_max", "startup_s", "data_wait_fraction", "ceiling_fraction",
               "pss_mb", "pss_growth_mb")
BENCH_COLUMNS = (
    ("pipeline", "pipeline", "s"),
    ("mode", "mode", "s"),
    ("num_workers", "workers", "d"),
    ("batch_size", "batch", "d"),
    ("images_per_s", "images/s", ".1f"),
    ("images_per_s_min", "min", ".1f"),
    ("images_per_s_max", "max", ".1f"),
    ("startup_s", "start-up s", ".2f"),
    ("data_wait_fraction", "data wait", ".0%"),
    ("ceiling_fraction", "of CPU ceiling", ".0%"),
)
PREDICTED_COLUMNS = (("predicted_images_per_s", "predicted", ".1f"), ("predicted_limit", "limit", "s"))  # the model's
LOADER_COLUMN = ("loader", "loader", "s")  # printed first when the specialised loaders were timed too
BENCH_MEMORY_COLUMNS = (  # apart, so tables of CSVs from before memory was measured still print
    ("pss_mb", "PSS MB", ".0f"),
    ("pss_growth_mb", "PSS growth MB", "+.1f"),
)
BENCH_KIND_COLUMNS = (("worker_kind", "worker kind", "s"),)  # last, so tables of older CSVs keep their columns


def write_csv(rows: Sequence[dict], path: str | Path) -> None:
    """Bench rows as CSV, one column per CSV_COLUMNS entry, so results from different machines line up."""
    write_rows(rows, path, CSV_COLUMNS)


@dataclass
class BenchResult:
    rows: list[dict]
    one_core_images_per_s: dict[str, float]   # per pipeline
    cores: int
    model_images_per_s: dict[str, float] = field(default_factory=dict)  # per pipeline, end-to-end mode only
    machine: str = ""
    notes: list[str] = field(default_factory=list)  # pipelines skipped, and why
    memory_budget_mb: float | None = None  # the most PSS a setting may reach; None: memory not measured
    conditions: str = ""  # the machine, torch and the load average before and after the sweep
    repeats: dict = field(default_factory=dict)  # images/s of every repeat, by (loader, pipeline, mode, kind, workers)
    storage: Latency | None = None  # the far-away storage model every file read waited on; None: local files
    costs: dict[str, Costs] = field(default_factory=dict)  # per pipeline, the loader model's measured inputs

    def fits(self, row: dict) -> bool:
        """Whether ROW's main process and workers, grown once more by their growth over the window, fit the budget."""
        if self.memory_budget_mb is None or row.get("pss_mb") is None:
            return True
        return row["pss_mb"] + max(row.get("pss_growth_mb") or 0.0, 0.0) <= self.memory_budget_mb

    def recommendation(self, pipeline: str, mode: str, worker_kind: str = "process") -> dict | None:
        """The one pick (helpers/which_workers.py) among the settings memory holds, with its settings and why.

        limited_by_memory says that a setting left out for its memory would have been picked (or that none fits).
        """
        rows = {r["num_workers"]: r for r in self.rows if (r.get("loader", "dataloader"), r["pipeline"], r["mode"],
                r.get("worker_kind", "process")) == ("dataloader", pipeline, mode, worker_kind)}
        if not rows:
            return None
        timed = {n: self.repeats.get(("dataloader", pipeline, mode, worker_kind, n), [r["images_per_s"]])
                 for n, r in rows.items()}
        fitting = {n: v for n, v in timed.items() if self.fits(rows[n])} or {min(timed): timed[min(timed)]}
        (n, why), (unlimited, _) = pick(fitting), pick(timed)
        return dict(num_workers=n, images_per_s=rows[n]["images_per_s"], why=why, persistent_workers=n > 0,
                    prefetch_factor=2 if n > 0 else None, pin_memory=rows[n]["device"].startswith("cuda"),
                    pss_mb=rows[n].get("pss_mb"),
                    limited_by_memory=not any(self.fits(r) for r in rows.values()) or unlimited > n,
                    memory_would_need_mb=None if self.fits(rows[unlimited]) else rows[unlimited].get("pss_mb"))

    def model(self, pipeline: str, mode: str) -> Costs | None:
        """The loader model's inputs for PIPELINE in MODE (the step only end to end); None where they were not measured."""
        costs = self.costs.get(pipeline)
        return costs if costs is None or mode == "end-to-end" else replace(costs, step_s=0.0)


@dataclass(frozen=True)
class BenchOptions:
    """One bench run's settings, named once: what is swept (workers, pipelines, models, loaders, worker kinds) and
    how (image and batch size, batches per run, repeats taken in turns, device, start method, seed)."""

    data: str | Path | ImageFolderIndex
    workers: Sequence[int] = (0, 1, 2, 4)
    pipelines: Sequence[str] = ("blog", "fast")
    models: Sequence[str] = ("none",)
    image_size: int = 512
    batch_size: int | None = None  # None: each pipeline's default on the device
    batches: int = 20
    repeats: int = 3
    device: str = "auto"
    start_method: str | None = None
    seed: int = 0
    progress: bool = True
    decode_on_cpu: bool = False
    loaders: Sequence[str] = ("dataloader",)
    worker_kinds: Sequence[str] = ("process",)
    storage: Latency | None = None  # every file read waits as this model of remote storage says; None: local files


def bench(data: str | Path | ImageFolderIndex, workers: Sequence[int] = (0, 1, 2, 4), **settings: Any) -> BenchResult:
    """Sweep num_workers for each pipeline and mode on DATA; SETTINGS are BenchOptions' other fields, by name."""
    return sweep_workers(BenchOptions(data, workers, **settings))


def sweep_workers(options: BenchOptions) -> BenchResult:
    """Sweep num_workers for each pipeline and mode; loader-only when model is 'none', else loader plus training.

    The gpu pipeline needs CUDA and is skipped with a note without it; decode_on_cpu runs its code on the CPU instead
    (libjpeg-turbo in the main process), which checks the path but measures nothing worth quoting.
    LOADERS beside 'dataloader' are the specialised peers (helpers/timing/peers.py), timed on the fast pipeline with as many
    threads as the DataLoader has workers; one that is not installed is skipped with a note saying how to add it.
    WORKER_KINDS: the DataLoader's 'process' workers, the same batches made on 'thread' workers (helpers.timing.threads), or both.
    STORAGE: every file read first waits as this model of remote storage says (helpers.loading.storage.FarAway); the
    CPU ceiling is still the local files' (the cores' limit), and the peers read their files without waiting.
    """
    index = options.data if isinstance(options.data, ImageFolderIndex) else index_image_folder(options.data)
    dev, load_before = resolve_device(options.device), load_average()
    result = BenchResult([], {}, usable_cores(), machine=machine_summary(), memory_budget_mb=memory_budget_mb(),
                         storage=options.storage)
    timed = contenders(options.loaders, options.worker_kinds)
    runs = len(options.pipelines) * len(options.models) * len(options.workers) * options.repeats * len(timed)
    bar = progress_bar(runs, "bench", options.progress, unit="run")
    unusable = {loader: note for loader in options.loaders
                if (note := peer_note(loader, index.samples, options.image_size))}
    result.notes += list(unusable.values())
    result.machine += "".join(f", {v}" for v in [versions([n for n in options.loaders if n not in unusable])] if v)
    for pipeline in options.pipelines:
        if pipeline == "gpu" and dev.type != "cuda" and not options.decode_on_cpu:
            result.notes.append(NO_CUDA_NOTE)
            bar.update(len(options.models) * len(options.workers) * options.repeats * len(timed))
            continue
        pipe = build_pipeline(pipeline, options.image_size, train=True)
        dataset, decode = pipe.dataset(index.samples), None
        size = options.batch_size or default_batch_size(pipeline, dev)
        if pipe.decode_size is None:
            result.one_core_images_per_s[pipeline] = one_core_throughput(dataset, size)
        else:  # the gpu pipeline's workers only read bytes: one core's throughput bounds nothing
            decode = synchronized_step(DeviceDecode(dev, pipe.decode_size), dev)
        if one := result.one_core_images_per_s.get(pipeline):  # the loader model's inputs, measured
            trip = trip_seconds(pipe.collate([dataset[i % len(dataset)] for i in range(size)]), size)
            result.costs[pipeline] = Costs(1 / one, options.storage.mean_seconds() if options.storage else 0.0, trip,
                                           0.0, result.cores, dev.type == "cpu")
        if options.storage is not None:
            dataset = FarAway(dataset, options.storage)
        ceiling = result.one_core_images_per_s.get(pipeline, 0.0) * result.cores
        for model in options.models:
            train = TrainingStep(dev, pipe) if model == "resnet18" else None
            if train is not None:
                sample = pipe.collate([dataset[i % len(dataset)] for i in range(size)])
                result.model_images_per_s[pipeline] = train.throughput_on_device(decode(sample) if decode else sample)
                if pipeline in result.costs:
                    result.costs[pipeline] = replace(result.costs[pipeline],
                                                     step_s=1 / result.model_images_per_s[pipeline])
            named: set[tuple[str, str]] = set()
            mode = "loader" if train is None else "end-to-end"

            def once(setting: tuple[int, tuple[str, str]]) -> Any:
                n, (loader, kind) = setting
                if skipped(loader, kind, pipeline, n, options.worker_kinds, unusable):
                    return SKIP  # the notes say why: not installed, the peers' rules, or timed already
                if named and (loader, kind) not in named:
                    SkippedFiles.forget_warnings()  # each loader and kind names the bad files it met
                named.add((loader, kind))
                if loader == "dataloader":
                    run, = measure_loader(dataset, n, batch_size=size, batches=options.batches, repeats=1,
                                          device=dev, seed=options.seed, start_method=options.start_method,
                                          step=train or decode, collate_fn=pipe.collate, memory=True, worker_kind=kind)
                else:
                    run, = measure_peer(loader, index.samples, n, batch_size=size, batches=options.batches,
                                        repeats=1, image_size=options.image_size, seed=options.seed, step=train)
                return run

            settings = [(n, c) for n in options.workers for c in timed]  # compared loaders close in time
            for row in sweep(settings, once, options.repeats, value=lambda r: r.images_per_s,
                             on_repeat=lambda *_: bar.update(1), group=lambda s: s[1]):
                n, (loader, kind) = row.setting
                wait = row.median_of(lambda r: r.data_wait_fraction) if train else None
                costs = result.model(pipeline, mode) if loader == "dataloader" and kind == "process" else None
                said = predict(costs, n) if costs else None
                result.rows.append(dict(
                    loader=loader, pipeline=pipeline, mode=mode, worker_kind=kind, num_workers=n,
                    batch_size=size, image_size=options.image_size, device=str(dev),
                    images_per_s=row.median, images_per_s_min=row.min, images_per_s_max=row.max,
                    startup_s=row.median_of(lambda r: r.startup_s), data_wait_fraction=wait,
                    ceiling_fraction=row.median / ceiling if ceiling else None,
                    pss_mb=row.median_of(lambda r: r.pss_mb), pss_growth_mb=row.median_of(lambda r: r.pss_growth_mb),
                    predicted_images_per_s=said and said.images_per_s, predicted_limit=said and said.limit,
                    verdict=row.verdict, against=row.against and row.against[0]))
                result.repeats[(loader, pipeline, mode, kind, n)] = list(row.values)
    bar.close()
    if set(options.loaders) - {"dataloader"}:
        result.notes.append(PEER_RULES + (" The peers read local files: the storage model applies to the DataLoader "
                                          "and its thread workers only." if options.storage is not None else ""))
    if options.storage is not None:
        result.notes.append(f"Storage: {options.storage.describe()}.")
    note = past_the_cores_note(options.workers)
    if note:
        result.notes.append(note)
    result.conditions = conditions_line(load_before)
    return result


PEER_RULES = ("Peers: the fast pipeline's output only (its uint8 batches at the same image size), with num_workers read "
              "as threads; num_workers 0 (the main process) is timed for the DataLoader alone.")


def contenders(loaders: Sequence[str], worker_kinds: Sequence[str]) -> list[tuple[str, str]]:
    """The (loader, worker kind) pairs a sweep times: the DataLoader with each kind asked for, each peer on threads."""
    return [(loader, kind) for loader in loaders
            for kind in (worker_kinds if loader == "dataloader" else ("thread",))]


def skipped(loader: str, kind: str, pipeline: str, n: int, worker_kinds: Sequence[str],
            unusable: Collection[str] = ()) -> bool:
    """Whether a pair is left out at N workers: a peer that cannot run here (UNUSABLE), a peer off its rules, or
    threads' 0 (the main process)."""
    if loader != "dataloader":
        return loader in unusable or pipeline != "fast" or n == 0
    return kind == "thread" and n == 0 and "process" in worker_kinds


def peer_note(loader: str, samples: Sequence = (), size: int = 32) -> str | None:
    """The one line a peer that cannot run here is skipped with (not installed, or, tried on the first of SAMPLES,
    it cannot make a batch); None for the DataLoader and a peer that works."""
    if loader == "dataloader":
        return None
    return missing(loader) or (cannot_work(loader, samples, size) if samples else None)


def report(result: BenchResult) -> str:
    """The table, the ceilings it is measured against, and a recommendation per pipeline and mode."""
    peers = any(r.get("loader", "dataloader") != "dataloader" for r in result.rows)
    threads = any(r.get("worker_kind") == "thread" and r.get("loader", "dataloader") == "dataloader"
                  for r in result.rows)
    predicted = any(r.get("predicted_images_per_s") for r in result.rows)
    columns = ((LOADER_COLUMN,) * peers + BENCH_COLUMNS + PREDICTED_COLUMNS * predicted + BENCH_MEMORY_COLUMNS
               + BENCH_KIND_COLUMNS * threads)
    lines = [f"Measured on {result.machine}", format_table(result.rows, columns), "", *result.notes]
    if result.memory_budget_mb is not None:
        lines.append(f"Memory: PSS of the main process and its workers at the end of the timed window, and its growth "
                     f"over it; a setting may reach {result.memory_budget_mb:.0f} MB ({MEMORY_MARGIN:.0%} of the "
                     f"memory there was), counting one more window's growth")
    lines += verdicts(result)
    for pipeline, one in result.one_core_images_per_s.items():
        lines.append(f"CPU ceiling, {pipeline}: {result.cores} cores x {one:.1f} images/s on one core, one thread "
                     f"= {one * result.cores:.1f} images/s")
        if pipeline in result.model_images_per_s:
            lines.append(f"Model ceiling, {pipeline}: {result.model_images_per_s[pipeline]:.1f} images/s "
                         f"on batches already on the device")
    lines += above_model(result) + against_peers(result.rows) + threads_against_processes(result.rows)
    for pipeline, mode, kind in dict.fromkeys((r["pipeline"], r["mode"], r.get("worker_kind", "process"))
                                              for r in result.rows):
        rec = result.recommendation(pipeline, mode, kind)
        if rec is None:
            continue
        if kind == "thread":
            lines.append(f"Best for {pipeline}, {mode} on thread workers: {rec['num_workers']} "
                         f"thread{'s' * (rec['num_workers'] != 1)} ({rec['images_per_s']:.1f} images/s, "
                         f"{rec['why']})")
            continue
        lines.append(f"Recommended for {pipeline}, {mode}: num_workers={rec['num_workers']} "
                     f"({rec['images_per_s']:.1f} images/s, {rec['why']}), "
                     f"persistent_workers={rec['persistent_workers']}, prefetch_factor={rec['prefetch_factor']}, "
                     f"pin_memory={rec['pin_memory']}")
        lines += why_there(result, pipeline, mode, rec["num_workers"])
        if rec["limited_by_memory"]:
            need = rec["memory_would_need_mb"]
            lines.append(f"  memory limits it: more workers would be faster, but would need "
                         f"{'more' if need is None else f'{need:.0f} MB'} of the {result.memory_budget_mb:.0f} MB "
                         f"budget; fewer workers, a smaller batch or prefetch_factor, or an index kept in NumPy "
                         f"arrays (notebook 08) lower it")
    return "\n".join(lines + [result.conditions] * bool(result.conditions))


def why_there(result: BenchResult, pipeline: str, mode: str, picked: int) -> list[str]:
    """The loader model's account of the pick (helpers/which_workers.py): its limit there, and Little's law's count."""
    costs = result.model(pipeline, mode)
    if costs is None:
        return []
    need = workers_for(costs)
    line = f"  {explain(costs, picked)}; Little's law asks for {need:.1f} workers"
    if picked > result.cores:
        line += (f"; past the {result.cores} cores: " + ("each file waits on storage, a wait that uses no core"
                                                          if costs.wait_s else "read the verdicts before paying for them"))
    timed = [r["num_workers"] for r in result.rows if r["pipeline"] == pipeline and r["mode"] == mode]
    if timed and picked == max(timed):
        line += f"; {picked} is the most workers timed, so time more before settling"
    return [line]


def verdicts(result: BenchResult) -> list[str]:
    """Each worker count's repeats, and the sweep's verdict (helpers.timing.sweep) against the count before it."""
    lines = []
    for r in result.rows:
        key = (r.get("loader", "dataloader"), r["pipeline"], r["mode"], r.get("worker_kind", "process"))
        speeds = result.repeats.get((*key, r["num_workers"]))
        if not speeds:
            continue
        far = f" {result.storage.ms:g} ms per file" if result.storage is not None else ""
        where = f"{' '.join(k for k in key if k not in ('dataloader', 'process'))}{far} {r['num_workers']} workers"
        line = f"Repeats, {where}: {' '.join(f'{x:.1f}' for x in speeds)} images/s"
        if r.get("verdict"):
            line += f"; against {r['against']} workers: {r['verdict']}"
        lines.append(line)
    return lines


def above_model(result: BenchResult) -> list[str]:
    """One line for every reading above the loader model's prediction (its cores and step limits are the ceilings)."""
    return [f"{r['pipeline']} {r['mode']} at {r['num_workers']} workers reads {r['images_per_s']:.0f} images/s, above "
            f"the model's {r['predicted_images_per_s']:.0f}: an input measured once before the sweep (one core's rate, "
            f"the step on one batch) understated this run, so read the model as approximate here."
            for r in result.rows if r.get("predicted_images_per_s") and r["images_per_s"] > r["predicted_images_per_s"]]


def best_of(rows: list[dict], pipeline: str, mode: str) -> dict[tuple[str, str], dict]:
    """The fastest row (median images/s) of each (loader, worker kind) timed for one pipeline and mode."""
    best: dict[tuple[str, str], dict] = {}
    for r in rows:
        if (r["pipeline"], r["mode"]) == (pipeline, mode):
            key = (r.get("loader", "dataloader"), r.get("worker_kind", "process"))
            best[key] = max(best.get(key, r), r, key=lambda row: row["images_per_s"])
    return best


def against_peers(rows: list[dict]) -> list[str]:
    """Per pipeline and mode, the DataLoader's best setting against each peer's best, as a ratio from the same run."""
    lines = []
    for pipeline, mode in dict.fromkeys((r["pipeline"], r["mode"]) for r in rows):
        best = best_of(rows, pipeline, mode)
        ours = best.get(("dataloader", "process"))
        for (loader, _), peer in best.items() if ours else ():
            if loader == "dataloader":
                continue
            threads = f"{peer['num_workers']} thread{'s' * (peer['num_workers'] != 1)}"
            lines.append(f"Best of {loader}, {pipeline} {mode}: {peer['images_per_s']:.1f} images/s with "
                         f"{threads}; the DataLoader's best (num_workers={ours['num_workers']}, "
                         f"{ours['images_per_s']:.1f}) is {ours['images_per_s'] / peer['images_per_s']:.2f} times that")
    return lines


def threads_against_processes(rows: list[dict]) -> list[str]:
    """Per pipeline and mode, the DataLoader's best on thread workers against its best on processes and the ceiling."""
    lines = []
    for pipeline, mode in dict.fromkeys((r["pipeline"], r["mode"]) for r in rows):
        best = best_of(rows, pipeline, mode)
        process, thread = best.get(("dataloader", "process")), best.get(("dataloader", "thread"))
        if not (process and thread):
            continue
        n = thread["num_workers"]
        line = (f"{pipeline} {mode}: best threads {thread['images_per_s']:.0f} images/s ({n} thread{'s' * (n != 1)}) "
                f"= {thread['images_per_s'] / process['images_per_s']:.2f} x the best processes "
                f"({process['images_per_s']:.0f}, {process['num_workers']} workers)")
        if process.get("ceiling_fraction"):
            ceiling = process["images_per_s"] / process["ceiling_fraction"]
            line += f" = {thread['images_per_s'] / ceiling:.0%} of the CPU ceiling ({ceiling:.0f})"
        lines.append(line)
    return lines

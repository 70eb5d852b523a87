"""`python -m helpers profile MODULE:FACTORY`: measure a user's own DataLoader, at each num_workers asked for.

FACTORY(num_workers=n) returns the user's DataLoader; STEP(batch), when given, is their training step. Per setting:
the first batch apart from the steady rate, the share of the time spent waiting for data, each worker's USS and PSS
growth over the pass, /dev/shm in flight; the settings timed in turns (helpers.timing.sweep), the loader model's
prediction beside each, and the one pick (helpers/which_workers.py, through BenchResult.recommendation). The dataset is walked in a worker for attributes that copy
into every worker (helpers.timing.culprits); with stall_s, a wait past it prints every worker's stack.
"""
from __future__ import annotations

import contextlib
import gc
import multiprocessing
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import DataLoader, IterableDataset

from ..errors import OptionError, explained_worker_failures
from ..loading.stalls import Watchdog, kill, stall_report
from ..machine import (conditions_line, load_average, machine_summary, memory_budget_mb, past_the_cores,
                       past_the_cores_note, rank_cores)
from .culprits import culprits
from .measure import stream_window
from .memory import Snapshot, snapshot, worker_pids
from .probes import WorkerProbes, ask_for_walk
from .sweep import sweep
from .user_code import build, check_factory, guarded, imported, name_failing_items, reading
from ..verdict import MIN_REPEATS, TOO_FEW
from ..which_workers import measured_costs, predict

GROWTH_MB = 8.0  # USS growth per worker over a pass from which the report calls it growth, not noise


def samples_in(batch: Any) -> int:
    """How many samples a batch holds: the first dimension of its first tensor, whatever it is wrapped in."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, dict) and batch:
        return samples_in(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)) and batch:
        return samples_in(batch[0]) if isinstance(batch[0], (torch.Tensor, dict, list, tuple)) else len(batch)
    return len(batch) if hasattr(batch, "__len__") else 1


@dataclass
class Pass:
    """One pass of one setting: the first batch, the steady window, memory at both ends of the pass."""

    first_batch_s: float
    samples_per_s: float
    data_wait_fraction: float | None
    batches: int
    start: Snapshot | None = None  # after the first batch: every worker started
    end: Snapshot | None = None    # at the end of the window, the workers still alive
    shm_base_mb: float | None = None
    walked: list[dict] | None = None   # culprits found by walking the dataset in a worker (or here at 0 workers)
    walked_in: str = ""


@dataclass
class Profiler:
    """What every pass shares: the factory and step, the window, the probes' folder, and the stall limit."""

    factory: Callable[..., DataLoader]
    spec: str
    step: Callable[[Any], Any] | None = None
    batches: int = 20
    start_method: str | None = None
    stall_s: float | None = None
    walk: bool = True
    folder: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="helpers-profile-"))
    children: set[int] = field(default_factory=set)

    def loader(self, n: int) -> DataLoader:
        loader = build(self.factory, n, self.spec)
        if n:
            if self.start_method:
                loader.multiprocessing_context = self.start_method
            loader.worker_init_fn = WorkerProbes(self.folder, loader.worker_init_fn, self.stall_s is not None)
            if self.stall_s is not None and loader.timeout:
                loader.timeout = 0  # the watchdog stands in for it, and prints the stacks
        return loader

    def window(self, loader: DataLoader, n: int) -> tuple[int, int]:
        """Warm-up and timed batches, shortened to leave one batch over, so the workers are alive at the end."""
        warmup, timed = stream_window(n, self.batches, self.step)
        try:
            total = len(loader)
        except TypeError:  # an iterable dataset without __len__: the window as asked
            return warmup, timed
        room = total - 2  # the first batch, and one left over
        if room < 2:
            raise OptionError(f"{self.spec}: its DataLoader gives {total} batches; profile needs at least 4")
        warmup = min(warmup, room // 3)
        return warmup, min(timed, room - warmup)

    def stalled(self, pids: list[int]) -> str:
        """What a stall looks like: each worker's stack and the indices it holds (the main thread's, without workers)."""
        return stall_report(self.stall_s, pids, self.folder)

    def kill_children(self) -> None:
        """End every worker this profile started that is still there (after a stall, or when the main thread is stuck)."""
        kill(self.children)

    def run(self, n: int, walk: bool = False) -> Pass:
        """One fresh pass at N workers: first batch, warm-up, timed window, memory at both ends; WALK asks a worker."""
        with past_the_cores(n):  # torch warns when the loader is made, and again at each iterator
            loader = self.loader(n)
        warmup, timed = self.window(loader, n)
        clock = time.perf_counter
        pids: list[int] = []
        watchdog = (Watchdog(self.stall_s, lambda: self.stalled(pids), self.kill_children, self.folder)
                    if self.stall_s is not None else contextlib.nullcontext())
        waiting = watchdog.waiting if isinstance(watchdog, Watchdog) else contextlib.nullcontext
        gc.collect()  # batches of the pass before leave /dev/shm now
        base = snapshot().shm_mb
        it, undo = None, None if n else name_failing_items()  # at 0 workers the items are read here
        try:
            with reading(self.spec), watchdog, past_the_cores(n), explained_worker_failures():
                start = clock()
                with waiting():
                    it = iter(loader)
                    pids[:] = worker_pids(it) if n else []
                    self.children.update(pids)
                    first = next(it)
                first_s = clock() - start
                if self.step is not None:
                    self.step(first)
                begin = snapshot(pids)
                for _ in range(warmup):
                    with waiting():
                        batch = next(it, StopIteration)
                    if batch is StopIteration:
                        break
                    if self.step is not None:
                        self.step(batch)
                samples = done = 0
                waited, start = 0.0, clock()
                while done < timed:
                    before = clock()
                    with waiting():
                        batch = next(it, StopIteration)
                    waited += clock() - before
                    if batch is StopIteration:
                        break
                    done += 1
                    samples += samples_in(batch)
                    if self.step is not None:
                        self.step(batch)
                elapsed = clock() - start
                alive = batch is not StopIteration
                end = snapshot(pids) if alive else None
                result = Pass(first_s, samples / elapsed if elapsed else 0.0,
                              waited / elapsed if self.step is not None and elapsed else None,
                              done, begin, end, base)
                if walk:
                    self.walk_dataset(result, loader, pids if alive else [])
                return result
        except BaseException as exc:
            traceback.clear_frames(exc.__traceback__)  # torch's frames in it hold the iterator, and so the workers
            raise
        finally:
            if undo is not None:
                undo()
            del it, loader
            gc.collect()
            self.kill_children()  # any worker the loader's own shutdown left (a stuck one): none in a normal pass
            self.children.clear()

    def walk_dataset(self, result: Pass, loader: DataLoader, pids: list[int]) -> None:
        """The culprits in the dataset, walked in worker 0 (its own copy, grown by the pass) or else here."""
        if pids:
            result.walked, result.walked_in = ask_for_walk(pids[0], self.folder, 0), "worker 0"
        if result.walked is None:
            result.walked = [vars(c) for c in culprits(loader.dataset)]
            result.walked_in = "the main process" + (" (worker 0 did not answer)" if pids else "")

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Profile:
    """What profile found: one row per setting, the culprits, the recommendation, and the conditions."""

    rows: list[dict]
    culprits: list[dict]
    walked_in: str
    recommendation: dict | None
    machine: str
    conditions: str
    notes: list[str] = field(default_factory=list)
    dataset: str = ""
    start_method: str = ""


def profile(factory: Callable[..., DataLoader] | str, workers: Sequence[int] = (0, 2), *,
            step: Callable[[Any], Any] | str | None = None, batches: int = 20, repeats: int = 3,
            start_method: str | None = None, stall_s: float | None = None, path: str | None = None) -> Profile:
    """Measure the user's loader at each num_workers in WORKERS, the settings taking turns over REPEATS.

    FACTORY is a function or 'module:function', called as FACTORY(num_workers=n) for a DataLoader; STEP (the same
    kinds) is called on each batch, so the data-wait share means the training's. START_METHOD overrides the loader's.
    """
    from .bench import BenchResult, why_there  # here: the bench's imports (torchvision, the peers) are slow

    spec = factory if isinstance(factory, str) else f"{factory.__module__}:{factory.__qualname__}"
    factory = imported(factory, "MODULE:FACTORY", path) if isinstance(factory, str) else factory
    check_factory(factory, spec)
    step_spec = step if isinstance(step, str) else getattr(step, "__qualname__", "step")
    step = guarded(imported(step, "--step", path) if isinstance(step, str) else step, step_spec, spec)
    if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
        raise OptionError(f"--start-method {start_method}: accepted here: "
                          f"{', '.join(multiprocessing.get_all_start_methods())}")
    load_before, budget = load_average(), memory_budget_mb()
    profiler = Profiler(factory, spec, step, batches, start_method, stall_s)
    walked: dict[str, Any] = {}

    def once(n: int) -> Pass:
        run = profiler.run(n, walk=not walked and (n > 0 or max(workers) == 0))
        if run.walked is not None:
            walked.update(culprits=run.walked, where=run.walked_in)
        return run

    with past_the_cores(max(workers)):
        first = build(factory, max(workers), spec)  # its start method, as the settings with workers use it
    dataset, kind = type(first.dataset).__name__, ("iterable" if isinstance(first.dataset, IterableDataset)
                                                   else "map-style")
    method = start_method or first.multiprocessing_context or multiprocessing.get_start_method()
    method = getattr(method, "get_start_method", lambda: method)()
    try:
        swept = sweep(list(workers), once, repeats, value=lambda r: r.samples_per_s)
    finally:
        profiler.close()
    # after the sweep, whose watchdog would have caught an item that never returns
    with reading(spec, first.dataset, range(min(len(first.dataset), max(8, first.batch_size or 1)))
                 if kind != "iterable" else ()):
        costs = None if kind == "iterable" else measured_costs(first.dataset, first.collate_fn,
                                                               first.batch_size or 1, rank_cores()[0], step,
                                                               on_cores=not torch.cuda.is_available())
    del first
    rows = [row_of(s, costs) for s in swept]
    mode = "end-to-end" if step is not None else "loader"
    result = BenchResult([dict(r, images_per_s=r["samples_per_s"], images_per_s_min=r["samples_per_s_min"],
                               images_per_s_max=r["samples_per_s_max"], pipeline="yours", mode=mode,
                               device="cuda" if torch.cuda.is_available() else "cpu") for r in rows],
                         {}, rank_cores()[0], memory_budget_mb=budget,
                         repeats={("dataloader", "yours", mode, "process", s.setting): s.values for s in swept},
                         costs={"yours": costs} if costs else {})
    rec = result.recommendation("yours", mode)
    if rec is not None:
        rec["model"] = why_there(result, "yours", mode, rec["num_workers"])
    notes = [n for n in [past_the_cores_note(workers), rank_note()] if n]
    return Profile(rows, walked.get("culprits", []), walked.get("where", ""), rec,
                   machine_summary(), conditions_line(load_before), notes, f"{dataset} ({kind})", method)


def row_of(s: Any, costs: Any = None) -> dict:
    """One setting's row: medians over its repeats, the memory of its first repeat's pass, and the model's prediction."""
    run: Pass = s.runs[0]
    end = run.end
    uss, pss = (end.growth_since(run.start), end.growth_since(run.start, "pss_mb")) if end and run.start else ([], [])
    said = predict(costs, s.setting) if costs else None
    return dict(num_workers=s.setting, predicted_per_s=said and said.images_per_s, limit=said and said.limit,
                samples_per_s=s.median, samples_per_s_min=s.min, samples_per_s_max=s.max,
                verdict=s.verdict or "", first_batch_s=s.median_of(lambda r: r.first_batch_s),
                data_wait_fraction=s.median_of(lambda r: r.data_wait_fraction),
                batches=run.batches, uss_growth_mb_mean=sum(uss) / len(uss) if uss else None,
                uss_growth_mb_max=max(uss) if uss else None, pss_growth_mb_sum=sum(pss) if pss else None,
                uss_growth_mb_workers=" ".join(f"{g:.1f}" for g in uss),
                pss_mb=end.total_pss_mb if end else None,
                pss_growth_mb=(end.total_pss_mb - run.start.total_pss_mb) if end and run.start else None,
                shm_mb=(end.shm_mb - run.shm_base_mb) if end and end.shm_mb is not None and run.shm_base_mb is not None
                else None)


def workers(n: int) -> str:
    return f"{n} worker{'s' * (n != 1)}"


def rank_note() -> str | None:
    """Under torchrun, the line saying that the cores counted are this rank's share."""
    cores, ranks = rank_cores()
    if ranks <= 1:
        return None
    return (f"Under torchrun with {ranks} ranks on this machine (LOCAL_WORLD_SIZE): each rank's workers share "
            f"{cores} of the usable cores, so size num_workers by {cores}, not by the machine's cores.")


PROFILE_COLUMNS = (
    ("num_workers", "workers", "d"),
    ("samples_per_s", "samples/s", ".1f"),
    ("samples_per_s_min", "min", ".1f"),
    ("samples_per_s_max", "max", ".1f"),
    ("first_batch_s", "first batch s", ".2f"),
    ("data_wait_fraction", "data wait", ".0%"),
    ("uss_growth_mb_mean", "USS growth MB/worker", "+.1f"),
    ("pss_mb", "PSS MB", ".0f"),
    ("shm_mb", "/dev/shm MB", "+.1f"),
)
PREDICTED = (("predicted_per_s", "predicted", ".1f"), ("limit", "limit", "s"))  # the loader model's, beside
CSV_COLUMNS = ("num_workers", "samples_per_s", "samples_per_s_min", "samples_per_s_max", "verdict", "first_batch_s",
               "data_wait_fraction", "batches", "uss_growth_mb_mean", "uss_growth_mb_max", "uss_growth_mb_workers",
               "pss_growth_mb_sum", "pss_mb", "pss_growth_mb", "shm_mb")


def report(found: Profile) -> str:
    """The table, what each column means, the culprits, and the recommendation."""
    from .tables import format_table

    lines = [f"{found.dataset}, start method {found.start_method}, on {found.machine}",
             format_table(found.rows, PROFILE_COLUMNS[:4] + PREDICTED * any(r.get("limit") for r in found.rows)
                          + PROFILE_COLUMNS[4:]),
             "first batch: iterator created to first batch (worker start-up plus one batch); samples/s: the steady "
             "rate after it (median, min, max over the repeats); predicted: the loader model's rate and the limit that binds "
             "there (helpers/which_workers.py); data wait: the share of the time spent in "
             "next(loader) with --step; USS growth: what each worker's private memory grew over the pass; "
             "/dev/shm: how much more the machine's /dev/shm held at the end than before the pass (batches in flight; "
             "on a shared machine other programs' use shows too).", *found.notes]
    for r in found.rows:
        if r["verdict"] and r["verdict"] != TOO_FEW:
            lines.append(f"{workers(r['num_workers'])} against the setting before: {r['verdict']}")
        if r["uss_growth_mb_workers"]:
            lines.append(f"{workers(r['num_workers'])}, USS growth per worker (MB): {r['uss_growth_mb_workers']}")
    if any(r["verdict"] == TOO_FEW for r in found.rows):
        lines.append(f"No verdict between settings: it takes {MIN_REPEATS} repeats or more of each (--repeats "
                     f"{MIN_REPEATS}); the medians alone do not say that one setting beats another.")
    grew = [r for r in found.rows if (r["uss_growth_mb_max"] or 0) >= GROWTH_MB]
    if found.culprits:
        lead = (f"Workers grew up to {max(r['uss_growth_mb_max'] for r in grew):.0f} MB over a short pass. "
                if grew else "")
        lines.append(f"{lead}Copy-on-read culprits in the dataset (walked in {found.walked_in}):")
        lines += [f"  {c['attribute']}: a {c['kind']} of {c['length']:,} entries, {c['objects']:,} Python objects, "
                  f"{c['mb']:.1f} MB. Fix: {c['fix']}" for c in found.culprits]
    elif found.walked_in:
        lines.append(f"No attribute of the dataset holds many Python objects (walked in {found.walked_in})" +
                     (": the growth comes from elsewhere (caches filled in __getitem__, the transforms)." if grew
                      else "."))
    rec = found.recommendation
    if rec is not None:
        lines.append(f"Recommended: num_workers={rec['num_workers']} ({rec['images_per_s']:.1f} samples/s, "
                     f"{rec['why']}), persistent_workers={rec['persistent_workers']}, "
                     f"prefetch_factor={rec['prefetch_factor']}, pin_memory={rec['pin_memory']}")
        lines += [line.replace("images/s", "samples/s") for line in rec.get("model", [])]
        if rec["limited_by_memory"]:
            lines.append("  memory limits it: more workers would be faster but would not fit the budget")
    return "\n".join(lines + [found.conditions])

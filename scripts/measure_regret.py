"""The regret table (issue 35): `--num-workers auto` against the num_workers people use, in four scenarios.

Per scenario, on the sample set at --size px (batch 8, CPU):
  1. the tuner (helpers.training.autotune.AutoWorkers, the code `train --num-workers auto` runs) drives real epochs
     of this scenario's loader and step until it settles (fresh workers each epoch): its path and the epoch after
     which it settled;
  2. num_workers 0, 1, 2, 4, 8 and the tuner's pick, timed in turns over --repeats (helpers.timing.sweep): a pass on
     persistent workers after one not timed, images/s from iter() to the last batch, and PSS at its end;
  3. each policy's median as a share of the best measured setting that fits the memory budget, and the verdict
     (helpers/verdict.py) of each policy against that best and of auto against the cores-capped policy.
Policies: auto; the usable cores; PyTorch's default 0; a fixed 4 (d2l's choice); Lightning's suggestion (its
suggested_max_num_workers, lightning_fabric/utilities/data.py: max(1, CPUs // ranks - 1), one rank here); 2 x cores.
Scenarios: cpu (a slow pure-Python transform, --busy-ms per image), storage (every file waits 25 ms: the storage
model, helpers/loading/storage.py), consumer (the plain loader, a step that sleeps --step-ms per batch: an
accelerator's step, the main process waits without a core), memory (the slow transform, and an index of --entries
(path, label) tuples that every item reads a slice of, so each worker's copy of it grows, under a budget of the PSS
at 0 workers plus --budget-workers times what one worker added).

    flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_regret.py --run 1
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch.utils.data import DataLoader, Dataset  # noqa: E402

from helpers.loading.data import index_image_folder  # noqa: E402
from helpers.loading.samples import sample_dir  # noqa: E402
from helpers.loading.storage import FarAway, Latency  # noqa: E402
from helpers.loading.transforms import build_pipeline  # noqa: E402
from helpers.machine import conditions_line, load_average, past_the_cores, usable_cores  # noqa: E402
from helpers.options import max_workers  # noqa: E402
from helpers.timing.sweep import sweep  # noqa: E402
from helpers.training.autotune import AutoWorkers, Limits, memory_now_mb, window_rates  # noqa: E402
from helpers.verdict import SAME, verdict  # noqa: E402
from helpers.which_workers import measured_costs  # noqa: E402

BATCH = 8


class Busy(Dataset):
    """DATASET with MS milliseconds of pure-Python arithmetic after each item: a slow CPU transform."""

    def __init__(self, dataset: Dataset, ms: float) -> None:
        self.dataset, self.ms = dataset, ms

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        item, end, x = self.dataset[i], time.thread_time() + self.ms / 1000, 1
        while time.thread_time() < end:
            for _ in range(1000):
                x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        return item


class ListIndex(Dataset):
    """DATASET beside an index of ENTRIES (path, label) tuples in a Python list; each item reads a slice of it, so
    each worker's copy-on-read pages grow as a list-of-tuples index makes them (notebook 08)."""

    def __init__(self, dataset: Dataset, entries: int) -> None:
        self.dataset = dataset
        self.entries = [(f"/data/images/{k:08d}.jpg", k % 2) for k in range(entries)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        part = len(self.entries) // len(self.dataset)
        _ = sum(label for _, label in self.entries[i * part:(i + 1) * part])
        return self.dataset[i]


def sleeper(ms: float) -> Callable[[Any], None]:
    """A step that waits MS per batch without a core, as an accelerator's step does for the main process."""
    return lambda batch: time.sleep(ms / 1000)


def one_pass(dataset: Dataset, collate: Callable, n: int, step: Callable | None, images: int,
             warm_up: bool = False) -> dict:
    """One pass of IMAGES at N workers, from iter() to the last batch (after a pass not timed, on the same persistent
    workers, when WARM_UP): its images/s, its wait for batches, each batch's arrival, and PSS at its end."""
    loader = DataLoader(Subset(dataset, images), batch_size=BATCH, num_workers=n, collate_fn=collate,
                        persistent_workers=n > 0 and warm_up)
    for _ in range(warm_up):
        for batch in loader:
            if step is not None:
                step(batch)
    start = time.perf_counter()
    marks, waited, it = [start], 0.0, iter(loader)
    for _ in range(len(loader)):
        before = time.perf_counter()
        batch = next(it)
        waited += time.perf_counter() - before
        if step is not None:
            step(batch)
        marks.append(time.perf_counter())
    memory = memory_now_mb()  # after the last batch, outside the timing, while the workers still live
    del it, loader
    seconds = marks[-1] - start
    return dict(rate=images / seconds, seconds=seconds, waited=waited, memory=memory, marks=marks)


class Subset(Dataset):
    """The first IMAGES items of DATASET, wrapping around it."""

    def __init__(self, dataset: Dataset, images: int) -> None:
        self.dataset, self.images = dataset, images

    def __len__(self) -> int:
        return self.images

    def __getitem__(self, i: int) -> Any:
        return self.dataset[i % len(self.dataset)]


def run_auto(dataset: Dataset, collate: Callable, step: Callable | None, limits: Limits, step_on_cores: bool,
             images: int, epochs: int) -> tuple[list[str], int | None, int]:
    """Epochs driven by the tuner until it settles: the epoch lines, the epoch after which it settled, its pick."""
    costs = measured_costs(dataset, collate, BATCH, limits.cores, step, on_cores=step_on_cores)
    tuner, lines, settled_after = AutoWorkers({}, None, limits, costs), [], None
    lines.append(tuner.start_line())
    for epoch in range(1, epochs + 1):
        with past_the_cores(tuner.num_workers):
            got = one_pass(dataset, collate, tuner.num_workers, step, images)
        rates = window_rates(got["marks"], images, tuner.num_workers)
        tuner.after_epoch(epoch, got["seconds"], got["waited"], got["memory"], rates,
                          max(got["seconds"] - got["waited"], 0.0) / images)
        lines.append(f"epoch {epoch}: {images / got['seconds']:.1f} images/s, data wait "
                     f"{got['waited'] / got['seconds']:.0%}{tuner.note}")
        if tuner.settled:
            settled_after = epoch
            break
    return lines, settled_after, tuner.num_workers


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=int, default=1)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--images", type=int, default=64, help="images per timed pass")
    p.add_argument("--epoch-images", type=int, default=320, help="images per epoch of the tuner")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--busy-ms", type=float, default=8.0)
    p.add_argument("--latency-ms", type=float, default=25.0)
    p.add_argument("--step-ms", type=float, default=40.0)
    p.add_argument("--entries", type=int, default=400_000)
    p.add_argument("--budget-workers", type=float, default=2.5)
    p.add_argument("--scenarios", nargs="+", default=["cpu", "storage", "consumer", "memory"])
    p.add_argument("--out", default=None)
    args = p.parse_args()
    out = Path(args.out or f"results/regret_cpu2_run{args.run}.txt")
    load_before, started = load_average(), time.perf_counter()
    proc_before = Path("/proc/loadavg").read_text().strip()
    cores = usable_cores()
    pipe = build_pipeline("blog", args.size)
    plain = pipe.dataset(index_image_folder(sample_dir()).samples)
    lightning = max(1, (os.cpu_count() or 1) - 1)  # lightning_fabric's suggested_max_num_workers, one rank
    policies = {"auto": None, "usable cores": cores, "PyTorch default 0": 0, "fixed 4 (d2l)": 4,
                f"Lightning ({lightning})": lightning, "2 x cores": 2 * cores}
    lines = [f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"command: flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_regret.py "
             f"{' '.join(sys.argv[1:])}",
             f"cat /proc/loadavg before: {proc_before}",
             f"Sample set, blog pipeline at {args.size} px, batch {BATCH}, CPU; timed passes of {args.images} images, "
             f"{args.repeats} repeats in turns; the tuner's epochs of {args.epoch_images} images; {cores} usable cores, "
             f"front door's cap {max_workers()} workers", ""]
    summary, shown = [], 0
    for name in args.scenarios:
        step, on_cores, dataset = None, True, plain
        if name == "cpu":
            dataset, what = Busy(plain, args.busy_ms), f"a slow transform, {args.busy_ms:g} ms of CPU per image"
        elif name == "storage":
            dataset, what = FarAway(plain, Latency(args.latency_ms)), f"every file waits {args.latency_ms:g} ms"
        elif name == "consumer":
            step, on_cores, what = sleeper(args.step_ms), False, f"a step of {args.step_ms:g} ms per batch (a sleep)"
        else:
            dataset = ListIndex(Busy(plain, args.busy_ms), args.entries)
            what = (f"the slow transform and an index of {args.entries:,} (path, label) tuples, a slice of it read "
                    f"per item")
        budget = 1e9
        if name == "memory":
            base = one_pass(dataset, pipe.collate, 0, None, args.images)["memory"]
            one = one_pass(dataset, pipe.collate, 1, None, args.images)["memory"]
            budget = base + args.budget_workers * max(one - base, 1.0)
            what += (f"; budget {budget:.0f} MB = {base:.0f} MB at 0 workers + {args.budget_workers:g} x one "
                     f"worker's {one - base:.0f} MB")
        limits = Limits(cores, budget, max_workers())
        auto_lines, settled_after, auto_n = run_auto(dataset, pipe.collate, step, limits, on_cores,
                                                     args.epoch_images, 8)
        settings = sorted({0, 1, 2, 4, 8, auto_n, *[n for n in policies.values() if n is not None]})
        with past_the_cores(max(settings)):
            rows = {r.setting: r for r in sweep(settings, lambda n: one_pass(dataset, pipe.collate, n, step,
                                                                                args.images, warm_up=True),
                                                args.repeats, value=lambda r: r["rate"])}
        memory = {n: r.median_of(lambda g: g["memory"]) for n, r in rows.items()}
        if name == "memory":  # the budget again from the sweep's own readings, so the table's is measured alike
            budget = memory[0] + args.budget_workers * max(memory[1] - memory[0], 1.0)
            what += (f"; the table's budget, from the sweep's readings: {budget:.0f} MB = {memory[0]:.0f} MB at 0 "
                     f"workers + {args.budget_workers:g} x one worker's {memory[1] - memory[0]:.0f} MB")
        fits = [n for n in rows if memory[n] <= budget] or [0]
        best = max(fits, key=lambda n: rows[n].median)
        lines += [f"## {name}-bound: {what}", *auto_lines,
                  f"auto settled on {auto_n} workers after epoch {settled_after}" if settled_after else
                  f"auto did not settle in 8 epochs (at {auto_n} workers)"]
        for n, r in rows.items():
            lines.append(f"Repeats, {name} {n} workers: {' '.join(f'{v:.1f}' for v in r.values)} images/s; "
                         f"PSS {memory[n]:.0f} MB{'' if n in fits else ' (over the budget)'}")
        lines.append(f"best measured (fits the budget): {best} workers, {rows[best].median:.1f} images/s")
        for policy, n in policies.items():
            n = auto_n if n is None else n
            share = rows[n].median / rows[best].median
            said = SAME if n == best else verdict(rows[n].values, rows[best].values)
            over = "" if n in fits else "; over the memory budget"
            lines.append(f"  {policy}: {n} workers, {rows[n].median:.1f} images/s = {share:.1%} of the best; "
                         f"against the best: {said}{over}")
            summary.append(dict(scenario=name, policy=policy, workers=n, share=share, verdict=said, fits=n in fits))
        lines.append(f"Verdict, {name}, auto ({auto_n}) against usable cores ({cores}): "
                     f"{SAME if auto_n == cores else verdict(rows[auto_n].values, rows[cores].values)}")
        lines.append("")
        summary.append(dict(scenario=name, policy="settled after epoch", workers=settled_after))
        print("\n".join(lines[shown:]), flush=True)  # each scenario as it ends, so a failure later keeps it
        shown = len(lines)
    lines.append("| scenario | " + " | ".join(policies) + " | auto settled after epoch |")
    lines.append("|---" * (len(policies) + 2) + "|")
    for name in args.scenarios:
        cells = [f"{s['share']:.0%} ({s['workers']})" + ("" if s["fits"] else " over budget")
                 for s in summary if s["scenario"] == name and "share" in s]
        after = next(s["workers"] for s in summary if s["scenario"] == name and "share" not in s)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {after} |")
    lines += ["", f"Took {time.perf_counter() - started:.0f} s. {conditions_line(load_before)}",
              f"cat /proc/loadavg after: {Path('/proc/loadavg').read_text().strip()}"]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print("\n".join(lines[shown:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does `--num-workers auto` settle, within 3 epochs, on a setting within 5 % of the bench's best? (issue 30)

Two measurements of one deliberately slow pipeline on the sample set, in one process, written to
results/autotune_<tag>_run<N>.txt:

1. training with --num-workers auto (helpers.training.fit.fit, as `python -m helpers train` runs it): each epoch's
   line with the tuner's decision, the setting it settled on and after which epoch;
2. the same loader feeding the same training step, timed end to end at num_workers 0 to 2 x the usable cores (and at
   the settled setting's prefetch_factor, when it is not 2), REPEATS times taken in turns (helpers.timing.sweep), with
   the settled setting's median as a share of the best median and the verdict between them (helpers.verdict).

The slow transform is CPU work, the same in both: after the standard pipeline, every image costs a fixed number of
iterations of pure-Python arithmetic (one core, no sleep, no torch threads), so a worker, the main process and the
bench's loader all pay alike. `train` has no option for it, so this script puts the step into the pipelines that
build_loaders makes (the one place both the first loaders and the tuner's rebuilt ones come from).

    flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_autotune.py --run 1

Replicate with runs 2 and 3, then: python scripts/replicate_verdicts.py results/autotune_cpu2_run{1,2,3}.txt
--compare settled best
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from helpers import options  # noqa: E402
from helpers.app.cli import Parser  # noqa: E402
from helpers.loading import loaders as loaders_module  # noqa: E402
from helpers.loading.data import SkippedFiles, index_image_folder  # noqa: E402
from helpers.loading.loaders import make_loader  # noqa: E402
from helpers.loading.transforms import Pipeline, build_pipeline  # noqa: E402
from helpers.machine import conditions_line, load_average, past_the_cores, usable_cores  # noqa: E402
from helpers.timing.ceilings import TrainingStep, one_core_throughput  # noqa: E402
from helpers.timing.sweep import Swept, sweep  # noqa: E402
from helpers.timing.tables import format_table  # noqa: E402
from helpers.verdict import verdict  # noqa: E402
from helpers.training.config import TrainConfig  # noqa: E402
from helpers.training.fit import fit  # noqa: E402

Setting = tuple[int, int]  # (num_workers, prefetch_factor)


@dataclass(frozen=True)
class Window:
    """One timed window: images per second, and the share of it spent waiting for the loader."""

    images_per_s: float
    data_wait_fraction: float


COLUMNS = (("setting", "setting", "s"), ("images_per_s", "images/s", ".1f"), ("min", "min", ".1f"),
           ("max", "max", ".1f"), ("of_best", "of best", ".1%"), ("data_wait", "data wait", ".0%"),
           ("of_ceiling", "of CPU ceiling", ".0%"))


class BusyWork:
    """The deliberately slow transform: ITERATIONS steps of integer arithmetic on one core, the item unchanged."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def __call__(self, item: Any) -> Any:
        x = 1
        for _ in range(self.iterations):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        return item


def slow_pipelines(iterations: int) -> None:
    """Every pipeline build_loaders makes from now on ends with BusyWork (training and validation splits alike)."""
    def build(name: str, image_size: int = 224, train: bool = False) -> Pipeline:
        pipe = build_pipeline(name, image_size, train)
        return replace(pipe, steps=(*pipe.steps, (f"busy work, {iterations} iterations", BusyWork(iterations))))

    loaders_module.build_pipeline = build


def busy_ms(iterations: int, repeats: int = 5) -> float:
    """The slow step's milliseconds per image on one core here, the median of REPEATS (a property of this run)."""
    work, times = BusyWork(iterations), []
    for _ in range(repeats):
        start = time.perf_counter()
        work(None)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def train_auto(args: argparse.Namespace) -> tuple[list[str], list[dict]]:
    """Train with --num-workers auto; the epoch lines as printed, and the tuner's records (history['workers'])."""
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    config = TrainConfig(data=args.data, epochs=args.epochs, num_workers="auto", batch_size=args.batch_size,
                         image_size=args.image_size, device="cpu", checkpoint="", pretrained=False, progress=False)
    history = fit(config, log=log)
    return lines, history["workers"]


def settled_at(records: list[dict]) -> tuple[Setting | None, int | None]:
    """The setting the tuner settled on and the epoch after which it decided so; (None, None) if it never did."""
    first = next((r for r in records if r["settled"]), None)
    if first is None:
        return None, None
    return (first["next_workers"], first["next_prefetch"]), first["epoch"]


def time_window(loader: Iterable, warmup: int, batches: int, step: Callable[[Any], None]) -> Window:
    """One fresh pass: WARMUP batches drawn and stepped one by one, then BATCHES timed the same way.

    Each warm-up batch is stepped as soon as it is drawn, so the window starts with the prefetch queue as full as
    it is in steady state: drawing the warm-up first and stepping it after lets the workers fill the whole queue
    meanwhile, and a short window then drains that pile without waiting (a first try of this script read twice
    the CPU ceiling that way).
    """
    it, skipped = iter(loader), SkippedFiles()
    for _ in range(warmup):
        batch = next(it)
        if skipped.note(batch):
            step(batch)
    images, waited, start = 0, 0.0, time.perf_counter()
    for _ in range(batches):
        before = time.perf_counter()
        batch = next(it)
        waited += time.perf_counter() - before
        if skipped.note(batch):
            step(batch)
            images += len(batch[1])
    elapsed = time.perf_counter() - start
    del it  # the workers end before the next setting starts its own
    return Window(images / elapsed, waited / elapsed)


def bench(args: argparse.Namespace, settings: list[Setting]) -> tuple[list[Swept[Setting]], float]:
    """SETTINGS timed end to end (the slow loader feeding the training step), REPEATS times in turns; and the CPU
    ceiling estimate (one core's rate for the whole slow pipeline, times the usable cores)."""
    pipe = loaders_module.build_pipeline("standard", args.image_size, train=True)  # the slow one
    dataset = pipe.dataset(index_image_folder(args.data).samples)
    ceiling = one_core_throughput(dataset, args.batch_size) * usable_cores()
    step = TrainingStep(torch.device("cpu"), pipe)

    def once(setting: Setting) -> Window:
        n, p = setting
        warmup, timed = 1 + p * n, max(args.batches, args.batches_per_worker * n)
        with past_the_cores(n):
            loader = make_loader(dataset, batch_size=args.batch_size, num_workers=n, device="cpu",
                                 persistent_workers=False, prefetch_factor=p if n else None,
                                 num_samples=(warmup + timed) * args.batch_size, collate_fn=pipe.collate)
            return time_window(loader, warmup, timed, step)

    def progress(setting: Setting, run: Window) -> None:
        print(f"  workers {setting[0]}, prefetch {setting[1]}: {run.images_per_s:.1f} images/s", flush=True)

    return sweep(settings, once, args.repeats, value=lambda r: r.images_per_s, on_repeat=progress), ceiling


def label(setting: Setting) -> str:
    return f"num_workers {setting[0]} prefetch {setting[1]}"


def main(argv: list[str] | None = None) -> int:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=options.positive_int, required=True, help="the run's number, in the file's name")
    p.add_argument("--data", default="data/sample")
    p.add_argument("--out", default="results")
    p.add_argument("--tag", default="cpu2")
    p.add_argument("--epochs", type=options.positive_int, default=6, help="training epochs with auto (default 6)")
    p.add_argument("--iterations", type=options.positive_int, default=150_000,
                   help="the slow step's work per image (default 150000: 16 to 30 ms on one core of the course's "
                        "shared 2-core machine, by its load)")
    p.add_argument("--image-size", type=options.positive_int, default=64,
                   help="default 64: a small model input, so the slow transform, not the model, sets the pace")
    p.add_argument("--batch-size", type=options.positive_int, default=16)
    p.add_argument("--batches", type=options.positive_int, default=16,
                   help="timed batches per repeat, at least (default 16)")
    p.add_argument("--batches-per-worker", type=options.positive_int, default=12,
                   help="and at least this many per worker (default 12), so the workers' bursts even out")
    p.add_argument("--repeats", type=options.positive_int, default=5)
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"error: --data {args.data}: no such folder", file=sys.stderr)
        return 2
    out = Path(args.out) / f"autotune_{args.tag}_run{args.run}.txt"
    command = ("flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_autotune.py "
               + " ".join(argv if argv is not None else sys.argv[1:]))
    loadavg_before, load_before = Path("/proc/loadavg").read_text().strip(), load_average()
    started = datetime.datetime.now(datetime.timezone.utc)

    slow_pipelines(args.iterations)
    ms = busy_ms(args.iterations)
    print(f"Slow step: {args.iterations} iterations, {ms:.1f} ms per image on one core now", flush=True)
    print(f"1. Training with --num-workers auto, {args.epochs} epochs", flush=True)
    epoch_lines, records = train_auto(args)
    settled, epoch = settled_at(records)

    cores = usable_cores()
    settings: list[Setting] = [(n, 2) for n in range(2 * cores + 1)]
    if settled is not None and settled not in settings and settled[0] > 0:
        settings.append(settled)
    window = f"max({args.batches}, {args.batches_per_worker} x num_workers) timed batches each"
    print(f"2. The bench: num_workers 0 to {2 * cores}, {args.repeats} repeats in turns, {window}", flush=True)
    rows, ceiling = bench(args, settings)
    best = max(rows, key=lambda r: r.median)
    mine = next((r for r in rows if r.setting == settled), None)
    table = [dict(setting=label(r.setting) + " (settled)" * (r is mine) + " (best)" * (r is best),
                  images_per_s=r.median, min=r.min, max=r.max, of_best=r.median / best.median,
                  data_wait=r.median_of(lambda t: t.data_wait_fraction), of_ceiling=r.median / ceiling) for r in rows]

    lines = [f"date: {started:%Y-%m-%d %H:%M} UTC", f"command: {command}",
             f"cat /proc/loadavg before: {loadavg_before}",
             f"Slow transform: the standard pipeline at {args.image_size} px, batch {args.batch_size}, then "
             f"{args.iterations} iterations of pure-Python arithmetic per image ({ms:.1f} ms on one core at the "
             f"start of this run), in training and in the bench alike; CPU, no GPU; random backbone (speed only)",
             "", f"1. python -m helpers train --num-workers auto, {args.epochs} epochs:", *epoch_lines, ""]
    if settled is None:
        lines.append(f"Not settled within {args.epochs} epochs.")
    else:
        lines.append(f"Settled on num_workers {settled[0]}, prefetch_factor {settled[1]}, decided after epoch {epoch}.")
    lines += ["", f"2. The same loader and training step, end to end: median images/s over {args.repeats} repeats "
                  f"taken in turns, {window} (warm-up and start-up excluded):",
              format_table(table, COLUMNS),
              f"CPU ceiling estimate: {cores} cores x one core's rate for the whole slow pipeline = {ceiling:.1f} "
              f"images/s (a reading above it says the window or the estimate was off)", ""]
    lines += [f"Repeats, {label(r.setting)}: {' '.join(f'{v:.1f}' for v in r.values)} images/s" for r in rows]
    lines.append(f"Repeats, best: {' '.join(f'{v:.1f}' for v in best.values)} images/s")
    if mine is not None:
        lines.append(f"Repeats, settled: {' '.join(f'{v:.1f}' for v in mine.values)} images/s")
        share, said = mine.median / best.median, verdict(mine.values, best.values)
        held = epoch <= 3 and share >= 0.95
        lines += [f"Settled ({label(mine.setting)}) against the best ({label(best.setting)}): {share:.1%} of the best "
                  f"median; verdict: {said}",
                  f"Criterion (settled within 3 epochs, within 5 % of the best median): "
                  f"{'held' if held else 'not held'}",
                  f"What it means: the tuner settled after epoch {epoch} on {label(mine.setting)}, whose median is "
                  f"{share:.1%} of the best setting's ({label(best.setting)}), and the repeats say \"{said}\" between "
                  f"them, in this one run on a shared {cores}-core machine."]
    else:
        lines.append(f"What it means: the tuner did not settle within {args.epochs} epochs, so the criterion did not "
                     f"hold in this run.")
    lines += [conditions_line(load_before), f"cat /proc/loadavg after: {Path('/proc/loadavg').read_text().strip()}"]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[lines.index("") + 1:]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

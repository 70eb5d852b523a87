"""Every command of `python -m helpers`: each one's options and what it does, side by side, and the parser of them all.

A command is an options function (what it accepts) registered with its action (what it does once they are parsed and
checked); options every measuring command takes come from the shared parent parsers below, so each is written once.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .. import options
from ..loading.prepare import MODES
from ..loading.transforms import PIPELINES
from ..timing.epoch_times import SETUPS
from ..timing.peers import LOADERS
from ..timing.threads import WORKER_KINDS
from ..training.config import START_METHODS, config_from_args
from .cli import Parser, add_config_arguments, add_train_arguments, boundary, train_command

Options = Callable[[argparse.ArgumentParser], Any]
Action = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """One command: its help, the parent parsers whose options it shares, its own options, and its action."""

    help: str
    description: str
    options: Options
    run: Action
    parents: tuple[argparse.ArgumentParser, ...] = ()
    passes_on: bool = False  # further options go on to the program it starts (jupyter lab, the ddp trainer)
    add_help: bool = True


COMMANDS: dict[str, Command] = {}


def command(name: str, options: Options, help: str, description: str, *,
            parents: Sequence[argparse.ArgumentParser] = (), passes_on: bool = False,
            add_help: bool = True) -> Callable[[Action], Action]:
    """Register the decorated action as NAME, with OPTIONS (a function adding its own) and the shared PARENTS."""
    def register(run: Action) -> Action:
        COMMANDS[name] = Command(help, description, options, run, tuple(parents), passes_on, add_help)
        return run
    return register


def shared(*arguments: tuple[tuple[str, ...], dict]) -> argparse.ArgumentParser:
    """A parent parser holding ARGUMENTS ((flags, keywords) pairs), for the commands that take them alike."""
    parent = argparse.ArgumentParser(add_help=False)
    for flags, keywords in arguments:
        parent.add_argument(*flags, **keywords)
    return parent


DATA = shared((("--data",), dict(default=None, help="ImageFolder root; default: the generated sample set")))
DEVICE = shared((("--device",), dict(type=options.device_name, default="auto", help="auto, cpu or cuda")))
START_METHOD = shared((("--start-method",), dict(choices=START_METHODS, default=None)))
PROGRESS = shared((("--no-progress",), dict(action="store_true")))


def outputs(rows: str, figure: str) -> argparse.ArgumentParser:
    """--csv and --plot, which every measuring command takes: ROWS says what a CSV row is, FIGURE what the PNG shows."""
    return shared((("--csv",), dict(default=None, help=f"write {rows} to this CSV")),
                  (("--plot",), dict(default=None, help=f"save {figure}")))


def write_outputs(args: argparse.Namespace, rows: Sequence[dict], figure: Callable[[], Any],
                  write: Callable[[Sequence[dict], str], Any] | None = None) -> None:
    """--csv and --plot as every measuring command writes them: the rows, then the figure, each announced."""
    from ..timing.tables import write_rows

    if args.csv and rows:
        (write or write_rows)(rows, args.csv)
        print(f"CSV written to {args.csv}")
    if args.plot and rows:
        figure().savefig(args.plot, dpi=110, bbox_inches="tight")
        print(f"Plot written to {args.plot}")


def sample_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="where to write it")
    p.add_argument("--per-class", type=options.positive_int, default=100, help="images per class (default 100)")
    p.add_argument("--seed", type=options.count, default=0, help="the same seed gives byte-identical files")
    p.add_argument("--shape", choices=("sample", "imagenet", "phone"), default="sample",
                   help="image sizes: sample (300-500 px), imagenet (about 500 x 400), phone (4000 x 3000)")


@command("sample-data", sample_data_options, help="write the generated cats-vs-dogs ImageFolder",
         description="Write a deterministic ImageFolder of drawn cat and dog JPEGs (DIR/cat, DIR/dog).")
def sample_data(args: argparse.Namespace) -> int:
    from ..loading.samples import make_sample_data

    index = make_sample_data(args.dir, per_class=args.per_class, seed=args.seed, shape=args.shape)
    print(f"{len(index.samples)} {args.shape}-shaped images in {args.dir} ({', '.join(index.classes)}), "
          f"seed {args.seed}")
    return 0


command("train", add_train_arguments, help="train the frozen ResNet18 (the same options as scripts/train.py)",
        description="Train the frozen ResNet18 on an ImageFolder, one line per epoch.")(train_command)


def cached_options(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--cache", default="runs/features.pt", help="feature file, reused while files and settings match")
    p.add_argument("--compare", action="store_true", help="train from images too and print both epoch times")


@command("cached", cached_options, help="train the head on cached backbone features (the same options as train)",
         description="Run the frozen backbone once per image (validation transform, so no augmentation) "
                     "and train the head on the stored features; --compare also trains from images.")
def cached(args: argparse.Namespace) -> int:
    from ..training.features import COMPARE_COLUMNS, compare, fit_cached
    from ..training.fit import loaders_for
    from ..timing.tables import format_table

    config = config_from_args(args)  # --num-workers auto, --stall-s and step checkpoints: refused before (refusals.py)
    loaders = loaders_for(config)
    if not args.compare:
        fit_cached(config, loaders, args.cache)
        return 0
    print(format_table(compare(config, loaders, args.cache), COMPARE_COLUMNS))
    return 0


@command("ddp", lambda p: None, help="train with DistributedDataParallel; start it with torchrun",
         description="`torchrun --standalone --nproc_per_node=2 -m helpers ddp --epochs 2`; "
                     "`python -m helpers ddp --help` lists the options.", passes_on=True, add_help=False)
def ddp(args: argparse.Namespace) -> int:
    from .cli import ddp_main

    return ddp_main(args.passed_on)


def bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=options.waiting_worker_count, nargs="+", default=[0, 1, 2, 4],
                   help="num_workers values to time (default 0 1 2 4; past 4 per core only with --read-latency-ms)")
    p.add_argument("--pipeline", nargs="+", default=["blog", "fast"], choices=tuple(PIPELINES),
                   help="gpu: workers read JPEG bytes, nvjpeg decodes on the GPU (skipped without CUDA)")
    p.add_argument("--model", nargs="+", default=["none"], choices=("none", "resnet18"),
                   help="none: the loader alone; resnet18: the loader feeding the frozen ResNet18's training step")
    p.add_argument("--image-size", type=options.positive_int, default=512, help="default 512, the blog's")
    p.add_argument("--batch-size", type=options.positive_int, default=None,
                   help="default: 4 for blog (the post's), 32 or 256 (GPU) for fast")
    p.add_argument("--batches", type=options.positive_int, default=20,
                   help="timed batches per repeat, after a warm-up (loader-only: at least 16 x num_workers)")
    p.add_argument("--repeats", type=options.positive_int, default=3)
    p.add_argument("--worker-kind", nargs="+", default=["process"], choices=WORKER_KINDS,
                   help="process (DataLoader workers, the default) and/or thread (the same batches on torchdata threads)")
    p.add_argument("--breakdown", action="store_true",
                   help="also time each part of a worker's work, and the trip of float32 and uint8 batches")
    p.add_argument("--loader", nargs="+", default=["dataloader"], choices=tuple(LOADERS), help="peers: requirements-peers.txt")
    p.add_argument("--read-latency-ms", type=options.milliseconds, default=0,
                   help="model far-away storage: every file read first waits this long (a sleep, no core used)")
    p.add_argument("--read-jitter-ms", type=options.milliseconds, default=0,
                   help="with --read-latency-ms: each file waits up to this much longer (uniform, seeded)")
    p.add_argument("--read-mb-per-s", type=options.positive_float, default=None,
                   help="with --read-latency-ms: and its size over this bandwidth")


@command("bench", bench_options, help="time num_workers: loader alone or feeding the model, with a CPU ceiling",
         description="Sweep num_workers; print images/s (median, min, max over repeats), worker start-up, "
                     "data-wait share, the CPU ceiling, memory (PSS), and a recommendation.",
         parents=(DATA, DEVICE, START_METHOD, PROGRESS,
                  outputs("one row per setting", "a PNG of images/s and memory (PSS) against num_workers")))
def bench(args: argparse.Namespace) -> int:
    from ..timing.bench import BenchOptions, report, sweep_workers, write_csv
    from ..timing.breakdown import explain
    from ..lessons.plots import plot_bench
    from ..loading.samples import data_or_sample
    from ..loading.storage import Latency
    from ..options import refuse_workers_past_the_limit

    far = args.read_latency_ms or args.read_jitter_ms or args.read_mb_per_s
    refuse_workers_past_the_limit(args.workers, far)
    storage = Latency(args.read_latency_ms, args.read_jitter_ms, args.read_mb_per_s) if far else None
    options = BenchOptions(data_or_sample(args.data), args.workers, pipelines=args.pipeline, models=args.model,
                           image_size=args.image_size, batch_size=args.batch_size, batches=args.batches,
                           repeats=args.repeats, device=args.device, start_method=args.start_method,
                           progress=not args.no_progress, loaders=args.loader, worker_kinds=args.worker_kind,
                           storage=storage)
    result = sweep_workers(options)
    print(report(result))
    if args.breakdown:
        print("\nWhere the time goes (one worker, one thread), and the trip to the main process by dtype:")
        breakdown = explain(options.data, options.pipelines, options.image_size, options.batch_size, options.device,
                            options.repeats, start_method=options.start_method)
        print(breakdown.report())
        print(breakdown.against(result))
    write_outputs(args, result.rows, lambda: plot_bench(result.rows, result.one_core_images_per_s, result.cores,
                                                        result.machine, memory=True), write=write_csv)
    return 0


def ladder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=options.worker_count, default=None, help="num_workers (default: usable cores)")
    p.add_argument("--image-size", type=options.positive_int, default=512, help="default 512, the blog's")
    p.add_argument("--batch-size", type=options.positive_int, default=32, help="the last rung's batch (default 32)")
    p.add_argument("--batches", type=options.positive_int, default=64, help="timed batches per run (default 64)")
    p.add_argument("--repeats", type=options.positive_int, default=5, help="runs per rung, taken in turns")


@command("ladder", ladder_options, help="like for like: the blog's pipeline made fast one change at a time",
         description="Time, loader only and at one num_workers, the blog's pipeline, then uint8 output, "
                     "a uint8 resize, libjpeg-turbo decoding (the fast pipeline) and a larger batch: "
                     "each rung's own gain.",
         parents=(DATA, PROGRESS, outputs("one row per rung", "a PNG of images/s per rung")))
def ladder(args: argparse.Namespace) -> int:
    from ..loading.samples import data_or_sample
    from ..machine import conditions_line, load_average
    from ..timing.ladder import LADDER_COLUMNS, ladder as climb, machine_line, summary, verdicts
    from ..lessons.plots import plot_ladder
    from ..timing.tables import format_table

    load_before = load_average()
    rows = climb(data_or_sample(args.data), args.workers, image_size=args.image_size, large_batch=args.batch_size,
                 batches=args.batches, repeats=args.repeats, progress=not args.no_progress)
    print(machine_line(rows))
    print(format_table(rows, LADDER_COLUMNS))
    print(summary(rows))
    print("\n".join([*verdicts(rows), conditions_line(load_before)]))
    write_outputs(args, rows, lambda: plot_ladder(rows, machine_line(rows)))
    return 0


def epochs_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=options.worker_count, nargs="+", default=None,
                   help="num_workers values (default 0 1 2 4 8 12 16, the blog's question on a 16-core machine, "
                        "up to this machine's limit)")
    p.add_argument("--setup", nargs="+", default=list(SETUPS), choices=tuple(SETUPS),
                   help="which setups, by label (default: all five)")
    p.add_argument("--seed", type=options.count, default=0)


@command("epochs", epochs_options, help="the blog's table: one epoch's time and data-wait share per num_workers",
         description="One epoch (train + validation, fresh workers, as the blog timed it) per setup "
                     "and num_workers: the blog's (512 px, batch 4) and corrected ones (224 px, batch 4 or 256).",
         parents=(DATA, DEVICE, outputs("one row per setting", "a PNG of epoch time and data wait against num_workers")))
def epochs(args: argparse.Namespace) -> int:
    from ..timing.epoch_times import BLOG_WORKERS, SETUPS, TABLE_COLUMNS, blog_workers, epoch_table
    from ..machine import machine_summary
    from ..options import max_workers
    from ..lessons.plots import plot_epoch_times
    from ..loading.samples import data_or_sample
    from ..timing.tables import format_table

    machine = machine_summary()
    print(f"One epoch per setting on {machine}")
    workers = args.workers
    if workers is None:
        limit = max_workers()
        workers, left_out = blog_workers(limit), [n for n in BLOG_WORKERS if n > limit]
        if left_out:
            print(f"num_workers {', '.join(map(str, left_out))} left out: this machine allows 0 to {limit} "
                  f"(--workers chooses others)")
    rows = epoch_table(data_or_sample(args.data), [SETUPS[name] for name in args.setup], workers,
                       device=args.device, seed=args.seed)
    print(format_table(rows, TABLE_COLUMNS))
    write_outputs(args, rows, lambda: plot_epoch_times(rows, f"The blog's table: {machine}"))
    return 0


def run_notebooks_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=("quick", "full"), default="quick",
                   help="quick: each notebook's own parameters (CPU-sized lesson); full: longer, larger sweeps")
    p.add_argument("--out", default="runs/notebooks", help="folder for the executed copies (default runs/notebooks)")
    p.add_argument("--data", default=None, help="ImageFolder root for every notebook; default: the sample set")
    p.add_argument("--cell-timeout", type=options.positive_float, default=None, metavar="S",
                   help="seconds one cell may run before the run fails, naming it (default: 600 quick, 1800 full)")


@command("run-notebooks", run_notebooks_options,
         help="execute every notebook in order with papermill, then print a summary",
         description="Execute notebooks/00_*.ipynb onwards with papermill into OUT (the sources are "
                     "never written), stop at the first failing cell, print time per notebook and "
                     "the num_workers table.")
def run_notebooks(args: argparse.Namespace) -> int:
    from ..loading.data import index_image_folder
    from .notebooks import SUMMARY, run_notebooks, write_summary

    if args.data:
        index_image_folder(args.data)  # a folder the lessons cannot use fails here, not in the first notebook
    runs = run_notebooks(args.profile, args.out, data=args.data, cell_timeout=args.cell_timeout)
    print(write_summary(runs, args.out, args.profile))
    print(f"Next: the executed notebooks are in {args.out}/ and this summary in {args.out}/{SUMMARY}; "
          "to change a parameter and run a lesson yourself, open them in JupyterLab with `bash scripts/lab.sh`.")
    return 0


def prepare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="the unpacked download (or the folder that holds it)")
    p.add_argument("dest", help="a new or empty folder for the ImageFolder")
    p.add_argument("--mode", choices=tuple(MODES), default="copy",
                   help="copy (default, works everywhere), symlink or hardlink (no extra space)")


@command("prepare", prepare_options,
         help="make the course's ImageFolder from a Kaggle, PetImages or ImageFolder download",
         description="Recognise SRC's layout (Kaggle's flat cat.N.jpg folder, Microsoft's PetImages, or "
                     "an ImageFolder) and write DEST/<class>/<file>. SRC is never modified; what is "
                     "left out (Thumbs.db, files without a class) is listed with the reason.")
def prepare(args: argparse.Namespace) -> int:
    from ..loading.prepare import prepare

    print(prepare(args.src, args.dest, mode=args.mode).summary())
    return 0


def verify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="the folder to check (an ImageFolder, or a raw download)")
    p.add_argument("--quarantine", default=None, help="move bad files here, keeping their sub-folders")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any file is bad")
    p.add_argument("--workers", type=options.worker_count, default=2, help="processes decoding in parallel (default 2)")


@command("verify", verify_options, help="open every image under DIR and list the bad ones with the reason",
         description="Decode every image-named file under DIR as RGB and list each bad one (empty, "
                     "truncated, not an image, unreadable). Nothing moves unless --quarantine is given.",
         parents=(PROGRESS,))
def verify(args: argparse.Namespace) -> int:
    from ..loading.verify import verify_folder

    report = verify_folder(args.dir, quarantine=args.quarantine, workers=args.workers, progress=not args.no_progress)
    print(report.summary())
    return 1 if args.strict and report.bad else 0


def memory_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--entries", type=options.positive_int, default=1_000_000, help="index entries (default 1000000)")
    p.add_argument("--workers", type=options.worker_count, default=2, help="num_workers (default 2)")
    p.add_argument("--start-method", choices=START_METHODS, default=None,
                   help="fork shares the index until it is written; spawn and forkserver pickle a copy to each worker")


@command("memory", memory_options, help="the copy-on-read lab: what one pass over a large index costs each worker",
         description="One pass over an index of N synthetic entries (nothing decoded) for each kind of "
                     "index: a Python list of (path, label) tuples, NumPy arrays, and the course's own "
                     "SampleTable; each worker's USS before and after, and the total PSS.",
         parents=(PROGRESS, outputs("one row per kind of index", "a PNG of each worker's USS before and after the pass")))
def memory(args: argparse.Namespace) -> int:
    from ..timing.copy_on_read import MEMORY_COLUMNS, check_fits, copy_on_read
    from ..machine import machine_summary
    from ..lessons.plots import plot_copy_on_read
    from ..timing.tables import format_table

    check_fits(args.entries, args.workers)
    method = multiprocessing.get_context(args.start_method).get_start_method()
    print(f"One pass over {args.entries} synthetic entries per kind of index, {args.workers} workers, start method "
          f"{method}, on {machine_summary()}")
    rows = copy_on_read(args.entries, args.workers, args.start_method, progress=not args.no_progress)
    print(format_table(rows, MEMORY_COLUMNS))
    print("USS: memory only that process holds; before: every worker started, nothing read; growth: what one pass "
          "over the index copied into each worker.")
    write_outputs(args, rows, lambda: plot_copy_on_read(rows, f"Copy-on-read: {args.entries} entries, "
                                                              f"{args.workers} workers"))
    return 0


@command("lab", lambda p: None, help="open the notebooks in JupyterLab with this environment's kernel",
         description="Start JupyterLab on notebooks/ on 127.0.0.1 with this interpreter, so the "
                     "python3 kernel imports helpers. Further arguments go to `jupyter lab` "
                     "(for example --port 8890 --no-browser).", passes_on=True)
def lab(args: argparse.Namespace) -> int:
    from .lab import run_lab

    return run_lab(args.passed_on)


def doctor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-workers", type=options.worker_count, default=2, help="the workers you plan to use (default 2)")
    p.add_argument("--batch-size", type=options.positive_int, default=16, help="default 16")
    p.add_argument("--image-size", type=options.positive_int, default=224, help="default 224")
    p.add_argument("--prefetch-factor", type=options.positive_int, default=2, help="default 2, torch's")
    p.add_argument("--shm", default="/dev/shm", help="the shared-memory folder to check (default /dev/shm)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")


@command("doctor", doctor_options,
         help="run this first: what this machine gives the DataLoader, with verdicts and fixes",
         description="Check versions, the start method, usable cores (cgroup quota and affinity), RAM, "
                     "/dev/shm, the open-files limit, the GPU and the cached weights against a loader "
                     "plan. Exit status 0 when nothing is a problem, 1 otherwise.")
def doctor(args: argparse.Namespace) -> int:
    from .doctor import Plan, as_json, diagnose, exit_status, report

    plan = Plan(num_workers=args.num_workers, batch_size=args.batch_size, image_size=args.image_size,
                prefetch_factor=args.prefetch_factor)
    findings = diagnose(plan, shm_path=args.shm)
    print(as_json(findings, plan) if args.json else report(findings, plan))
    return exit_status(findings)


def timeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=options.worker_count, default=2, help="num_workers (default 2)")
    p.add_argument("--pipeline", choices=tuple(PIPELINES), default="fast")
    p.add_argument("--image-size", type=options.positive_int, default=128, help="default 128")
    p.add_argument("--batch-size", type=options.positive_int, default=4, help="default 4")
    p.add_argument("--batches", type=options.positive_int, default=8, help="batches per epoch (default 8)")
    p.add_argument("--epochs", type=options.positive_int, default=1, help="passes over the batches (default 1)")
    p.add_argument("--persistent", action="store_true", help="persistent_workers=True: workers outlive the epoch")
    p.add_argument("--in-order", action=argparse.BooleanOptionalAction, default=True,
                   help="--no-in-order: batches handed over as they are finished (torch 2.6 and later)")
    p.add_argument("--prefetch-factor", type=options.positive_int, default=None, help="batches each worker loads ahead")
    p.add_argument("--consumer-ms", type=options.milliseconds, default=0.0,
                   help="a sleep after each batch standing for a model step (default 0)")


@command("timeline", timeline_options, help="who made each batch, and when: one CSV row per batch and a Gantt plot",
         description="Run a DataLoader over a few batches and record, from every process's clock, when "
                     "each batch was sent, made (by which worker) and received, and when the main "
                     "process waited; print the batches per worker and the waits.",
         parents=(DATA, START_METHOD, outputs("one row per batch", "the timeline as a PNG")))
def timeline(args: argparse.Namespace) -> int:
    from ..machine import machine_summary
    from ..timing.tables import write_rows
    from ..timing.timeline import COLUMNS, problems, record, summary, who_made_what
    from ..lessons.timeline_plot import plot_timeline

    rows = record(args.data, args.workers, pipeline=args.pipeline, image_size=args.image_size,
                  batch_size=args.batch_size, batches=args.batches, epochs=args.epochs, persistent=args.persistent,
                  in_order=args.in_order, prefetch_factor=args.prefetch_factor, consumer_ms=args.consumer_ms,
                  start_method=args.start_method)
    print(f"{args.workers} workers, {args.batches} batches of {args.batch_size}, {args.epochs} epoch(s), on "
          f"{machine_summary()}")
    for epoch, lanes in who_made_what(rows).items():
        print(f"{epoch}: " + "; ".join(f"{lane} made {', '.join(map(str, b))}" for lane, b in lanes.items()))
    numbers = summary(rows)
    print(f"first batch after {numbers['first_batch_s']:.3f} s; the main process waited {numbers['main_wait_s']:.3f} "
          f"s of {numbers['total_s']:.3f} s; workers idle {numbers['worker_idle_fraction']:.0%} of their span")
    for problem in problems(rows):
        print(f"inconsistent: {problem}")
    write_outputs(args, rows, lambda: plot_timeline(rows, f"{args.workers} workers, {args.pipeline}, "
                                                          f"batch {args.batch_size}"),
                  write=lambda r, path: write_rows(r, path, COLUMNS))
    return 0


def profile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("factory", metavar="MODULE:FACTORY",
                   help="your function FACTORY(num_workers=n) that returns your DataLoader, in MODULE")
    p.add_argument("--path", default=None, help="the folder holding MODULE (default: PYTHONPATH and the current folder)")
    p.add_argument("--workers", type=options.worker_count, nargs="+", default=[0, 2],
                   help="num_workers values to time (default 0 2)")
    p.add_argument("--step", default=None, metavar="MODULE:FN",
                   help="your training step, called on each batch; without it, the loader alone")
    p.add_argument("--batches", type=options.positive_int, default=20,
                   help="timed batches per pass, after a warm-up (loader alone: at least 16 x num_workers)")
    p.add_argument("--repeats", type=options.positive_int, default=3, help="passes per setting, taken in turns")
    p.add_argument("--stall-s", type=options.positive_float, default=None, metavar="S",
                   help="when no batch arrives for S seconds, print every worker's stack and the indices it holds, "
                        "then stop with exit status 2")


@command("profile", profile_options, help="measure your own DataLoader: start-up, rate, data wait, worker memory",
         description="Call FACTORY(num_workers=n) from your MODULE for each --workers value and time its DataLoader: "
                     "the first batch apart from the steady rate, the data-wait share with --step, each worker's "
                     "USS growth, /dev/shm in flight; name dataset attributes that copy into every worker; recommend "
                     "num_workers by the bench's rule.",
         parents=(START_METHOD, outputs("one row per setting", "a PNG of samples/s and worker memory per setting")))
def profile(args: argparse.Namespace) -> int:
    from ..lessons.plots import plot_profile
    from ..timing.profile import CSV_COLUMNS, profile as measure, report
    from ..timing.tables import write_rows

    sys.path.insert(0, os.getcwd())  # `python -m` puts the current folder first; a console script would not
    found = measure(args.factory, args.workers, step=args.step, batches=args.batches, repeats=args.repeats,
                    start_method=args.start_method, stall_s=args.stall_s, path=args.path)
    print(report(found))
    write_outputs(args, found.rows, lambda: plot_profile(found.rows, f"{args.factory}: {found.machine}"),
                  write=lambda rows, path: write_rows(rows, path, CSV_COLUMNS))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, built from COMMANDS."""
    parser = Parser(prog="python -m helpers", description="The course's single command-line front door: "
                                                          "`python -m helpers <command> --help`.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.description, parents=list(cmd.parents),
                           add_help=cmd.add_help)
        cmd.options(p)
        p.set_defaults(func=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ARGV and run its command inside the error boundary: a course error is one line and exit status 2."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not COMMANDS[args.command].passes_on:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.passed_on = unknown
    return boundary(lambda: args.func(args), args)


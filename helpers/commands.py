"""What each command of `python -m helpers` does once its options are parsed and checked: one function per command."""
from __future__ import annotations

import argparse
import multiprocessing
from typing import Any, Callable, Sequence

from .config import config_from_args, refuse_step_checkpoints


def write_outputs(args: argparse.Namespace, rows: Sequence[dict], figure: Callable[[], Any],
                  write: Callable[[Sequence[dict], str], Any] | None = None) -> None:
    """--csv and --plot as every measuring command writes them: the rows, then the figure, each announced."""
    from .tables import write_rows

    if args.csv and rows:
        (write or write_rows)(rows, args.csv)
        print(f"CSV written to {args.csv}")
    if args.plot and rows:
        figure().savefig(args.plot, dpi=110, bbox_inches="tight")
        print(f"Plot written to {args.plot}")


def sample_data(args: argparse.Namespace) -> int:
    from .samples import make_sample_data

    index = make_sample_data(args.dir, per_class=args.per_class, seed=args.seed)
    print(f"{len(index.samples)} images in {args.dir} ({', '.join(index.classes)}), seed {args.seed}")
    return 0


def bench(args: argparse.Namespace) -> int:
    from .bench import bench, report
    from .breakdown import explain
    from .plots import plot_bench
    from .samples import data_or_sample
    from .tables import write_csv

    data = data_or_sample(args.data)
    result = bench(data, args.workers, pipelines=args.pipeline, models=args.model, image_size=args.image_size,
                   batch_size=args.batch_size, batches=args.batches, repeats=args.repeats, device=args.device,
                   start_method=args.start_method, progress=not args.no_progress, loaders=args.loader,
                   worker_kinds=args.worker_kind)
    print(report(result))
    if args.breakdown:
        print("\nWhere the time goes (one worker, one thread), and the trip to the main process by dtype:")
        breakdown = explain(data, args.pipeline, args.image_size, args.batch_size, args.device, args.repeats,
                            start_method=args.start_method)
        print(breakdown.report())
        print(breakdown.against(result))
    write_outputs(args, result.rows, lambda: plot_bench(result.rows, result.one_core_images_per_s, result.cores,
                                                        result.machine, memory=True), write=write_csv)
    return 0


def epochs(args: argparse.Namespace) -> int:
    from .epoch_times import BLOG_WORKERS, SETUPS, TABLE_COLUMNS, blog_workers, epoch_table
    from .measure import machine_summary
    from .options import max_workers
    from .plots import plot_epoch_times
    from .samples import data_or_sample
    from .tables import format_table

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


def run_notebooks(args: argparse.Namespace) -> int:
    from .data import index_image_folder
    from .notebooks import SUMMARY, run_notebooks, write_summary

    if args.data:
        index_image_folder(args.data)  # a folder the lessons cannot use fails here, not in the first notebook
    runs = run_notebooks(args.profile, args.out, data=args.data)
    print(write_summary(runs, args.out, args.profile))
    print(f"Next: the executed notebooks are in {args.out}/ and this summary in {args.out}/{SUMMARY}; "
          "to change a parameter and run a lesson yourself, open them in JupyterLab with `bash scripts/lab.sh`.")
    return 0


def prepare(args: argparse.Namespace) -> int:
    from .prepare import prepare

    print(prepare(args.src, args.dest, mode=args.mode).summary())
    return 0


def verify(args: argparse.Namespace) -> int:
    from .verify import verify_folder

    report = verify_folder(args.dir, quarantine=args.quarantine, workers=args.workers, progress=not args.no_progress)
    print(report.summary())
    return 1 if args.strict and report.bad else 0


def ddp(args: argparse.Namespace) -> int:
    from .ddp import main as ddp_main

    return ddp_main(args.passed_on)


def cached(args: argparse.Namespace) -> int:
    from .features import COMPARE_COLUMNS, compare, fit_cached
    from .tables import format_table

    config = refuse_step_checkpoints(config_from_args(args), "cached")
    if not args.compare:
        fit_cached(config, args.cache)
        return 0
    print(format_table(compare(config, args.cache), COMPARE_COLUMNS))
    return 0


def memory(args: argparse.Namespace) -> int:
    from .copy_on_read import MEMORY_COLUMNS, check_fits, copy_on_read
    from .measure import machine_summary
    from .plots import plot_copy_on_read
    from .tables import format_table

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


def lab(args: argparse.Namespace) -> int:
    from .lab import run_lab

    return run_lab(args.passed_on)


def doctor(args: argparse.Namespace) -> int:
    from .doctor import Plan, as_json, diagnose, exit_status, report

    plan = Plan(num_workers=args.num_workers, batch_size=args.batch_size, image_size=args.image_size,
                prefetch_factor=args.prefetch_factor)
    findings = diagnose(plan, shm_path=args.shm)
    print(as_json(findings, plan) if args.json else report(findings, plan))
    return exit_status(findings)


def ladder(args: argparse.Namespace) -> int:
    from .ladder import LADDER_COLUMNS, ladder as climb, machine_line, plot_ladder, summary, verdicts
    from .measure import conditions_line, load_average
    from .samples import data_or_sample
    from .tables import format_table

    load_before = load_average()
    rows = climb(data_or_sample(args.data), args.workers, image_size=args.image_size, large_batch=args.batch_size,
                 batches=args.batches, repeats=args.repeats, progress=not args.no_progress)
    print(machine_line(rows))
    print(format_table(rows, LADDER_COLUMNS))
    print(summary(rows))
    print("\n".join([*verdicts(rows), conditions_line(load_before)]))
    write_outputs(args, rows, lambda: plot_ladder(rows, machine_line(rows)))
    return 0


def timeline(args: argparse.Namespace) -> int:
    from .measure import machine_summary
    from .tables import write_rows
    from .timeline import COLUMNS, problems, record, summary, who_made_what
    from .timeline_plot import plot_timeline

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

"""The course's single command-line front door: `python -m helpers <command> --help`."""
from __future__ import annotations

import argparse
import multiprocessing
import sys

from . import options
from .cli import Parser, add_train_arguments, boundary, train_command
from .config import START_METHODS, add_config_arguments, config_from_args, refuse_step_checkpoints
from .epoch_times import SETUPS
from .prepare import MODES
from .threads import WORKER_KINDS
from .timeline import add_command as add_timeline_command
from .transforms import PIPELINES


def _sample_data(args: argparse.Namespace) -> int:
    from .samples import make_sample_data
    index = make_sample_data(args.dir, per_class=args.per_class, seed=args.seed)
    print(f"{len(index.samples)} images in {args.dir} ({', '.join(index.classes)}), seed {args.seed}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import bench, report
    from .breakdown import explain
    from .samples import data_or_sample
    from .tables import write_csv

    data = data_or_sample(args.data)
    result = bench(data, args.workers, pipelines=args.pipeline, models=args.model, image_size=args.image_size,
                   batch_size=args.batch_size, batches=args.batches, repeats=args.repeats, device=args.device,
                   start_method=args.start_method, progress=not args.no_progress, worker_kinds=args.worker_kind)
    print(report(result))
    if args.breakdown:
        print("\nWhere the time goes (one worker, one thread), and the trip to the main process by dtype:")
        breakdown = explain(data, args.pipeline, args.image_size, args.batch_size, args.device, args.repeats,
                            start_method=args.start_method)
        print(breakdown.report())
        print(breakdown.against(result))
    if args.csv:
        write_csv(result.rows, args.csv)
        print(f"CSV written to {args.csv}")
    if args.plot:
        from .plots import plot_bench
        plot_bench(result.rows, result.one_core_images_per_s, result.cores, result.machine, memory=True).savefig(
            args.plot, dpi=110, bbox_inches="tight")
        print(f"Plot written to {args.plot}")
    return 0


def _epochs(args: argparse.Namespace) -> int:
    from .epoch_times import SETUPS, TABLE_COLUMNS, epoch_table
    from .measure import machine_summary
    from .samples import data_or_sample
    from .tables import format_table, write_rows

    machine = machine_summary()
    print(f"One epoch per setting on {machine}")
    rows = epoch_table(data_or_sample(args.data), [SETUPS[name] for name in args.setup], args.workers,
                       device=args.device, seed=args.seed)
    print(format_table(rows, TABLE_COLUMNS))
    if args.csv and rows:
        write_rows(rows, args.csv)
        print(f"CSV written to {args.csv}")
    if args.plot and rows:
        from .plots import plot_epoch_times
        plot_epoch_times(rows, f"The blog's table: {machine}").savefig(args.plot, dpi=110, bbox_inches="tight")
        print(f"Plot written to {args.plot}")
    return 0


def _run_notebooks(args: argparse.Namespace) -> int:
    from .data import index_image_folder
    from .notebooks import SUMMARY, run_notebooks, write_summary

    if args.data:
        index_image_folder(args.data)  # a folder the lessons cannot use fails here, not in the first notebook
    runs = run_notebooks(args.profile, args.out, data=args.data)
    print(write_summary(runs, args.out, args.profile))
    print(f"Next: the executed notebooks are in {args.out}/ and this summary in {args.out}/{SUMMARY}; "
          "to change a parameter and run a lesson yourself, open them in JupyterLab with `bash scripts/lab.sh`.")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from .prepare import prepare
    print(prepare(args.src, args.dest, mode=args.mode).summary())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .verify import verify_folder
    report = verify_folder(args.dir, quarantine=args.quarantine, workers=args.workers, progress=not args.no_progress)
    print(report.summary())
    return 1 if args.strict and report.bad else 0


def _ddp(args: argparse.Namespace) -> int:
    from .ddp import main as ddp_main
    return ddp_main(args.passed_on)


def _cached(args: argparse.Namespace) -> int:
    from .features import COMPARE_COLUMNS, compare, fit_cached
    from .tables import format_table

    config = refuse_step_checkpoints(config_from_args(args), "cached")
    if not args.compare:
        fit_cached(config, args.cache)
        return 0
    print(format_table(compare(config, args.cache), COMPARE_COLUMNS))
    return 0


def _memory(args: argparse.Namespace) -> int:
    from .copy_on_read import MEMORY_COLUMNS, check_fits, copy_on_read
    from .measure import machine_summary
    from .tables import format_table, write_rows

    check_fits(args.entries, args.workers)
    method = multiprocessing.get_context(args.start_method).get_start_method()
    print(f"One pass over {args.entries} synthetic entries per kind of index, {args.workers} workers, start method "
          f"{method}, on {machine_summary()}")
    rows = copy_on_read(args.entries, args.workers, args.start_method, progress=not args.no_progress)
    print(format_table(rows, MEMORY_COLUMNS))
    print("USS: memory only that process holds; before: every worker started, nothing read; growth: what one pass "
          "over the index copied into each worker.")
    if args.csv:
        write_rows(rows, args.csv)
        print(f"CSV written to {args.csv}")
    if args.plot:
        from .plots import plot_copy_on_read
        plot_copy_on_read(rows, f"Copy-on-read: {args.entries} entries, {args.workers} workers").savefig(
            args.plot, dpi=110, bbox_inches="tight")
        print(f"Plot written to {args.plot}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    from .lab import run_lab
    return run_lab(args.passed_on)


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import Plan, as_json, diagnose, exit_status, report

    plan = Plan(num_workers=args.num_workers, batch_size=args.batch_size, image_size=args.image_size,
                prefetch_factor=args.prefetch_factor)
    findings = diagnose(plan, shm_path=args.shm)
    print(as_json(findings, plan) if args.json else report(findings, plan))
    return exit_status(findings)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="write the generated cats-vs-dogs ImageFolder",
                       description="Write a deterministic ImageFolder of drawn cat and dog JPEGs (DIR/cat, DIR/dog).")
    p.add_argument("dir", help="where to write it")
    p.add_argument("--per-class", type=options.positive_int, default=100, help="images per class (default 100)")
    p.add_argument("--seed", type=options.count, default=0, help="the same seed gives byte-identical files")
    p.set_defaults(func=_sample_data)

    p = sub.add_parser("train", help="train the frozen ResNet18 (the same options as scripts/train.py)",
                       description="Train the frozen ResNet18 on an ImageFolder, one line per epoch.")
    add_train_arguments(p).set_defaults(func=train_command)

    p = sub.add_parser("cached", help="train the head on cached backbone features (the same options as train)",
                       description="Run the frozen backbone once per image (validation transform, so no augmentation) "
                                   "and train the head on the stored features; --compare also trains from images.")
    add_config_arguments(p)
    p.add_argument("--cache", default="runs/features.pt", help="feature file, reused while files and settings match")
    p.add_argument("--compare", action="store_true", help="train from images too and print both epoch times")
    p.set_defaults(func=_cached)

    p = sub.add_parser("ddp", add_help=False, help="train with DistributedDataParallel; start it with torchrun",
                       description="`torchrun --standalone --nproc_per_node=2 -m helpers ddp --epochs 2`; "
                                   "`python -m helpers ddp --help` lists the options.")
    p.set_defaults(func=_ddp)

    p = sub.add_parser("bench", help="time num_workers: loader alone or feeding the model, with a CPU ceiling",
                       description="Sweep num_workers; print images/s (median, min, max over repeats), worker start-up, "
                                   "data-wait share, the CPU ceiling, memory (PSS), and a recommendation.")
    p.add_argument("--data", default=None, help="ImageFolder root; default: the generated sample set")
    p.add_argument("--workers", type=options.worker_count, nargs="+", default=[0, 1, 2, 4],
                   help="num_workers values to time (default 0 1 2 4)")
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
    p.add_argument("--device", type=options.device_name, default="auto", help="auto, cpu or cuda")
    p.add_argument("--start-method", choices=START_METHODS, default=None)
    p.add_argument("--worker-kind", nargs="+", default=["process"], choices=WORKER_KINDS,
                   help="process (DataLoader workers, the default) and/or thread (the same batches on torchdata threads)")
    p.add_argument("--csv", default=None, help="write one row per setting to this CSV")
    p.add_argument("--plot", default=None, help="save a PNG of images/s and memory (PSS) against num_workers")
    p.add_argument("--breakdown", action="store_true",
                   help="also time each part of a worker's work, and the trip of float32 and uint8 batches")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_bench)

    p = sub.add_parser("epochs", help="the blog's table: one epoch's time and data-wait share per num_workers",
                       description="One epoch (train + validation, fresh workers, as the blog timed it) per setup "
                                   "and num_workers: the blog's (512 px, batch 4) and corrected ones (224 px, batch 4 or 256).")
    p.add_argument("--data", default=None, help="ImageFolder root; default: the generated sample set")
    p.add_argument("--workers", type=options.worker_count, nargs="+", default=[0, 1, 2, 4, 8, 12, 16],
                   help="num_workers values (default 0 1 2 4 8 12 16, the blog's question on a 16-core machine)")
    p.add_argument("--setup", nargs="+", default=list(SETUPS), choices=tuple(SETUPS),
                   help="which setups, by label (default: all five)")
    p.add_argument("--device", type=options.device_name, default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=options.count, default=0)
    p.add_argument("--csv", default=None, help="write one row per setting to this CSV")
    p.add_argument("--plot", default=None, help="save a PNG of epoch time and data wait against num_workers")
    p.set_defaults(func=_epochs)

    p = sub.add_parser("run-notebooks", help="execute every notebook in order with papermill, then print a summary",
                       description="Execute notebooks/00_*.ipynb onwards with papermill into OUT (the sources are "
                                   "never written), stop at the first failing cell, print time per notebook and "
                                   "the num_workers table.")
    p.add_argument("--profile", choices=("quick", "full"), default="quick",
                   help="quick: each notebook's own parameters (CPU-sized lesson); full: longer, larger sweeps")
    p.add_argument("--out", default="runs/notebooks", help="folder for the executed copies (default runs/notebooks)")
    p.add_argument("--data", default=None, help="ImageFolder root for every notebook; default: the sample set")
    p.set_defaults(func=_run_notebooks)

    p = sub.add_parser("prepare", help="make the course's ImageFolder from a Kaggle, PetImages or ImageFolder download",
                       description="Recognise SRC's layout (Kaggle's flat cat.N.jpg folder, Microsoft's PetImages, or "
                                   "an ImageFolder) and write DEST/<class>/<file>. SRC is never modified; what is "
                                   "left out (Thumbs.db, files without a class) is listed with the reason.")
    p.add_argument("src", help="the unpacked download (or the folder that holds it)")
    p.add_argument("dest", help="a new or empty folder for the ImageFolder")
    p.add_argument("--mode", choices=tuple(MODES), default="copy",
                   help="copy (default, works everywhere), symlink or hardlink (no extra space)")
    p.set_defaults(func=_prepare)

    p = sub.add_parser("verify", help="open every image under DIR and list the bad ones with the reason",
                       description="Decode every image-named file under DIR as RGB and list each bad one (empty, "
                                   "truncated, not an image, unreadable). Nothing moves unless --quarantine is given.")
    p.add_argument("dir", help="the folder to check (an ImageFolder, or a raw download)")
    p.add_argument("--quarantine", default=None, help="move bad files here, keeping their sub-folders")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any file is bad")
    p.add_argument("--workers", type=options.worker_count, default=2, help="processes decoding in parallel (default 2)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_verify)

    p = sub.add_parser("memory", help="the copy-on-read lab: what one pass over a large index costs each worker",
                       description="One pass over an index of N synthetic entries (nothing decoded) for each kind of "
                                   "index: a Python list of (path, label) tuples, NumPy arrays, and the course's own "
                                   "SampleTable; each worker's USS before and after, and the total PSS.")
    p.add_argument("--entries", type=options.positive_int, default=1_000_000, help="index entries (default 1000000)")
    p.add_argument("--workers", type=options.worker_count, default=2, help="num_workers (default 2)")
    p.add_argument("--start-method", choices=START_METHODS, default=None,
                   help="fork shares the index until it is written; spawn and forkserver pickle a copy to each worker")
    p.add_argument("--csv", default=None, help="write one row per kind of index to this CSV")
    p.add_argument("--plot", default=None, help="save a PNG of each worker's USS before and after the pass")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_memory)

    p = sub.add_parser("lab", help="open the notebooks in JupyterLab with this environment's kernel",
                       description="Start JupyterLab on notebooks/ on 127.0.0.1 with this interpreter, so the "
                                   "python3 kernel imports helpers. Further arguments go to `jupyter lab` "
                                   "(for example --port 8890 --no-browser).")
    p.set_defaults(func=_lab)

    p = sub.add_parser("doctor", help="run this first: what this machine gives the DataLoader, with verdicts and fixes",
                       description="Check versions, the start method, usable cores (cgroup quota and affinity), RAM, "
                                   "/dev/shm, the open-files limit, the GPU and the cached weights against a loader "
                                   "plan. Exit status 0 when nothing is a problem, 1 otherwise.")
    p.add_argument("--num-workers", type=options.worker_count, default=2, help="the workers you plan to use (default 2)")
    p.add_argument("--batch-size", type=options.positive_int, default=16, help="default 16")
    p.add_argument("--image-size", type=options.positive_int, default=224, help="default 224")
    p.add_argument("--prefetch-factor", type=options.positive_int, default=2, help="default 2, torch's")
    p.add_argument("--shm", default="/dev/shm", help="the shared-memory folder to check (default /dev/shm)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=_doctor)
    add_timeline_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command not in ("lab", "ddp"):  # those two pass every further option on
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.passed_on = unknown
    return boundary(lambda: args.func(args))


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

"""The course's single command-line front door: `python -m helpers <command> --help`."""
from __future__ import annotations

import argparse
import multiprocessing
import sys

from . import commands, options
from .cli import Parser, add_train_arguments, boundary, train_command
from .config import START_METHODS, add_config_arguments
from .epoch_times import SETUPS
from .peers import LOADERS
from .prepare import MODES
from .threads import WORKER_KINDS
from .transforms import PIPELINES


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="write the generated cats-vs-dogs ImageFolder",
                       description="Write a deterministic ImageFolder of drawn cat and dog JPEGs (DIR/cat, DIR/dog).")
    p.add_argument("dir", help="where to write it")
    p.add_argument("--per-class", type=options.positive_int, default=100, help="images per class (default 100)")
    p.add_argument("--seed", type=options.count, default=0, help="the same seed gives byte-identical files")
    p.set_defaults(func=commands.sample_data)

    p = sub.add_parser("train", help="train the frozen ResNet18 (the same options as scripts/train.py)",
                       description="Train the frozen ResNet18 on an ImageFolder, one line per epoch.")
    add_train_arguments(p).set_defaults(func=train_command)

    p = sub.add_parser("cached", help="train the head on cached backbone features (the same options as train)",
                       description="Run the frozen backbone once per image (validation transform, so no augmentation) "
                                   "and train the head on the stored features; --compare also trains from images.")
    add_config_arguments(p)
    p.add_argument("--cache", default="runs/features.pt", help="feature file, reused while files and settings match")
    p.add_argument("--compare", action="store_true", help="train from images too and print both epoch times")
    p.set_defaults(func=commands.cached)

    p = sub.add_parser("ddp", add_help=False, help="train with DistributedDataParallel; start it with torchrun",
                       description="`torchrun --standalone --nproc_per_node=2 -m helpers ddp --epochs 2`; "
                                   "`python -m helpers ddp --help` lists the options.")
    p.set_defaults(func=commands.ddp)

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
    p.add_argument("--loader", nargs="+", default=["dataloader"], choices=tuple(LOADERS), help="peers: requirements-peers.txt")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=commands.bench)

    p = sub.add_parser("ladder", help="like for like: the blog's pipeline made fast one change at a time",
                       description="Time, loader only and at one num_workers, the blog's pipeline, then uint8 output, "
                                   "a uint8 resize, libjpeg-turbo decoding (the fast pipeline) and a larger batch: "
                                   "each rung's own gain.")
    p.add_argument("--data", default=None, help="ImageFolder root; default: the generated sample set")
    p.add_argument("--workers", type=options.worker_count, default=None, help="num_workers (default: usable cores)")
    p.add_argument("--image-size", type=options.positive_int, default=512, help="default 512, the blog's")
    p.add_argument("--batch-size", type=options.positive_int, default=32, help="the last rung's batch (default 32)")
    p.add_argument("--batches", type=options.positive_int, default=64, help="timed batches per run (default 64)")
    p.add_argument("--repeats", type=options.positive_int, default=5, help="runs per rung, taken in turns")
    p.add_argument("--csv", default=None, help="write one row per rung to this CSV")
    p.add_argument("--plot", default=None, help="save a PNG of images/s per rung")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=commands.ladder)

    p = sub.add_parser("epochs", help="the blog's table: one epoch's time and data-wait share per num_workers",
                       description="One epoch (train + validation, fresh workers, as the blog timed it) per setup "
                                   "and num_workers: the blog's (512 px, batch 4) and corrected ones (224 px, batch 4 or 256).")
    p.add_argument("--data", default=None, help="ImageFolder root; default: the generated sample set")
    p.add_argument("--workers", type=options.worker_count, nargs="+", default=None,
                   help="num_workers values (default 0 1 2 4 8 12 16, the blog's question on a 16-core machine, "
                        "up to this machine's limit)")
    p.add_argument("--setup", nargs="+", default=list(SETUPS), choices=tuple(SETUPS),
                   help="which setups, by label (default: all five)")
    p.add_argument("--device", type=options.device_name, default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=options.count, default=0)
    p.add_argument("--csv", default=None, help="write one row per setting to this CSV")
    p.add_argument("--plot", default=None, help="save a PNG of epoch time and data wait against num_workers")
    p.set_defaults(func=commands.epochs)

    p = sub.add_parser("run-notebooks", help="execute every notebook in order with papermill, then print a summary",
                       description="Execute notebooks/00_*.ipynb onwards with papermill into OUT (the sources are "
                                   "never written), stop at the first failing cell, print time per notebook and "
                                   "the num_workers table.")
    p.add_argument("--profile", choices=("quick", "full"), default="quick",
                   help="quick: each notebook's own parameters (CPU-sized lesson); full: longer, larger sweeps")
    p.add_argument("--out", default="runs/notebooks", help="folder for the executed copies (default runs/notebooks)")
    p.add_argument("--data", default=None, help="ImageFolder root for every notebook; default: the sample set")
    p.add_argument("--cell-timeout", type=options.positive_float, default=None, metavar="S",
                   help="seconds one cell may run before the run fails, naming it (default: 600 quick, 1800 full)")
    p.set_defaults(func=commands.run_notebooks)

    p = sub.add_parser("prepare", help="make the course's ImageFolder from a Kaggle, PetImages or ImageFolder download",
                       description="Recognise SRC's layout (Kaggle's flat cat.N.jpg folder, Microsoft's PetImages, or "
                                   "an ImageFolder) and write DEST/<class>/<file>. SRC is never modified; what is "
                                   "left out (Thumbs.db, files without a class) is listed with the reason.")
    p.add_argument("src", help="the unpacked download (or the folder that holds it)")
    p.add_argument("dest", help="a new or empty folder for the ImageFolder")
    p.add_argument("--mode", choices=tuple(MODES), default="copy",
                   help="copy (default, works everywhere), symlink or hardlink (no extra space)")
    p.set_defaults(func=commands.prepare)

    p = sub.add_parser("verify", help="open every image under DIR and list the bad ones with the reason",
                       description="Decode every image-named file under DIR as RGB and list each bad one (empty, "
                                   "truncated, not an image, unreadable). Nothing moves unless --quarantine is given.")
    p.add_argument("dir", help="the folder to check (an ImageFolder, or a raw download)")
    p.add_argument("--quarantine", default=None, help="move bad files here, keeping their sub-folders")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any file is bad")
    p.add_argument("--workers", type=options.worker_count, default=2, help="processes decoding in parallel (default 2)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=commands.verify)

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
    p.set_defaults(func=commands.memory)

    p = sub.add_parser("lab", help="open the notebooks in JupyterLab with this environment's kernel",
                       description="Start JupyterLab on notebooks/ on 127.0.0.1 with this interpreter, so the "
                                   "python3 kernel imports helpers. Further arguments go to `jupyter lab` "
                                   "(for example --port 8890 --no-browser).")
    p.set_defaults(func=commands.lab)

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
    p.set_defaults(func=commands.doctor)

    p = sub.add_parser("timeline", help="who made each batch, and when: one CSV row per batch and a Gantt plot",
                       description="Run a DataLoader over a few batches and record, from every process's clock, when "
                                   "each batch was sent, made (by which worker) and received, and when the main "
                                   "process waited; print the batches per worker and the waits.")
    p.add_argument("--data", default=None, help="ImageFolder root; default: the generated sample set")
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
    p.add_argument("--start-method", choices=START_METHODS, default=None)
    p.add_argument("--csv", default=None, help="write one row per batch to this CSV")
    p.add_argument("--plot", default=None, help="save the timeline as a PNG")
    p.set_defaults(func=commands.timeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command not in ("lab", "ddp"):  # those two pass every further option on
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.passed_on = unknown
    return boundary(lambda: options.refuse_what_cannot_work(args) or args.func(args))  # refused before any work


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

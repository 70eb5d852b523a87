"""The course's single command-line front door: `python -m helpers <command> --help`."""
from __future__ import annotations

import argparse
import multiprocessing
import sys

from .data import DEFAULT_SAMPLE_DIR, DataError
from .train import add_arguments as add_train_arguments
from .train import run as train_from_args


def _sample_data(args: argparse.Namespace) -> int:
    from .data import make_sample_data

    index = make_sample_data(args.dir, per_class=args.per_class, seed=args.seed)
    print(f"{len(index.samples)} images in {args.dir} ({', '.join(index.classes)}), seed {args.seed}")
    return 0


def _time_loader(args: argparse.Namespace) -> int:
    from .data import ensure_sample_data
    from .timing import SWEEP_COLUMNS, format_table, machine_summary, sweep_workers

    data = args.data or ensure_sample_data(DEFAULT_SAMPLE_DIR)
    rows = sweep_workers(data, args.workers, pipeline=args.pipeline, image_size=args.image_size,
                         batch_size=args.batch_size, batches=args.batches, repeats=args.repeats,
                         start_method=args.start_method)
    print(f"Loader-only throughput, {args.pipeline} pipeline, {args.image_size} px, batch {args.batch_size}, "
          f"{args.batches} timed batches x {args.repeats} repeats on {machine_summary()}")
    print(format_table(rows, SWEEP_COLUMNS))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="write the generated cats-vs-dogs ImageFolder",
                       description="Write a deterministic ImageFolder of drawn cat and dog JPEGs (DIR/cat, DIR/dog).")
    p.add_argument("dir", help="where to write it")
    p.add_argument("--per-class", type=int, default=100, help="images per class (default 100)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical files")
    p.set_defaults(func=_sample_data)

    p = sub.add_parser("train", help="train the frozen ResNet18 (the same options as scripts/train.py)",
                       description="Train the frozen ResNet18 on an ImageFolder, one line per epoch.")
    add_train_arguments(p).set_defaults(func=train_from_args)

    p = sub.add_parser("time-loader", help="a quick num_workers timing table for the loader alone",
                       description="Time the training DataLoader alone for several num_workers values.")
    p.add_argument("--data", default=None, help="ImageFolder root; default: the generated sample set")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pipeline", default="standard", choices=("blog", "standard", "fast"))
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batches", type=int, default=8, help="timed batches per repeat, after one warm-up batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--start-method", choices=("fork", "spawn", "forkserver"), default=None)
    p.set_defaults(func=_time_loader)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

"""The one error boundary of every command, the parser that reports a bad option in one line, the training options
built from TrainConfig's fields, and the entry points of scripts/train.py and scripts/train_ddp.py."""
from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from typing import Any, Callable, NoReturn

from ..errors import CourseError, one_line
from ..training.config import TrainConfig, config_from_args, flag_of
from .refusals import refuse_what_cannot_work


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line naming it, its value and what is accepted, then exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def boundary(command: Callable[[], int], args: Any = None, prefix: str = "") -> int:
    """Refuse what cannot work with ARGS (the parsed options), then run COMMAND; a course error (data, checkpoint,
    workers, options) becomes one line on stderr and its exit status, so every entry point refuses and reports alike."""
    try:
        if args is not None:
            refuse_what_cannot_work(args)  # before any work: unwritable outputs, batches that cannot fit
        return command()
    except CourseError as exc:
        print(prefix + one_line(exc), file=sys.stderr)
        return exc.exit_status
    except OSError as exc:  # a file that cannot be written or read (a full disk, a folder without permission)
        print(f"{prefix}error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def add_config_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """One option per TrainConfig field, with its help, default and check, so the command line restates nothing."""
    for f in fields(TrainConfig):
        meta, default = f.metadata, f.default if f.default is not MISSING else None
        if isinstance(default, bool):
            name = f"--no-{f.name.replace('_', '-')}" if default else flag_of(f.name)
            parser.add_argument(name, dest=f.name, action="store_false" if default else "store_true",
                                help=meta["help"])
            continue
        shown = "" if default is None else f" (default: {default})"
        parser.add_argument(flag_of(f.name), dest=f.name, default=default, type=meta["check"] or str,
                            choices=meta["choices"], help=meta["help"] + shown)
    return parser


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The training options, shared by scripts/train.py, scripts/train_ddp.py and `python -m helpers train|cached`."""
    add_config_arguments(parser)
    parser.add_argument("--plot", default=None, help="save the loss curves (per step and per epoch) to this PNG")
    return parser


def save_plot(history: dict[str, list], path: str | None) -> None:
    """The loss curves to PATH, when a path was given and an epoch ran."""
    if path and history["epoch"]:
        from ..lessons.plots import plot_history
        plot_history(history).savefig(path, dpi=100, bbox_inches="tight")
        print(f"Loss curves saved to {path}")


def train_command(args: argparse.Namespace) -> int:
    """Train from parsed options, then save the loss curves when --plot is given."""
    from ..training.fit import fit

    save_plot(fit(config_from_args(args)), args.plot)
    return 0


def train_main(argv: list[str] | None = None) -> int:
    """scripts/train.py: parse, train, and turn the course's errors into one line and exit status 2."""
    parser = add_train_arguments(Parser(description="Train the frozen ResNet18 on an ImageFolder, one line per epoch."))
    args = parser.parse_args(argv)
    return boundary(lambda: train_command(args), args)


DDP_DESCRIPTION = """Train the frozen ResNet18 on an ImageFolder with DistributedDataParallel, one process per rank.
Start it with torchrun, e.g. `torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --epochs 2`; without
torchrun it runs as a single process. --num-workers and --batch-size are per rank: the global batch is batch size x
number of ranks. On CUDA each rank uses cuda:LOCAL_RANK with NCCL; on the CPU the ranks talk over gloo."""


def ddp_parser() -> argparse.ArgumentParser:
    """scripts/train.py's options, plus the one diagnostic that only makes sense with several ranks."""
    parser = add_train_arguments(Parser(description=DDP_DESCRIPTION))
    parser.add_argument("--record-samples", metavar="PREFIX", default=None,
                        help="diagnostic: each rank writes the files it trained on, per epoch, to PREFIX.rankR.json")
    parser.set_defaults(command="ddp")  # the options ddp refuses are refused before any work (refusals.py)
    return parser


def ddp_main(argv: list[str] | None = None) -> int:
    """Train as one rank of a torchrun job (or alone); a course error is one line (naming the rank) and exit 2."""
    from ..training import ddp

    args = ddp_parser().parse_args(argv)
    rank = ddp.rank_from_env()

    def run() -> int:
        history = ddp.run(config_from_args(args), rank, args.record_samples)
        if rank.main:
            save_plot(history, args.plot)
        return 0

    return boundary(run, args, prefix=f"{rank} " if rank.world > 1 else "")

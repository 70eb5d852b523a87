"""The one error boundary of every command, the parser that reports a bad option in one line, and `train`."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn

from .config import add_config_arguments, config_from_args
from .errors import CourseError, one_line
from .options import refuse_what_cannot_work


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line naming it, its value and what is accepted, then exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def boundary(command: Callable[[], int], prefix: str = "") -> int:
    """Run COMMAND; a course error (data, checkpoint, workers, options) becomes one line on stderr and its exit status."""
    try:
        return command()
    except CourseError as exc:
        print(prefix + one_line(exc), file=sys.stderr)
        return exc.exit_status
    except OSError as exc:  # a file that cannot be written or read (a full disk, a folder without permission)
        print(f"{prefix}error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The training options, shared by scripts/train.py, scripts/train_ddp.py and `python -m helpers train|cached`."""
    add_config_arguments(parser)
    parser.add_argument("--plot", default=None, help="save the loss curves (per step and per epoch) to this PNG")
    return parser


def save_plot(history: dict[str, list], path: str | None) -> None:
    """The loss curves to PATH, when a path was given and an epoch ran."""
    if path and history["epoch"]:
        from .plots import plot_history
        plot_history(history).savefig(path, dpi=100, bbox_inches="tight")
        print(f"Loss curves saved to {path}")


def train_command(args: argparse.Namespace) -> int:
    """Train from parsed options, then save the loss curves when --plot is given."""
    from .train import fit

    save_plot(fit(config_from_args(args)), args.plot)
    return 0


def train_main(argv: list[str] | None = None) -> int:
    """scripts/train.py: parse, train, and turn the course's errors into one line and exit status 2."""
    parser = add_train_arguments(Parser(description="Train the frozen ResNet18 on an ImageFolder, one line per epoch."))
    args = parser.parse_args(argv)
    return boundary(lambda: refuse_what_cannot_work(args) or train_command(args))  # refused before any work

"""The course's single command-line front door: `python -m helpers <command> --help` (the commands: helpers.app)."""
import multiprocessing
import sys

from .app.commands import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

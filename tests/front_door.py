"""The command line run in the test's own process: the exit status `python -m helpers` (or a script) would exit with."""
from __future__ import annotations

from helpers.__main__ import main
from helpers.app.cli import train_main
from helpers.app.cli import ddp_main


def run_command(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ARGV as the command line (or a script's main) would, in this process; exit status, stdout, stderr."""
    entry = {"scripts/train.py": train_main, "scripts/train_ddp.py": ddp_main}.get(argv[0])
    try:
        code = entry(argv[1:]) if entry else main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err

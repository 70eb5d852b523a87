"""Verdicts across independent runs: read the 'Repeats, ...' lines that bench, ladder and measure_knobs print, compare
named settings in each run with helpers.verdict, and say what all the runs together support (helpers.verdict.replicated).

    python scripts/replicate_verdicts.py results/workers_cpu2_512px_run{1,2,3}.txt --compare "fast loader 3 workers" \
        "fast loader 2 workers"

Each --compare is A B: "A against B" (higher images/s is better). Prints one line per run and the replicated verdict.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.verdict import replicated, verdict  # noqa: E402

REPEATS = re.compile(r"^Repeats, (.+?): ([\d. ]+) images/s", re.M)
LOAD = re.compile(r"^cat /proc/loadavg (before|after): ([\d.]+)", re.M)


def repeats(path: Path) -> dict[str, list[float]]:
    """Every setting's repeats in one results file, by the label it was printed with."""
    return {label: [float(x) for x in values.split()] for label, values in REPEATS.findall(path.read_text())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--compare", nargs=2, action="append", metavar=("A", "B"), required=True)
    args = p.parse_args()
    missing = [str(r) for r in args.runs if not r.is_file()]
    if missing:
        print(f"error: no such results file: {', '.join(missing)}", file=sys.stderr)
        return 2
    found = {run: repeats(run) for run in args.runs}
    for run in args.runs:
        loads = dict(LOAD.findall(run.read_text()))
        print(f"{run.name}: 1-minute load average before {loads.get('before', '?')}, after {loads.get('after', '?')}")
    for a, b in args.compare:
        verdicts = []
        for run in args.runs:
            if a not in found[run] or b not in found[run]:
                print(f"error: {run} has no repeats for {a if a not in found[run] else b!r}", file=sys.stderr)
                return 2
            v = verdict(found[run][a], found[run][b])
            verdicts.append(v)
            ra, rb = found[run][a], found[run][b]
            print(f"  {run.name}: {a} ({min(ra):.1f} to {max(ra):.1f}) against {b} ({min(rb):.1f} to {max(rb):.1f}): {v}")
        print(f"Verdict over {len(args.runs)} runs, {a} against {b}: {replicated(verdicts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 29's test of the rule, read back from the storage runs scripts/measure_storage.py wrote: per run and latency,
Little's law's workers (helpers/which_workers.py, with one thread's CPU time per item, as the bench computes it), the
one pick (the fewest workers tied with the best by the verdict), their ratio, and whether the test held: at 20 ms the
pick within 25 % of the law and past the cores, at 0 ms not past the cores.

    python scripts/storage_rule.py results/storage_cpu2_run{4,5,6}.txt

Reads only the results files: nothing is measured again.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure_storage import TOLERANCE  # noqa: E402  (this folder: the storage measurement defines the test)
from helpers.which_workers import Costs, pick, workers_for  # noqa: E402

REPEATS = re.compile(r"^Repeats, blog loader ([\d.]+) ms per file (\d+) workers: ([\d. ]+) images/s", re.M)
ONE_CORE = re.compile(r"^CPU ceiling, blog: (\d+) cores x ([\d.]+) images/s on one core", re.M)
LOAD = re.compile(r"^cat /proc/loadavg (before|after): ([\d.]+)", re.M)


def read_run(path: Path) -> list[str]:
    """The lines for one run: its load, then one per latency, then whether the test held."""
    text = path.read_text()
    by_latency: dict[float, dict[int, list[float]]] = {}
    for ms, n, values in REPEATS.findall(text):
        by_latency.setdefault(float(ms), {})[int(n)] = [float(v) for v in values.split()]
    ceilings = ONE_CORE.findall(text)
    if not by_latency or not ceilings:
        raise ValueError(f"{path} holds no storage rule (no 'Repeats, blog loader' or 'CPU ceiling' lines)")
    cores = int(ceilings[0][0])
    thread_s = 1 / statistics.median(float(one) for _, one in ceilings)
    loads = dict(LOAD.findall(text))
    lines = [f"{path.name}: 1-minute load average before {loads.get('before', '?')}, after {loads.get('after', '?')}"]
    held = []
    for ms, timed in sorted(by_latency.items()):
        law, (chosen, why) = workers_for(Costs(thread_s, ms / 1000, cores=cores)), pick(timed)
        lines.append(f"  {ms:g} ms per file: Little's law {law:.1f} workers with one thread's {1000 * thread_s:.1f} ms "
                     f"per item; the pick: {chosen} workers ({why}), {chosen / law:.2f} x")
        if ms == 20:
            held.append(abs(chosen / law - 1) <= TOLERANCE and chosen > cores)
        elif ms == 0:
            held.append(chosen <= cores)
    said = "cannot be read" if len(held) != 2 else "held" if all(held) else "did not hold"
    lines.append(f"  the test (20 ms: the pick within {TOLERANCE:.0%} of the law and past the {cores} cores; 0 ms: "
                 f"not past them): {said}")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    args = p.parse_args()
    missing = [str(r) for r in args.runs if not r.is_file()]
    if missing:
        print(f"error: no such results file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        lines = [line for run in args.runs for line in read_run(run)]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 29's test of the rule, read back from the storage runs scripts/measure_storage.py wrote: per run and latency,
Little's law's workers (with one thread's CPU time per item, as the bench computes it, and with a worker's own, from
1 worker at 0 ms), the fewest workers tied with the best by the repeats' verdict, the bench's 5 % pick, their ratios,
and whether the test held with each time per item: at 20 ms the tied pick within 25 % of the law and past the cores,
at 0 ms not past the cores.

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

from helpers.loading.storage import workers_needed  # noqa: E402
from helpers.timing.far_away import TOLERANCE, fewest_tied, worker_cpu_s  # noqa: E402

REPEATS = re.compile(r"^Repeats, blog loader ([\d.]+) ms per file (\d+) workers: ([\d. ]+) images/s", re.M)
ONE_CORE = re.compile(r"^CPU ceiling, blog: (\d+) cores x ([\d.]+) images/s on one core", re.M)
LOAD = re.compile(r"^cat /proc/loadavg (before|after): ([\d.]+)", re.M)


def five_percent_pick(timed: dict[int, list[float]]) -> int:
    """The bench's pick: the fewest workers whose median is within 5 % of the best median."""
    medians = {n: statistics.median(v) for n, v in timed.items()}
    return min(n for n, m in medians.items() if m >= 0.95 * max(medians.values()))


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
    worker_s = worker_cpu_s(by_latency.get(0.0, {}).get(1, []))
    loads = dict(LOAD.findall(text))
    lines = [f"{path.name}: 1-minute load average before {loads.get('before', '?')}, after {loads.get('after', '?')}"]
    held: dict[str, list[bool]] = {"one thread's": [], "a worker's": []}
    for ms, timed in sorted(by_latency.items()):
        thread_law = workers_needed(ms / 1000, thread_s, cores)
        tied, five = fewest_tied(timed), five_percent_pick(timed)
        line = (f"  {ms:g} ms per file: Little's law {thread_law:.1f} workers with one thread's "
                f"{1000 * thread_s:.1f} ms per item")
        worker_law = None
        if worker_s is not None:
            worker_law = workers_needed(ms / 1000, worker_s, cores)
            line += f", {worker_law:.1f} with a worker's {1000 * worker_s:.1f} ms (1 worker at 0 ms)"
        ratios = lambda n: f"{n / thread_law:.2f}" + (f" and {n / worker_law:.2f}" if worker_law else "")  # noqa: E731
        line += (f"; tied with the best (the fewest with no measurable difference): {tied} workers, {ratios(tied)} x; "
                 f"the bench's 5 % pick: {five} workers, {ratios(five)} x")
        lines.append(line)
        for time_of, law in (("one thread's", thread_law), ("a worker's", worker_law)):
            if ms == 20 and law is not None and tied is not None:
                held[time_of].append(abs(tied / law - 1) <= TOLERANCE and tied > cores)
            elif ms == 0 and tied is not None:
                held[time_of].append(tied <= cores)
    for time_of, found in held.items():
        said = ("cannot be read" if len(found) != 2 else "held" if all(found) else "did not hold")
        lines.append(f"  the test with {time_of} time per item (20 ms: tied pick within {TOLERANCE:.0%} of the law "
                     f"and past the {cores} cores; 0 ms: tied pick not past them): {said}")
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

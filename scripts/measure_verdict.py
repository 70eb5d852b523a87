"""Does the verdict (helpers/verdict.py) have power? A/A trials and 1.3x trials on a real loader, into a results file.

Each trial is one sweep (helpers.timing.sweep) of two settings over the default repeats, taken in turns, exactly as
bench and profile take them; the verdict compares the second with the first:
  - A/A: one cheap loader (the blog pipeline on --images sample images at --size px, --workers workers) timed twice
    under two names: the right answer is "no measurable difference";
  - 1.3x: the same loader, and the same again with a sleep before each item of 0.3 x one item's time (calibrated at
    the start, on this loader): the right answer is "slower".
The two kinds alternate, so a change of load moves both. Beside the verdict's rates, the same trials read by the old
rule (ranges of the repeats that do not overlap) and by the verdict with round 1 kept, so the file shows what the
paired ratios and the warm-up round change.

    flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_verdict.py --trials 100 --images 48 --repeats 5 7
"""
from __future__ import annotations

import argparse
import datetime
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch.utils.data import DataLoader, Dataset  # noqa: E402

from helpers.loading.data import index_image_folder  # noqa: E402
from helpers.loading.samples import sample_dir  # noqa: E402
from helpers.loading.transforms import build_pipeline  # noqa: E402
from helpers.machine import conditions_line, load_average  # noqa: E402
from helpers.timing.sweep import sweep  # noqa: E402
from helpers.verdict import LEVEL, MARGIN, MIN_REPEATS, SAME, SLOWER, ratio_interval, verdict  # noqa: E402


class Slower(Dataset):
    """DATASET with a sleep of EXTRA_S before each item: the known slowdown."""

    def __init__(self, dataset: Dataset, extra_s: float) -> None:
        self.dataset, self.extra_s = dataset, extra_s

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        time.sleep(self.extra_s)
        return self.dataset[i]


def overlap_rule(a: list[float], b: list[float]) -> str:
    """The rule this verdict replaced: different only when the ranges of the repeats do not overlap."""
    return "faster" if min(a) > max(b) else SLOWER if max(a) < min(b) else SAME


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100, help="trials of each kind")
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--repeats", type=int, nargs="+", default=[MIN_REPEATS], help="repeats per trial (one block each)")
    p.add_argument("--out", default="results/verdict_power_cpu2.txt")
    args = p.parse_args()
    load_before, started = load_average(), time.perf_counter()
    with open("/proc/loadavg") as f:
        proc_before = f.read().strip()
    pipe = build_pipeline("blog", args.size)
    samples = index_image_folder(sample_dir()).samples[: args.images]
    plain = pipe.dataset(samples)

    def rate(dataset: Dataset) -> float:
        start = time.perf_counter()
        for _ in DataLoader(dataset, batch_size=8, num_workers=args.workers):
            pass
        return len(dataset) / (time.perf_counter() - start)

    item_s = 1 / statistics.median(rate(plain) for _ in range(7))
    slow = Slower(plain, 0.3 * item_s * max(args.workers, 1))  # workers share the sleep: each sleeps for its own items
    sets = {"A": plain, "A again": plain, "A + 30 %": slow}
    found = {(reps, kind): {"new": [], "old": [], "round 1 kept": [], "ratio": [], "sd": []}
             for reps in args.repeats for kind in ("A/A", "1.3x")}
    for _ in range(args.trials):
        for (reps, kind), got in found.items():
            rows = sweep(["A", "A again" if kind == "A/A" else "A + 30 %"], lambda name: rate(sets[name]), reps)
            a, b = rows[1].values, rows[0].values
            ratio = ratio_interval(a, b, min_repeats=reps)
            logs = [math.log(x / y) for x, y in zip(a[1:], b[1:])]
            got["new"].append(verdict(a, b, min_repeats=reps))
            got["old"].append(overlap_rule(a, b))
            got["round 1 kept"].append(verdict([a[0]] + a, [b[0]] + b, min_repeats=reps))
            got["ratio"].append(ratio[0] if ratio else float("nan"))
            got["sd"].append(statistics.stdev(logs))
    right = {"A/A": SAME, "1.3x": SLOWER}
    lines = [f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"command: flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_verdict.py "
             f"--trials {args.trials} --images {args.images} --size {args.size} --workers {args.workers} "
             f"--repeats {' '.join(map(str, args.repeats))}",
             f"cat /proc/loadavg before: {proc_before}",
             f"Loader: DataLoader over {args.images} sample images, blog pipeline at {args.size} px, batch 8, "
             f"num_workers {args.workers}; one item {1000 * item_s:.2f} ms (median of 7 passes), so the 1.3x setting "
             f"sleeps {1000 * slow.extra_s:.2f} ms before each item",
             f"Verdict (helpers/verdict.py): repeats in turns, round 1 a warm-up, the {LEVEL:.0%} "
             f"t-interval of the mean per-round log-ratio, different only past a {MARGIN:.0%} margin",
             ""]
    for (reps, kind), got in found.items():
        n = len(got["new"])
        lines.append(f"{kind}, {reps} repeats: {n} trials, the right answer \"{right[kind]}\"")
        for rule in ("new", "old", "round 1 kept"):
            share = sum(v == right[kind] for v in got[rule]) / n
            others = {v: got[rule].count(v) for v in sorted(set(got[rule])) if v != right[kind]}
            name = {"new": "verdict", "old": "old rule (ranges do not overlap)",
                    "round 1 kept": "verdict with round 1 kept"}[rule]
            lines.append(f"  {name}: \"{right[kind]}\" in {share:.1%} of trials; otherwise {others or 'none'}")
        ratios = sorted(r for r in got["ratio"] if not math.isnan(r))
        lines.append(f"  measured ratio (B against A, rounds 2 on): median {statistics.median(ratios):.3f}, "
                     f"5th to 95th percentile {ratios[len(ratios) // 20]:.3f} to {ratios[-1 - len(ratios) // 20]:.3f}")
        lines.append(f"  per-round log-ratio standard deviation: median {statistics.median(got['sd']):.3f}, "
                     f"90th percentile {sorted(got['sd'])[9 * n // 10]:.3f}")
    rates = {k: sum(v == right[k[1]] for v in g["new"]) / len(g["new"]) for k, g in found.items()}
    lines.append("")
    for reps in args.repeats:
        aa, slow = rates[(reps, "A/A")], rates[(reps, "1.3x")]
        lines.append(f"Targets at {reps} repeats (A/A \"{SAME}\" >= 95 %, 1.3x \"{SLOWER}\" >= 90 %): "
                     f"{'met' if aa >= 0.95 and slow >= 0.90 else 'NOT met'} ({aa:.1%}, {slow:.1%})")
    lines += [f"Took {time.perf_counter() - started:.0f} s. {conditions_line(load_before)}"]
    with open("/proc/loadavg") as f:
        lines.append(f"cat /proc/loadavg after: {f.read().strip()}")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

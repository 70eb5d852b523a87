"""What multiprocessing.set_forkserver_preload saves a forkserver DataLoader worker, on this machine.

Each repeat starts a fresh Python per variant (the forkserver is started once per process, and the preload list
counts only if it is set before), taken in turns, and in it: the course's fast pipeline over the sample set
(128 px, batch 16, 2 workers, multiprocessing_context="forkserver"), iter() to the first batch timed, then, after
4 batches, each worker's USS and PSS and the forkserver process's, read by psutil. Variants:

- default: nothing set (the list is ['__main__'], which a `python -c` main never adds to);
- torch: set_forkserver_preload(["torch"]);
- all: set_forkserver_preload(["torch", "torchvision", "helpers.loading.data"]), every module unpickling the
  dataset imports.

    PYTHONPATH=$PWD .venv/bin/python scripts/measure_forkserver_preload.py --run 1
    PYTHONPATH=$PWD .venv/bin/python scripts/measure_forkserver_preload.py --verdict results/forkserver_preload_cpu2_run{1,2,3}.csv

A run writes results/forkserver_preload_<tag>_run<N>.{txt,csv} with the date, the command, the machine and the load
average before and after; --verdict prints the verdicts over the runs' repeats (helpers/verdict.py).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.processes import run_group  # noqa: E402

VARIANTS = {"default": None, "torch": ["torch"], "all": ["torch", "torchvision", "helpers.loading.data"]}
MEASURES = (("worker_uss_mb", "worker USS MB"), ("worker_pss_mb", "worker PSS MB"),
            ("server_pss_mb", "forkserver PSS MB"), ("added_pss_mb", "forkserver + workers PSS MB"),
            ("startup_s", "iter to first batch s"))


def child(variant: str, data: str, workers: int) -> None:
    """Runs in a fresh Python: set the variant's preload list, start a forkserver loader, print one JSON line."""
    import multiprocessing

    import psutil
    import torch
    from torch.utils.data import DataLoader

    from helpers.loading.data import index_image_folder
    from helpers.loading.transforms import build_pipeline
    from helpers.timing.memory import process_memory, worker_pids

    if VARIANTS[variant] is not None:
        multiprocessing.set_forkserver_preload(VARIANTS[variant])
    pipe = build_pipeline("fast", 128, train=False)
    dataset = pipe.dataset(index_image_folder(data).samples)
    loader = DataLoader(dataset, batch_size=16, shuffle=True, num_workers=workers, collate_fn=pipe.collate,
                        multiprocessing_context="forkserver", generator=torch.Generator().manual_seed(0), timeout=120)
    start = time.perf_counter()
    it = iter(loader)
    next(it)
    startup = time.perf_counter() - start
    for _ in range(3):
        next(it)
    pids = worker_pids(it)
    mem = [process_memory(pid, "worker") for pid in pids]
    server = process_memory(psutil.Process(pids[0]).ppid(), "forkserver")
    print(json.dumps(dict(
        variant=variant, workers=len(pids), startup_s=startup,
        worker_uss_mb=sum(m.uss_mb for m in mem) / len(mem), worker_pss_mb=sum(m.pss_mb for m in mem) / len(mem),
        server_pss_mb=server.pss_mb, server_uss_mb=server.uss_mb,
        added_pss_mb=server.pss_mb + sum(m.pss_mb for m in mem))), flush=True)
    del it


def run_child(variant: str, data: str, workers: int) -> dict:
    """One variant in a fresh Python whose main module has no file (so nothing of it is preloaded)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import measure_forkserver_preload as m; "
            f"m.child({variant!r}, {data!r}, {workers})")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:  # its own process group, ended whole however it ends: the forkserver and its workers go with it
        done = run_group([sys.executable, "-c", code], timeout=300, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        print(f"error: the {variant} child took more than 300 s; is the machine busy? (load {os.getloadavg()[0]:.2f})",
              file=sys.stderr)
        raise SystemExit(2)
    if done.returncode != 0:
        print(f"error: the {variant} child failed (exit {done.returncode}): {' '.join(done.stderr.split())[-400:]}",
              file=sys.stderr)
        raise SystemExit(2)
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict_lines(rows: list[dict], label: str = "") -> list[str]:
    """Each variant against default, for every measure (lower is better): the verdict from the repeats."""
    from helpers.verdict import FASTER, SLOWER, verdict

    words = {FASTER: "smaller", SLOWER: "larger"}
    lines = []
    for variant in VARIANTS:
        if variant == "default":
            continue
        for key, name in MEASURES:
            a = [r[key] for r in rows if r["variant"] == variant]
            b = [r[key] for r in rows if r["variant"] == "default"]
            v = verdict(a, b, higher_is_better=False)
            if key == "startup_s":
                v = v if v not in words else ("shorter" if v == FASTER else "longer")
            else:
                v = words.get(v, v)
            lines.append(f"{label}{name}, preload {variant} against default: {v}")
    return lines


def combine(paths: list[Path]) -> int:
    """Verdicts over several runs: a verdict holds only where every run gives it (helpers.verdict.replicated)."""
    from helpers.verdict import replicated

    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"error: no such results file: {', '.join(missing)}; run with --run N first", file=sys.stderr)
        return 2
    per_run = []
    for path in paths:
        with path.open() as f:
            rows = [{k: (v if k == "variant" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]
        per_run.append(verdict_lines(rows))
        print("\n".join(f"  {path.name}: {line}" for line in per_run[-1]))
    for i, line in enumerate(per_run[0]):
        claim = line.rsplit(": ", 1)[0]
        print(f"Verdict over {len(paths)} runs, {claim}: {replicated(run[i].rsplit(': ', 1)[1] for run in per_run)}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=int, help="the run's number, in the results files' names")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default="data/sample")
    p.add_argument("--tag", default="cpu2")
    p.add_argument("--out", default="results")
    p.add_argument("--verdict", nargs="+", type=Path, metavar="CSV", help="print the verdicts over these runs")
    args = p.parse_args()
    if args.verdict:
        return combine(args.verdict)
    if args.run is None:
        print("error: give --run N (or --verdict CSV ...)", file=sys.stderr)
        return 2
    if not Path(args.data).is_dir():
        print(f"error: no image folder at {args.data}; make one with `python -m helpers sample-data {args.data}`",
              file=sys.stderr)
        return 2
    import torch

    from helpers.machine import conditions_line, load_average

    waited = 0
    while os.getloadavg()[0] > 1.5 and waited < 120:  # a shared machine: start when it is quiet, or say it was not
        time.sleep(10)
        waited += 10
    load_before = load_average()
    lines = [f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"cat /proc/loadavg before: {Path('/proc/loadavg').read_text().strip()}",
             "command: PYTHONPATH=$PWD .venv/bin/python scripts/measure_forkserver_preload.py " + " ".join(sys.argv[1:]),
             f"Python {sys.version.split()[0]}, torch {torch.__version__}; {args.workers} workers, forkserver; "
             f"{args.repeats} repeats, the variants in turns, each in a fresh Python"]
    rows = []
    for repeat in range(args.repeats):
        for variant in VARIANTS:
            rows.append({"repeat": repeat + 1, **run_child(variant, args.data, args.workers)})
            print(f"repeat {repeat + 1} {variant}: {rows[-1]}", flush=True)
    for key, name in MEASURES:
        for variant in VARIANTS:
            values = " ".join(f"{r[key]:.2f}" if key == "startup_s" else f"{r[key]:.1f}" for r in rows
                              if r["variant"] == variant)
            lines.append(f"Repeats, {name}, preload {variant}: {values}")
    lines += verdict_lines(rows, "Verdict in this run, ")
    lines.append(conditions_line(load_before))
    lines.append(f"cat /proc/loadavg after: {Path('/proc/loadavg').read_text().strip()}")
    name = Path(args.out) / f"forkserver_preload_{args.tag}_run{args.run}"
    columns = ["repeat", "variant", "workers", "startup_s", "worker_uss_mb", "worker_pss_mb", "server_uss_mb",
               "server_pss_mb", "added_pss_mb"]
    with open(f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows({k: r[k] for k in columns} for r in rows)
    Path(f"{name}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

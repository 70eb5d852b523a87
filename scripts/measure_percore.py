"""Images per second per core: the blog, standard and fast pipelines at 224 px, one worker on one core (issue 38).

One DataLoader worker, pinned to one core (Linux's sched_setaffinity, set in the worker on its first image), the main
process pinned to another, so the worker's core does all of a batch's work (read, decode, transform, collate, the
write into shared memory) and nothing else: its images/s is the pipeline's rate per core. Each pipeline is timed
REPEATS times in turns (helpers.timing.sweep) with the course's loader window (helpers.timing.measure), on one image
shape (helpers.loading.samples: sample, imagenet or phone, generated on first use under data/). `fast, full decode`
is the fast pipeline with its DCT-scaled decode turned off, so `fast` against it is the draft decode's gain.

    flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_percore.py --shape phone --run 1

Writes results/percore_<tag>_<shape>_run<N>.txt. Replicate with runs 2 and 3, then:
    python scripts/replicate_verdicts.py results/percore_cpu2_phone_run{1,2,3}.txt --compare fast "fast, full decode"
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from helpers import options  # noqa: E402
from helpers.app.cli import Parser  # noqa: E402
from helpers.loading.data import index_image_folder, load_uint8  # noqa: E402
from helpers.loading.samples import data_dir, ensure_sample_data  # noqa: E402
from helpers.loading.transforms import Pipeline, build_pipeline  # noqa: E402
from helpers.machine import conditions_line, load_average  # noqa: E402
from helpers.timing.measure import measure_loader, stream_window  # noqa: E402
from helpers.timing.sweep import sweep  # noqa: E402
from helpers.timing.tables import format_table  # noqa: E402
from helpers.verdict import ratio_interval, verdict  # noqa: E402

# Images per class generated for each shape, and timed batches of BATCH per repeat (a window of about 1 to 5 s).
SHAPES = {"sample": (100, 128), "imagenet": (200, 128), "phone": (100, 16)}
BATCH = 4  # the blog's batch, for every pipeline: per core, the batch size moves little (the ladder's last rung)
COMPARE = (("fast", "fast, full decode"), ("fast", "blog"), ("standard", "blog"), ("fast, full decode", "blog"))
COLUMNS = (("pipeline", "pipeline", "s"), ("images_per_s", "images/s per core", ".1f"), ("min", "min", ".1f"),
           ("max", "max", ".1f"), ("ms", "ms per image", ".2f"), ("vs_blog", "vs blog", ".2f"))


class OnOneCore(Dataset):
    """DATASET whose process pins itself to CORE on its first item: in a worker, the worker alone runs there."""

    def __init__(self, dataset: Dataset, core: int) -> None:
        self.dataset, self.core, self.pinned_in = dataset, core, None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if self.pinned_in != os.getpid():
            os.sched_setaffinity(0, {self.core})
            assert os.sched_getaffinity(0) == {self.core}, "the worker did not stay on its core"
            self.pinned_in = os.getpid()
        return self.dataset[index]


def pipelines(size: int) -> dict[str, Pipeline]:
    """The three pipelines of the course, and fast once more with every JPEG decoded in full."""
    fast = build_pipeline("fast", size)
    full = replace(fast, name="fast, full decode",
                   steps=(("read + decode in full (libjpeg-turbo, uint8)", load_uint8), *fast.steps[1:]))
    return {"blog": build_pipeline("blog", size), "standard": build_pipeline("standard", size, train=True),
            "fast, full decode": full, "fast": fast}


def shape_line(root: Path) -> str:
    """What the images are: how many, their mean size in pixels and in bytes (headers only)."""
    paths = index_image_folder(root).samples.paths
    sizes = [Image.open(p).size for p in paths]
    return (f"{len(paths)} JPEGs in {root}, mean {statistics.mean(w for w, _ in sizes):.0f} x "
            f"{statistics.mean(h for _, h in sizes):.0f} px, mean {statistics.mean(map(os.path.getsize, paths)) / 1e3:.0f} KB")


def main(argv: list[str] | None = None) -> int:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=tuple(SHAPES), required=True)
    p.add_argument("--run", type=options.positive_int, required=True, help="the run's number, in the file's name")
    p.add_argument("--image-size", type=options.positive_int, default=224)
    p.add_argument("--repeats", type=options.positive_int, default=5)
    p.add_argument("--out", default="results")
    p.add_argument("--tag", default="cpu2")
    args = p.parse_args(argv)
    setaffinity = getattr(os, "sched_setaffinity", None)
    cores = sorted(os.sched_getaffinity(0)) if setaffinity else []
    if len(cores) < 2:
        print("error: pinning needs Linux's os.sched_setaffinity and two usable cores (one for the worker, one for "
              "the main process); run it on Linux with at least 2 cores.", file=sys.stderr)
        return 2
    per_class, batches = SHAPES[args.shape]
    root = ensure_sample_data(data_dir() / args.shape, per_class=per_class, shape=args.shape)
    index = index_image_folder(root)
    out = Path(args.out) / f"percore_{args.tag}_{args.shape}_run{args.run}.txt"
    command = ("flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_percore.py "
               + " ".join(argv if argv is not None else sys.argv[1:]))
    loadavg_before, load_before = Path("/proc/loadavg").read_text().strip(), load_average()
    started = datetime.datetime.now(datetime.timezone.utc)

    main_core, worker_core = cores[0], cores[-1]
    setaffinity(0, {main_core})
    chosen = pipelines(args.image_size)
    warmup, timed = stream_window(1, batches, None)

    def once(name: str) -> float:
        dataset = OnOneCore(chosen[name].dataset(index.samples), worker_core)
        run, = measure_loader(dataset, 1, batch_size=BATCH, batches=timed, seed=args.run)
        print(f"  {name}: {run.images_per_s:.1f} images/s", flush=True)
        return run.images_per_s

    rows = {row.setting: row for row in sweep(list(chosen), once, args.repeats)}
    setaffinity(0, set(cores))  # back on every core, so the machine line below counts them
    blog = rows["blog"].median
    table = [dict(pipeline=name, images_per_s=r.median, min=r.min, max=r.max, ms=1000 / r.median,
                  vs_blog=r.median / blog) for name, r in rows.items()]
    lines = [f"date: {started:%Y-%m-%d %H:%M} UTC", f"command: {command}", f"cat /proc/loadavg before: {loadavg_before}",
             f"Shape {args.shape}: {shape_line(root)}",
             f"One DataLoader worker pinned to core {worker_core}, the main process to core {main_core}; "
             f"{args.image_size} px, batch {BATCH}, loader only; {args.repeats} repeats in turns, each {warmup} "
             f"warm-up and {timed} timed batches ({timed * BATCH} images), worker start-up excluded", "",
             format_table(table, COLUMNS), ""]
    lines += [f"Repeats, {name}: {' '.join(f'{v:.1f}' for v in r.values)} images/s" for name, r in rows.items()]
    for a, b in COMPARE:
        paired = ratio_interval(rows[a].values, rows[b].values)
        interval = f"x{paired[0]:.2f}, 95 % interval {paired[1]:.2f} to {paired[2]:.2f}" if paired else "too few"
        lines.append(f"{a} against {b}: x{rows[a].median / rows[b].median:.2f} (medians); per-round ratio "
                     f"{interval} (helpers.verdict); verdict: {verdict(rows[a].values, rows[b].values)}")
    lines += [conditions_line(load_before), f"cat /proc/loadavg after: {Path('/proc/loadavg').read_text().strip()}"]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

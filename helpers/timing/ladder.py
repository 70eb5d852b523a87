"""Like for like: the blog's pipeline turned into the fast one one change at a time, each rung timed the same way.

Comparing `blog` at batch 4 with `fast` at batch 32 credits the pipeline with what the batch size did. The ladder
changes one thing per rung (dtype, resize, decode, draft decode, then batch size) and times every rung with the same
loader, workers, warm-up and window, so each part of the gain is read off its own row.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from torchvision import transforms as T
from torchvision.transforms import v2

from ..loading.data import ImageDataset, ImageFolderIndex, index_image_folder, load_rgb, load_uint8
from ..machine import machine_summary, usable_cores
from .measure import measure_loader, stream_window
from ..progress import progress_bar
from ..loading.transforms import Step, pipeline_steps
from .sweep import sweep


@dataclass(frozen=True)
class Rung:
    """One pipeline on the way from the blog's to the fast one: what it changes and the steps it runs."""

    change: str
    part: str                 # which part of the gain this rung measures
    steps: tuple[Step, ...]   # the first step reads the file
    batch_size: int

    def dataset(self, index: ImageFolderIndex) -> ImageDataset:
        return ImageDataset(index.samples, T.Compose([fn for _, fn in self.steps[1:]]), self.steps[0][1])


def rungs(image_size: int = 224, small_batch: int = 4, large_batch: int = 32) -> list[Rung]:
    """The blog's pipeline, then uint8 output, a uint8 tensor resize, libjpeg-turbo, decoding large JPEGs at a reduced
    DCT scale (= fast), then a larger batch."""
    s = image_size
    read_pil = ("read + decode (PIL)", load_rgb)
    pil_resize = (f"Resize(({s}, {s})) on the PIL image", T.Resize((s, s)))
    to_uint8 = ("PILToTensor: uint8 CHW", T.PILToTensor())
    tensor_resize = (f"Resize(({s}, {s})) on uint8", v2.Resize((s, s), antialias=True))
    fast = tuple(pipeline_steps("fast", s))
    full_decode = ("read + decode in full (libjpeg-turbo, uint8)", load_uint8)
    return [
        Rung("the blog's pipeline (float32, normalized in the worker)", "blog", tuple(pipeline_steps("blog", s)),
             small_batch),
        Rung("uint8 batches: ToTensor and Normalize moved to the model's device", "dtype",
             (read_pil, pil_resize, to_uint8), small_batch),
        Rung("resize the uint8 tensor instead of the PIL image", "resize", (read_pil, to_uint8, tensor_resize),
             small_batch),
        Rung("decode with libjpeg-turbo (torchvision.io) instead of PIL", "decode", (full_decode, tensor_resize),
             small_batch),
        Rung(f"decode a JPEG at least {4 * s} px a side at 1/4 or 1/8 scale, still >= {s} px: the fast pipeline",
             "draft", fast, small_batch),
        Rung(f"batch {large_batch} instead of {small_batch}", "batch size", fast, large_batch),
    ]


def ladder(data: str | Path | ImageFolderIndex, num_workers: int | None = None, *, image_size: int = 224,
           small_batch: int = 4, large_batch: int = 32, batches: int = 64, repeats: int = 3, seed: int = 0,
           start_method: str | None = None, progress: bool = True) -> list[dict]:
    """Time every rung, loader only, at NUM_WORKERS (default: the usable cores); one row per rung with its gains.

    BATCHES counts batches of the largest size; every rung is timed over the same number of images.
    """
    index = data if isinstance(data, ImageFolderIndex) else index_image_folder(data)
    workers = usable_cores() if num_workers is None else num_workers
    steps = rungs(image_size, small_batch, large_batch)
    bar = progress_bar(len(steps) * repeats, "ladder", progress, unit="run")
    # Every rung's window holds the same number of images: the loader-only window for the largest batch, so a
    # small-batch rung is not timed over a shorter, noisier stretch.
    images = stream_window(workers, batches, None)[1] * max(rung.batch_size for rung in steps)
    timed = [max(1, images // rung.batch_size) for rung in steps]

    def once(number: int) -> float:
        rung = steps[number]
        run, = measure_loader(rung.dataset(index), workers, batch_size=rung.batch_size, batches=timed[number],
                              seed=seed, start_method=start_method)
        return run.images_per_s

    rows: list[dict] = []
    for row in sweep(range(len(steps)), once, repeats, on_repeat=lambda *_: bar.update(1)):
        rung, median = steps[row.setting], row.median
        rows.append(dict(rung=row.setting, part=rung.part, change=rung.change, batch_size=rung.batch_size,
                         num_workers=workers, image_size=image_size, images_per_s=median,
                         images_per_s_min=row.min, images_per_s_max=row.max,
                         gain=median / rows[-1]["images_per_s"] if rows else 1.0,
                         total_gain=median / rows[0]["images_per_s"] if rows else 1.0, repeats=row.values,
                         verdict=row.verdict))
    bar.close()
    return rows


LADDER_COLUMNS = (
    ("part", "part", "s"),
    ("batch_size", "batch", "d"),
    ("images_per_s", "images/s", ".1f"),
    ("images_per_s_min", "min", ".1f"),
    ("images_per_s_max", "max", ".1f"),
    ("gain", "this step", ".2f"),
    ("total_gain", "vs blog", ".2f"),
)


def verdicts(rows: Sequence[dict]) -> list[str]:
    """Each rung's repeats and the sweep's verdict against the rung before (helpers.timing.sweep): what a ratio may be
    read as."""
    return [f"Repeats, {r['part']}: {' '.join(f'{x:.1f}' for x in r['repeats'])} images/s"
            + (f"; against {rows[i - 1]['part']}: {r['verdict']}" if i and r.get("verdict") else "")
            for i, r in enumerate(rows) if "repeats" in r]


def summary(rows: Sequence[dict]) -> str:
    """The gain split into its parts, in words: each rung's factor, and their product, which is the whole gain."""
    parts = ", ".join(f"{r['part']} x{r['gain']:.2f}" for r in rows[1:])
    last = rows[-1]
    return (f"{rows[0]['num_workers']} workers, {rows[0]['image_size']} px: blog {rows[0]['images_per_s']:.0f} images/s "
            f"-> fast at batch {last['batch_size']} {last['images_per_s']:.0f} images/s = x{last['total_gain']:.2f} "
            f"in all; by part: {parts}")


def machine_line(rows: Sequence[dict]) -> str:
    """The line every committed ladder carries: where it ran, at which settings."""
    return f"Ladder on {machine_summary()}, {rows[0]['num_workers']} workers, {rows[0]['image_size']} px"

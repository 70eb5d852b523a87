"""Decoding at the scale you need: what each DCT scale costs, what it changes in the picture and in the head (issue 38).

Three measurements at one model input size (224 px by default), written to results/draft_<tag>_<size>px.txt:

1. cost: ms per image on one thread (as in a worker) to decode and resize to SIZE, for torchvision's full decode and
   for Pillow decoding at 1/1, 1/2, 1/4 and 1/8 of the size (Image.draft), on the first files of each shape; the
   fastest of REPEATS passes. Says at which scale Pillow's draft starts to pay against torchvision's full decode.
2. quality: PSNR of the fast pipeline's 224 px image (decoded at a reduced scale where load_uint8 chooses to) against
   the same pipeline decoding in full, over every file of each shape it reduces;
3. the head: the frozen ResNet18's head trained on cached features (helpers.training.features.fit_cached) of the
   phone-shaped set through the fast pipeline, once decoding in full and once at the reduced scale, for SEEDS seeds
   (each seed: the same random backbone, split and head start for both), and the validation accuracy of each.

    flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_draft.py
"""
from __future__ import annotations

import argparse
import datetime
import io
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.transforms import v2  # noqa: E402
from torchvision.transforms.functional import pil_to_tensor  # noqa: E402

from helpers import options  # noqa: E402
from helpers.app.cli import Parser  # noqa: E402
from helpers.loading import loaders as loaders_module  # noqa: E402
from helpers.loading.data import index_image_folder, load_uint8  # noqa: E402
from helpers.loading.samples import data_dir, ensure_sample_data  # noqa: E402
from helpers.loading.transforms import Pipeline, build_pipeline  # noqa: E402
from helpers.machine import conditions_line, load_average, one_thread  # noqa: E402
from helpers.timing.tables import format_table  # noqa: E402
from helpers.training.config import TrainConfig  # noqa: E402
from helpers.training.features import fit_cached  # noqa: E402
from helpers.training.fit import loaders_for  # noqa: E402

SHAPES = {"imagenet": 200, "phone": 100}  # images per class, as scripts/measure_percore.py makes them


def pillow_at(data: bytes, scale: int, resize) -> torch.Tensor:
    """Decode JPEG DATA with Pillow at 1/SCALE of its size (draft), then resize: the cost of one DCT scale."""
    with Image.open(io.BytesIO(data)) as img:
        if scale > 1:
            img.draft("RGB", (img.width // scale, img.height // scale))
        img.load()
        return resize(pil_to_tensor(img.convert("RGB")))


def full_decode(build=build_pipeline):
    """A pipeline builder like helpers.loading.transforms.build_pipeline whose fast pipeline decodes in full."""
    def build_full(name: str, image_size: int = 224, train: bool = False) -> Pipeline:
        pipe = build(name, image_size, train)
        return replace(pipe, steps=(("read + decode in full", load_uint8), *pipe.steps[1:])) if name == "fast" else pipe
    return build_full


def costs(paths: list[str], size: int, repeats: int) -> dict[str, float]:
    """ms per image for each way of decoding and resizing PATHS to SIZE, the fastest of REPEATS passes, one thread."""
    resize = v2.Resize((size, size), antialias=True)
    blobs = [Path(p).read_bytes() for p in paths]
    ways = {"torchvision, full": lambda d: resize(load_uint8_bytes(d))}
    ways.update({f"Pillow 1/{k}": (lambda d, k=k: pillow_at(d, k, resize)) for k in (1, 2, 4, 8)})
    found = {}
    with one_thread():
        for name, way in ways.items():
            best = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                for d in blobs:
                    way(d)
                best = min(best, (time.perf_counter() - start) / len(blobs))
            found[name] = 1000 * best
    return found


def load_uint8_bytes(data: bytes) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB,
                        apply_exif_orientation=True)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (inf when equal)."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def main(argv: list[str] | None = None) -> int:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=options.positive_int, default=224)
    p.add_argument("--cost-files", type=options.positive_int, default=16, help="files per shape timed in part 1")
    p.add_argument("--repeats", type=options.positive_int, default=3)
    p.add_argument("--seeds", type=options.positive_int, default=3)
    p.add_argument("--per-class", type=options.positive_int, default=None,
                   help="images per class of each shape (default: as scripts/measure_percore.py makes them)")
    p.add_argument("--out", default="results")
    p.add_argument("--tag", default="cpu2")
    args = p.parse_args(argv)
    size = args.image_size
    out = Path(args.out) / f"draft_{args.tag}_{size}px.txt"
    command = ("flock /tmp/heavy.lock env PYTHONPATH=$PWD .venv/bin/python scripts/measure_draft.py "
               + " ".join(argv if argv is not None else sys.argv[1:]))
    loadavg_before, load_before = Path("/proc/loadavg").read_text().strip(), load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    roots = {shape: ensure_sample_data(data_dir() / shape, per_class=args.per_class or n, shape=shape)
             for shape, n in SHAPES.items()}
    lines = [f"date: {started:%Y-%m-%d %H:%M} UTC", f"command: {command}", f"cat /proc/loadavg before: {loadavg_before}",
             "", f"1. Decode and resize to {size} px, ms per image on one thread (fastest of {args.repeats} passes "
                 f"over the first {args.cost_files} files of each shape):"]
    rows = []
    for shape, root in roots.items():
        paths = list(index_image_folder(root).samples.paths[:args.cost_files])
        found = costs(paths, size, args.repeats)
        rows.append(dict(shape=shape, **{k: v for k, v in found.items()}))
        print(rows[-1], flush=True)
    columns = (("shape", "shape", "s"), *((k, k, ".2f") for k in rows[0] if k != "shape"))
    lines += [format_table(rows, columns), ""]

    lines.append(f"2. The fast pipeline at {size} px, decoding at a reduced scale where it chooses to, against "
                 f"decoding in full (uint8, PSNR in dB):")
    fast, full = build_pipeline("fast", size), full_decode()("fast", size)
    for shape, root in roots.items():
        paths = index_image_folder(root).samples.paths
        reduced = [p for p in paths if min(Image.open(p).size) >= 4 * size]
        values = [psnr(fast.transform(fast.loader(p)), full.transform(full.loader(p))) for p in reduced]
        lines.append(f"  {shape}: {len(reduced)} of {len(paths)} files decoded at a reduced scale"
                     + (f"; PSNR mean {statistics.mean(values):.1f}, min {min(values):.1f}, max {max(values):.1f}"
                        if values else ""))
        print(lines[-1], flush=True)

    lines += ["", f"3. The head on cached features of the phone-shaped set (fast pipeline, {size} px, random backbone, "
                  f"3 epochs, 20% held out), validation accuracy of the last epoch:"]
    original = loaders_module.build_pipeline
    accuracy: dict[str, list[float]] = {"full decode": [], "reduced scale": []}
    for seed in range(args.seeds):
        for name in accuracy:
            loaders_module.build_pipeline = full_decode(original) if name == "full decode" else original
            config = TrainConfig(data=str(roots["phone"]), epochs=3, num_workers=2, image_size=size, pipeline="fast",
                                 device="cpu", checkpoint=None, pretrained=False, seed=seed, progress=False)
            run = fit_cached(config, loaders_for(config), None, log=lambda _: None)
            accuracy[name].append(run.history["val_acc"][-1])  # in percent
        lines.append(f"  seed {seed}: full decode {accuracy['full decode'][-1]:.1f} %, reduced scale "
                     f"{accuracy['reduced scale'][-1]:.1f} %")
        print(lines[-1], flush=True)
    loaders_module.build_pipeline = original
    held_out = len(index_image_folder(roots["phone"]).samples) // 5
    lines.append(f"  largest difference at one seed: {max(abs(a - b) for a, b in zip(*accuracy.values())):.1f} "
                 f"points (one of about {held_out} held-out images is {100 / held_out:.1f} points)")
    lines += ["", conditions_line(load_before), f"cat /proc/loadavg after: {Path('/proc/loadavg').read_text().strip()}"]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

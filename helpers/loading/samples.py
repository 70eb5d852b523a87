"""The generated sample set: deterministic drawn cats and dogs, so every lesson runs without a download."""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .data import ImageFolderIndex, index_image_folder
from ..errors import DataError
from ..files import atomic_write
from ..progress import progress_bar

SAMPLE_CLASSES = ("cat", "dog")
DATA_DIR_ENV = "HELPERS_DATA_DIR"


def data_dir() -> Path:
    """Where generated data goes: $HELPERS_DATA_DIR, else data/ in the source checkout, else data/ here (installed)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    checkout = Path(__file__).resolve().parents[2]
    return (checkout if (checkout / "pyproject.toml").exists() else Path.cwd()) / "data"


def sample_dir() -> Path:
    """The sample set's folder, data_dir()/sample."""
    return data_dir() / "sample"


def data_or_sample(data: str | Path | None) -> Path:
    """DATA when given, else the sample set, generated on first use: what every command trains on by default."""
    return Path(data) if data else ensure_sample_data()


def draw_animal(rng: np.random.Generator, kind: str, width: int, height: int) -> Image.Image:
    """A textured scene with a cat-like (warm, pointed ears, slit eyes) or dog-like (cool, floppy ears, snout) face."""
    warm = kind == "cat"
    # Background: a smooth gradient plus fine noise, so JPEG sizes resemble photos (tens of KB).
    base = np.array([rng.uniform(150, 230), rng.uniform(120, 190), rng.uniform(60, 130)]) if warm else \
        np.array([rng.uniform(60, 130), rng.uniform(110, 170), rng.uniform(150, 230)])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)[..., None] * rng.uniform(30, 70)
    noise = rng.normal(0, rng.uniform(10, 22), size=(height, width, 3))
    pixels = np.clip(base + ramp + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(img)

    # Clutter that both classes share, so colour alone is not the whole story.
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(10, 50)
        shade = tuple(int(v) for v in rng.integers(40, 220, size=3))
        draw.rectangle([x0, y0, x0 + r * 1.5, y0 + r], fill=shade)

    cx, cy = rng.uniform(0.35, 0.65) * width, rng.uniform(0.4, 0.65) * height
    r = rng.uniform(0.18, 0.28) * min(width, height)
    fur = (tuple(int(v) for v in rng.integers(170, 250, size=1).repeat(3) * np.array([1.0, 0.62, 0.3]))
           if warm else tuple(int(v) for v in rng.integers(90, 160, size=1).repeat(3) * np.array([0.75, 0.6, 0.5])))
    dark = (40, 30, 20)
    if warm:  # pointed ears above the head
        for side in (-1, 1):
            ex = cx + side * r * 0.6
            draw.polygon([(ex - r * 0.35, cy - r * 0.6), (ex + r * 0.35, cy - r * 0.6), (ex + side * r * 0.1, cy - r * 1.45)],
                         fill=fur)
    else:  # floppy ears hanging at the sides
        for side in (-1, 1):
            ex = cx + side * r * 0.95
            draw.ellipse([ex - r * 0.3, cy - r * 0.5, ex + r * 0.3, cy + r * 0.7], fill=tuple(int(v * 0.6) for v in fur))
    draw.ellipse([cx - r, cy - r * 0.9, cx + r, cy + r * 0.9], fill=fur)
    for side in (-1, 1):
        ex, ey = cx + side * r * 0.4, cy - r * 0.15
        if warm:
            draw.ellipse([ex - r * 0.16, ey - r * 0.12, ex + r * 0.16, ey + r * 0.12], fill=(120, 200, 60))
            draw.ellipse([ex - r * 0.04, ey - r * 0.12, ex + r * 0.04, ey + r * 0.12], fill=dark)
        else:
            draw.ellipse([ex - r * 0.1, ey - r * 0.1, ex + r * 0.1, ey + r * 0.1], fill=dark)
    if warm:  # whiskers
        for side in (-1, 1):
            for k in (-1, 0, 1):
                draw.line([(cx + side * r * 0.2, cy + r * 0.3), (cx + side * r * 1.1, cy + r * (0.2 + 0.15 * k))],
                          fill=(250, 250, 250), width=2)
    else:  # a long snout with a big nose
        draw.ellipse([cx - r * 0.4, cy + r * 0.1, cx + r * 0.4, cy + r * 0.75], fill=tuple(min(255, int(v * 1.2)) for v in fur))
        draw.ellipse([cx - r * 0.15, cy + r * 0.15, cx + r * 0.15, cy + r * 0.38], fill=dark)
    return img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.4, 1.2))))


# The shapes sample-data draws (data/README.md says where each one's sizes come from).
SHAPES = {
    "sample": "300-500 px a side, JPEG quality 80-92: the course's own set",
    "imagenet": "ImageNet-like: long side 500 px (3 in 4) or 250-1000 px, mostly 4:3, landscape 3 in 4, quality 85-95",
    "phone": "a 12-megapixel phone photo: 4000 x 3000 px either way up, sensor-like noise, quality 88-95, ~2.5 MB",
}


def photo_size(rng: np.random.Generator, shape: str) -> tuple[int, int]:
    """Width and height of one image of SHAPE (imagenet or phone), drawn from RNG."""
    if shape == "phone":
        return (4000, 3000) if rng.random() < 0.5 else (3000, 4000)
    long = 500 if rng.random() < 0.75 else int(rng.integers(250, 1001))
    short = round(long * rng.choice([0.75, 0.667, 1.0, 0.5625], p=[0.6, 0.2, 0.1, 0.1]))
    return (long, short) if rng.random() < 0.75 else (short, long)


def sample_image_bytes(kind: str, index: int, seed: int = 0, shape: str = "sample") -> bytes:
    """One deterministic JPEG: the same (kind, index, seed, shape) always gives the same bytes."""
    if shape not in SHAPES:
        raise DataError(f"Unknown sample shape {shape!r}; choose one of {', '.join(SHAPES)}.")
    buffer = io.BytesIO()
    if shape == "sample":
        rng = np.random.default_rng([seed, SAMPLE_CLASSES.index(kind), index])
        width, height = int(rng.integers(300, 501)), int(rng.integers(280, 481))
        draw_animal(rng, kind, width, height).save(buffer, format="JPEG", quality=int(rng.integers(80, 93)))
        return buffer.getvalue()
    rng = np.random.default_rng([seed, SAMPLE_CLASSES.index(kind), index, list(SHAPES).index(shape)])
    width, height = photo_size(rng, shape)
    if shape == "phone":  # drawn at a quarter of the size, enlarged, then per-pixel noise so it compresses like a photo
        enlarged = np.asarray(draw_animal(rng, kind, width // 4, height // 4).resize((width, height)), np.int16)
        noisy = enlarged + rng.integers(-6, 7, size=enlarged.shape, dtype=np.int16)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    else:
        image = draw_animal(rng, kind, width, height)
    image.save(buffer, format="JPEG", quality=int(rng.integers(85 if shape == "imagenet" else 88, 96)))
    return buffer.getvalue()


def make_sample_data(root: str | Path, per_class: int = 100, seed: int = 0, progress: bool = True,
                     shape: str = "sample") -> ImageFolderIndex:
    """Write a cats-vs-dogs-shaped ImageFolder of SHAPE's sizes so every lesson runs without a download."""
    root = Path(root)
    jobs = [(kind, i) for kind in SAMPLE_CLASSES for i in range(per_class)]
    bar = progress_bar(len(jobs), f"sample data -> {root}", progress, unit="img", leave=True)
    for kind, i in jobs:
        bar.update()
        path = root / kind / f"{kind}.{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = sample_image_bytes(kind, i, seed, shape)
        if not path.exists() or path.read_bytes() != data:
            atomic_write(path, lambda f: f.write(data))
    bar.close()
    return index_image_folder(root)


def ensure_sample_data(root: str | Path | None = None, per_class: int = 100, seed: int = 0,
                       shape: str = "sample") -> Path:
    """Return ROOT (default: data_dir()/SHAPE), generating SHAPE's set there first if it holds too few images."""
    root = Path(root) if root is not None else data_dir() / shape
    try:
        index = index_image_folder(root)
        if len(index.samples) >= 2 * per_class:
            return root
    except DataError:
        pass
    make_sample_data(root, per_class=per_class, seed=seed, shape=shape)
    return root

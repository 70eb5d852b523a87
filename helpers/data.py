"""Where images come from: the generated sample set, the ImageFolder layout, and a dataset that survives bad files."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SAMPLE_CLASSES = ("cat", "dog")
DEFAULT_SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
GET_DATA_HINT = (
    "Make the built-in sample set with `python -m helpers sample-data data/sample`, "
    "or see data/README.md for the real cats-vs-dogs data."
)


class DataError(ValueError):
    """A data folder the course cannot use, with the reason and the fix in the message."""


@dataclass(frozen=True)
class Sample:
    path: str
    label: int


@dataclass(frozen=True)
class ImageFolderIndex:
    """The files of an ImageFolder, found once and shared by every split."""

    root: Path
    classes: tuple[str, ...]
    samples: tuple[Sample, ...]

    @property
    def targets(self) -> list[int]:
        return [s.label for s in self.samples]


def index_image_folder(root: str | Path) -> ImageFolderIndex:
    """Find ROOT/<class>/<image> files, failing early with the expected layout instead of deep in torchvision."""
    root = Path(root)
    layout = f"expected {root}/<class name>/<image files>, for example {root}/cat/1.jpg and {root}/dog/1.jpg."
    if not root.exists():
        raise DataError(f"Data folder {root} does not exist; {layout} {GET_DATA_HINT}")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; {layout} {GET_DATA_HINT}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES][:3]
        what = f"images directly inside it ({', '.join(loose)}, ...)" if loose else "no class folders"
        raise DataError(f"Data folder {root} has {what}; {layout} {GET_DATA_HINT}")
    samples: list[Sample] = []
    classes: list[str] = []
    for class_dir in class_dirs:
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        label = len(classes)
        classes.append(class_dir.name)
        samples.extend(Sample(str(f), label) for f in files)
    if len(classes) < 2:
        found = ", ".join(p.name for p in class_dirs)
        raise DataError(
            f"Data folder {root} needs at least two class folders with images in them; found: {found or 'none'}. "
            f"{layout} {GET_DATA_HINT}"
        )
    return ImageFolderIndex(root, tuple(classes), tuple(samples))


def load_rgb(path: str) -> Image.Image:
    """Open any image PIL reads as upright RGB (EXIF rotation applied), so grayscale, CMYK or palette files fit a batch."""
    with Image.open(path) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        return img.convert("RGB") if img.mode != "RGB" else img.copy()


def failure_reason(path: str | Path, exc: BaseException) -> str:
    """Why a file could not be used, in words a person can act on (empty, truncated, not an image, unreadable)."""
    try:
        if Path(path).stat().st_size == 0:
            return "empty file (0 bytes)"
    except OSError as missing:
        return f"cannot be opened ({missing.strerror or missing})"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (no image format recognised in its bytes)"
    if "truncated" in str(exc).lower() or "premature end" in str(exc).lower():
        return "truncated (the file ends before the image does)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"too many pixels to decode safely ({exc})"
    return f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no message'})"


@dataclass(frozen=True)
class Unreadable:
    """What the dataset returns for a file it cannot use; the collate function drops it and reports it."""
    path: str
    reason: str


def image_sizes(samples: Sequence[Sample]) -> list[tuple[int, int]]:
    """(width, height) of each readable file, read from its header only; files PIL cannot identify are left out."""
    sizes = []
    for sample in samples:
        try:
            with Image.open(sample.path) as img:
                sizes.append(img.size)
        except (OSError, ValueError):
            continue
    return sizes


class ImageDataset(Dataset):
    """Samples plus one split's own loader and transform; a file that fails to load comes back as Unreadable."""

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[Any], Any] | None = None,
        loader: Callable[[str], Any] = load_rgb,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.loader = loader

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        try:
            image = self.loader(sample.path)
            if self.transform is not None:
                image = self.transform(image)
        except (OSError, ValueError, RuntimeError, Image.DecompressionBombError) as exc:
            # No warning here: in a worker process it would go to the terminal, not the notebook. The main process
            # warns, once per file, when the batch arrives (loaders.SkippedFiles).
            return Unreadable(sample.path, failure_reason(sample.path, exc))
        return image, sample.label


# --- the generated sample set -------------------------------------------------------------------

def _draw_animal(rng: np.random.Generator, kind: str, width: int, height: int) -> Image.Image:
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


def sample_image_bytes(kind: str, index: int, seed: int = 0) -> bytes:
    """One deterministic JPEG: the same (kind, index, seed) always gives the same bytes."""
    rng = np.random.default_rng([seed, SAMPLE_CLASSES.index(kind), index])
    width, height = int(rng.integers(300, 501)), int(rng.integers(280, 481))
    buffer = io.BytesIO()
    _draw_animal(rng, kind, width, height).save(buffer, format="JPEG", quality=int(rng.integers(80, 93)))
    return buffer.getvalue()


def make_sample_data(root: str | Path, per_class: int = 100, seed: int = 0, progress: bool = True) -> ImageFolderIndex:
    """Write a cats-vs-dogs-shaped ImageFolder so every lesson runs without a download."""
    from tqdm.auto import tqdm

    root = Path(root)
    jobs = [(kind, i) for kind in SAMPLE_CLASSES for i in range(per_class)]
    for kind, i in tqdm(jobs, desc=f"sample data -> {root}", disable=not progress, unit="img"):
        path = root / kind / f"{kind}.{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = sample_image_bytes(kind, i, seed)
        if not path.exists() or path.read_bytes() != data:
            tmp = path.with_suffix(".jpg.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    return index_image_folder(root)


def ensure_sample_data(root: str | Path, per_class: int = 100, seed: int = 0) -> Path:
    """Return ROOT, generating the sample set there first if it holds no images yet."""
    root = Path(root)
    try:
        index = index_image_folder(root)
        if len(index.samples) >= 2 * per_class:
            return root
    except DataError:
        pass
    make_sample_data(root, per_class=per_class, seed=seed)
    return root

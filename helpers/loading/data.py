"""Where images come from: the ImageFolder layout, and a dataset and collate that survive bad files."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset, default_collate
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.functional import pil_to_tensor

from ..errors import GET_DATA_HINT, DataError
from .sample_table import Sample, SampleTable

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ImageFolderIndex:
    """The files of an ImageFolder, found once and shared by every split."""

    root: Path
    classes: tuple[str, ...]
    samples: SampleTable  # Sample objects given here are stored as a SampleTable

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", SampleTable.from_samples(self.samples))

    @property
    def targets(self) -> list[int]:
        return self.samples.labels.tolist()


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
    paths: list[str] = []
    labels: list[int] = []
    classes: list[str] = []
    for class_dir in class_dirs:
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        label = len(classes)
        classes.append(class_dir.name)
        paths.extend(map(str, files))
        labels.extend([label] * len(files))
    if len(classes) < 2:
        found = ", ".join(p.name for p in class_dirs)
        raise DataError(
            f"Data folder {root} needs at least two class folders with images in them; found: {found or 'none'}. "
            f"{layout} {GET_DATA_HINT}"
        )
    return ImageFolderIndex(root, tuple(classes), SampleTable(paths, labels))


def load_rgb(path: str) -> Image.Image:
    """Open any image PIL reads as upright RGB (EXIF rotation applied), so grayscale, CMYK or palette files fit a batch."""
    with Image.open(path) as img:
        return upright_rgb(img)


def upright_rgb(img: Image.Image) -> Image.Image:
    """An opened image decoded as upright RGB, a copy that outlives the file."""
    img.load()
    img = ImageOps.exif_transpose(img)
    return img.convert("RGB") if img.mode != "RGB" else img.copy()


def load_uint8(path: str, at_least: int | None = None) -> torch.Tensor:
    """Decode straight to an upright uint8 CHW tensor with libjpeg-turbo, skipping PIL; PIL only for what it cannot do.

    AT_LEAST: a JPEG whose short side is at least 4 x AT_LEAST px is decoded at the largest DCT scale (1/4 or 1/8)
    that keeps both sides at least AT_LEAST px (Pillow's draft), for a fraction of the work; torchvision 0.29's
    decoders have no such option. At 1/2 Pillow's slower path eats most of the saving (results/draft_cpu2_224px.txt).
    """
    try:
        data = read_file(path)
        if decodes_scaled(data, at_least):
            with Image.open(path) as img:
                img.draft("RGB", (at_least, at_least))
                return pil_to_tensor(upright_rgb(img))
        image = decode_image(data, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except RuntimeError:  # a format torchvision does not decode (BMP, TIFF), or a broken file: PIL says which
        return pil_to_tensor(load_rgb(path))
    return image[0] if image.ndim == 4 else image  # an animated GIF: its first frame


def decodes_scaled(data: torch.Tensor, at_least: int | None) -> bool:
    """Whether load_uint8 decodes these file bytes at a DCT scale: a JPEG whose short side is 4 x AT_LEAST or more."""
    size = jpeg_size(memoryview(data.numpy())) if at_least is not None else None
    return size is not None and min(size) >= 4 * at_least


def jpeg_size(data: memoryview) -> tuple[int, int] | None:
    """Width and height from a JPEG's frame header, found in microseconds (Pillow's open takes ten times longer);
    None for anything else, or a header it cannot walk."""
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        if data[i + 1] in SOF_MARKERS:  # SOFn: length, precision, height, width
            return data[i + 7] << 8 | data[i + 8], data[i + 5] << 8 | data[i + 6]
        i += 2 + (data[i + 2] << 8 | data[i + 3])
    return None


SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # C4, C8, CC: Huffman tables, reserved, arithmetic


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
    """Samples plus one split's own loader and transform; a file that fails to load comes back as Unreadable.

    The samples are kept as a SampleTable whatever they are given as, so workers reading them copy no memory.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[Any], Any] | None = None,
        loader: Callable[[str], Any] = load_rgb,
    ) -> None:
        self.samples = SampleTable.from_samples(samples)
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


class Batch(list):
    """[images, labels] plus the files left out of it; a list subclass keeps `skipped` through pin_memory and workers."""

    skipped: tuple[Unreadable, ...] = ()


def collate_skipping_bad(batch: list, collate: Callable[[list], list] = default_collate) -> Batch:
    """COLLATE after dropping the samples the dataset could not read; empty when every one was unreadable."""
    kept = [item for item in batch if not isinstance(item, Unreadable)]
    out = Batch(collate(kept) if kept else [])
    out.skipped = tuple(item for item in batch if isinstance(item, Unreadable))
    return out


class SkippedFiles:
    """The unreadable files one pass met: each named in one warning, in the main process, so a notebook shows it."""

    warned: set[str] = set()  # files already named in this process: warned about once, not every epoch

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def note(self, batch: Batch) -> bool:
        """Record BATCH's skipped files; False when it holds no image at all."""
        for bad in getattr(batch, "skipped", ()):
            if bad.path in self.reasons:
                continue
            self.reasons[bad.path] = bad.reason
            if bad.path not in self.warned:
                self.warned.add(bad.path)
                warnings.warn(f"Skipped {bad.path}: {bad.reason}. `python -m helpers verify DIR --quarantine "
                              f"DIR-bad` lists every bad file and moves them out.", stacklevel=2)
        return len(batch) > 0

    def __len__(self) -> int:
        return len(self.reasons)

    @classmethod
    def forget_warnings(cls) -> None:
        """Warn again about files already named (a new run, or a test that must not depend on the ones before)."""
        cls.warned.clear()

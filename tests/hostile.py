"""Small downloads shaped like the real ones, with unusual and bad files mixed in, for the tests."""
from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from helpers.loading.samples import sample_image_bytes

BAD = {"empty": "empty file", "cut": "truncated", "text": "not an image"}


def _encoded(image: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def unusual(base: Image.Image) -> dict[str, tuple[str, bytes]]:
    """Fine images that are unusual: name stem -> (suffix, bytes). All must load as RGB and none be reported."""
    exif = base.getexif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees to show upright
    frames = [base.convert("P"), base.rotate(90).convert("P")]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:])
    return {
        "gray": (".jpg", _encoded(base.convert("L"))),
        "cmyk": (".jpg", _encoded(base.convert("CMYK"))),
        "rgba": (".png", _encoded(base.convert("RGBA"), "PNG")),
        "palette": (".gif", animated.getvalue()),
        "png inside": (".jpg", _encoded(base, "PNG")),
        "rotated": (".jpg", _encoded(base, exif=exif)),
        "large": (".jpg", _encoded(base.resize((4000, 3000)), quality=70)),
        "tiny": (".jpg", _encoded(base.resize((2, 2)))),
        "bmp": (".bmp", _encoded(base, "BMP")),
        "café é": (".jpg", _encoded(base)),
    }


def unusual_files(root: Path) -> dict[str, Path]:
    """A plain JPEG and every unusual image of `unusual`, written to ROOT: stem -> path."""
    good = sample_image_bytes("cat", 0)
    paths = {}
    for stem, (suffix, data) in {"plain": (".jpg", good), **unusual(Image.open(io.BytesIO(good)))}.items():
        paths[stem] = root / f"{stem}{suffix}"
        paths[stem].write_bytes(data)
    return paths


def bad(good: bytes) -> dict[str, bytes]:
    return {"empty": b"", "cut": good[: len(good) // 2], "text": b"this is not a picture\n"}


def make_download(root: Path, layout: str, good_per_class: int = 8) -> Path:
    """A small download shaped like the real one: good images, unusual ones, bad ones and a Thumbs.db."""
    base = Image.open(io.BytesIO(sample_image_bytes("cat", 99))).convert("RGB").resize((96, 64))
    files: dict[Path, bytes] = {}
    for kind in ("cat", "dog"):
        for i in range(good_per_class):
            name = f"{kind}.{i}.jpg" if layout == "kaggle" else f"{kind.capitalize()}/{i}.jpg"
            files[Path(name)] = sample_image_bytes(kind, i)
    for stem, (suffix, data) in unusual(base).items():
        files[Path(f"cat.{stem}{suffix}" if layout == "kaggle" else f"Cat/{stem}{suffix}")] = data
    for stem, data in bad(sample_image_bytes("dog", 50)).items():
        files[Path(f"dog.{stem}.jpg" if layout == "kaggle" else f"Dog/{stem}.jpg")] = data
    files[Path("Thumbs.db" if layout == "kaggle" else "Cat/Thumbs.db")] = b"\xd0\xcf\x11\xe0 not an image"
    top = root / ("train" if layout == "kaggle" else "PetImages")
    for rel, data in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(data)
    (root / "readme.txt").write_text("downloaded for the tests\n")
    return root

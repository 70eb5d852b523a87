"""Bring a download into the ImageFolder the course reads: Kaggle's flat folder, Microsoft's PetImages, or an ImageFolder."""
from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .data import IMAGE_SUFFIXES, DataError, GET_DATA_HINT

MODES = {"copy": "copies", "symlink": "symbolic links", "hardlink": "hard links"}
_KAGGLE_NAME = re.compile(r"^(?P<label>[A-Za-z]+)\.[^/]*$")  # cat.123.jpg, dog.7.jpg: the class before the first dot


@dataclass
class PrepareReport:
    layout: str
    source: Path                                  # the folder the layout was found in (may be below SRC)
    dest: Path
    mode: str
    placed: Counter = field(default_factory=Counter)  # class -> files placed
    left_out: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self, limit: int = 20) -> str:
        per_class = ", ".join(f"{n} {c}" for c, n in sorted(self.placed.items()))
        lines = [f"Found the {self.layout} layout in {self.source}.",
                 f"Placed {sum(self.placed.values())} images in {self.dest} ({per_class}) as {MODES[self.mode]}; "
                 f"{self.source} was not modified."]
        if self.left_out:
            lines.append(f"Left out {len(self.left_out)} file{'s' if len(self.left_out) > 1 else ''}:")
            lines += [f"  {p.relative_to(self.source)}: {why}" for p, why in self.left_out[:limit]]
            if len(self.left_out) > limit:
                lines.append(f"  ... and {len(self.left_out) - limit} more")
        lines.append(f"Next, check the images themselves: python -m helpers verify {self.dest}")
        return "\n".join(lines)


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def detect_layout(src: str | Path) -> tuple[str, Path]:
    """(layout name, the folder it is in): 'kaggle' (flat cat.N.jpg), 'petimages' (Cat/, Dog/) or 'imagefolder'."""
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src} is not a folder. Unpack the download first (see data/README.md). {GET_DATA_HINT}")
    candidates = [c for c in (src, src / "PetImages", src / "train") if c.is_dir()]
    for candidate in candidates:
        entries = _visible(candidate)
        if {"Cat", "Dog"} <= {p.name for p in entries if p.is_dir()}:
            return "petimages", candidate
        flat = [p for p in entries if p.is_file() and _is_image_name(p)]
        if flat and sum(bool(_KAGGLE_NAME.match(p.name)) for p in flat) >= len(flat) / 2:
            return "kaggle", candidate
    dirs = [p for p in _visible(src) if p.is_dir()]
    if len(dirs) >= 2 and any(_is_image_name(f) for d in dirs for f in d.iterdir()):
        return "imagefolder", src
    raise DataError(
        f"No known layout in {src}: expected Kaggle's flat folder of cat.N.jpg and dog.N.jpg (its train/ folder), "
        f"Microsoft's PetImages/Cat and PetImages/Dog, or an ImageFolder of class folders. {GET_DATA_HINT}")


def _plan(layout: str, source: Path) -> tuple[list[tuple[Path, str, Path]], list[tuple[Path, str]]]:
    """(file, class, path under the class folder) for each file to place, and (file, reason) for each left out."""
    place, left, inside = [], [], source.resolve()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source)
        if not path.resolve().is_relative_to(inside):
            left.append((path, f"a symbolic link to {path.resolve()}, outside the download: not followed"))
        elif any(part.startswith(".") for part in rel.parts):
            left.append((path, "hidden file"))
        elif not _is_image_name(path):
            left.append((path, "not an image name (the loaders would never open it)"))
        elif layout == "kaggle":
            match = _KAGGLE_NAME.match(path.name)
            if len(rel.parts) > 1 or not match:
                left.append((path, "no class in its name (expected cat.N.jpg or dog.N.jpg)"))
            else:
                place.append((path, match["label"].lower(), Path(path.name)))
        elif len(rel.parts) < 2:
            left.append((path, "outside any class folder"))
        else:
            label = rel.parts[0].lower() if layout == "petimages" else rel.parts[0]
            place.append((path, label, Path(*rel.parts[1:])))
    return place, left


def _put(src: Path, dst: Path, mode: str) -> None:
    """Place one file; an OS refusal (links across file systems, symlinks not allowed) becomes the reason and the fix."""
    try:
        if mode == "symlink":
            dst.symlink_to(src.resolve())
        elif mode == "hardlink":
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)
    except OSError as exc:
        if mode == "hardlink" and exc.errno == errno.EXDEV:
            why = "a hard link cannot cross file systems, and the download and DEST are on different ones"
        elif mode == "symlink" and (isinstance(exc, PermissionError) or getattr(exc, "winerror", None) == 1314):
            why = ("this system does not let you make symbolic links (on Windows: turn on Developer Mode or run "
                   "as administrator)")
        else:
            why = f"{type(exc).__name__}: {exc.strerror or exc}"
        raise DataError(f"Could not place {src} as {dst} ({MODES[mode]}): {why}. Use --mode copy, or free the "
                        f"space or permission it needs; nothing was left in the destination.") from None


def prepare(src: str | Path, dest: str | Path, *, mode: str = "copy") -> PrepareReport:
    """Write DEST/<class>/<file> from SRC in any known layout, never touching SRC; report what was left out and why."""
    if mode not in MODES:
        raise DataError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}.")
    layout, source = detect_layout(src)
    dest = Path(dest)
    if dest.resolve().is_relative_to(Path(src).resolve()) or Path(src).resolve().is_relative_to(dest.resolve()):
        raise DataError(f"{dest} and {src} overlap; write the prepared copy beside the download, not inside it.")
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"{dest} already holds files; give an empty or new folder (nothing there is overwritten).")
    place, left = _plan(layout, source)
    if len({label for _, label, _ in place}) < 2:
        raise DataError(f"Found fewer than two classes in {source} ({layout} layout); nothing was written.")
    report = PrepareReport(layout, source, dest, mode, left_out=left)
    dest.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))  # renamed when complete
    try:
        for path, label, rel in place:
            target = building / label / rel
            if target.exists():
                report.left_out.append((path, f"same name as {dest / label / rel} (already placed)"))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _put(path, target, mode)
            report.placed[label] += 1
        if dest.exists():
            dest.rmdir()  # empty, checked above; Windows cannot rename onto a folder
        os.replace(building, dest)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return report

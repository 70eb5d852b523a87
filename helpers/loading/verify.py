"""Check every image in a folder before training: which files are bad and why, moved aside only when asked."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from torch.utils.data import DataLoader, Dataset

from .data import IMAGE_SUFFIXES, Sample, failure_reason, load_rgb
from ..errors import DataError, explained_worker_failures
from ..progress import progress_bar


@dataclass(frozen=True)
class BadFile:
    path: Path
    reason: str


@dataclass
class VerifyReport:
    root: Path
    checked: int
    bad: list[BadFile]
    ignored: list[Path]                     # not image names: the loaders never open them (Thumbs.db, .txt)
    seconds: float
    quarantine: Path | None = None
    moved: list[tuple[Path, Path]] = field(default_factory=list)

    def summary(self, limit: int = 50) -> str:
        """What a person needs: counts, each bad file with its reason, what was moved, and the next step."""
        rel = lambda p: p.relative_to(self.root) if p.is_relative_to(self.root) else p  # noqa: E731
        lines = [f"Checked {self.checked} images in {self.root} in {self.seconds:.1f} s: "
                 f"{self.checked - len(self.bad)} good, {len(self.bad)} bad."]
        lines += [f"  bad: {rel(b.path)}: {b.reason}" for b in self.bad[:limit]]
        if len(self.bad) > limit:
            lines.append(f"  ... and {len(self.bad) - limit} more")
        if self.ignored:
            names = ", ".join(str(rel(p)) for p in self.ignored[:5]) + (", ..." if len(self.ignored) > 5 else "")
            lines.append(f"Not images by name, so never opened by the loaders ({len(self.ignored)}): {names}")
        if self.moved:
            lines.append(f"Moved {len(self.moved)} bad files to {self.quarantine}, in the same sub-folders "
                         f"(kept, not deleted).")
        elif self.bad:
            lines.append(f"Training skips them with a warning. To move them out: "
                         f"python -m helpers verify {self.root} --quarantine {self.root}-bad")
        return "\n".join(lines)


def check_image(path: str | Path) -> str | None:
    """Why PATH is unusable (empty, truncated, not an image, unreadable), or None when it decodes to RGB."""
    try:
        image = load_rgb(str(path))
        if image.width < 1 or image.height < 1:
            return "no pixels (width or height is 0)"
        return None
    except Exception as exc:  # any failure to decode is what we are here to report
        return failure_reason(path, exc)


class _Checks(Dataset):
    """One check per file, so a DataLoader can spread the decoding over worker processes."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, str | None]:
        return i, check_image(self.paths[i])


def _unbatched(batch):
    return batch


def check_files(paths: Sequence[str | Path], *, workers: int = 0, progress: bool = False) -> list[BadFile]:
    """Decode every file (in WORKERS processes when > 0) and return the bad ones, in the order given."""
    paths = [Path(p) for p in paths]
    loader = DataLoader(_Checks(paths), batch_size=16, num_workers=workers, collate_fn=_unbatched)
    bad = []
    with progress_bar(len(paths), "verify", progress, unit="img", leave=True) as bar, explained_worker_failures():
        for batch in loader:
            bad += [BadFile(paths[i], reason) for i, reason in batch if reason]
            bar.update(len(batch))
    return bad


def verify_folder(root: str | Path, *, quarantine: str | Path | None = None, workers: int = 0,
                  progress: bool = True) -> VerifyReport:
    """Open every image-named file under ROOT; list the bad ones; move them under QUARANTINE only when it is given."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Give the folder that holds the images, for example data/cats-dogs.")
    dest = Path(quarantine) if quarantine else None
    if dest is not None and dest.resolve().is_relative_to(root.resolve()):
        raise DataError(f"The quarantine folder {dest} is inside {root}, where the loader would find the bad files "
                        f"again (or take it for a class); put it beside it, for example {root}-bad.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    start = time.perf_counter()
    bad = check_files(images, workers=workers, progress=progress)
    report = VerifyReport(root, len(images), bad, [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES],
                          time.perf_counter() - start, dest)
    for b in bad if dest is not None else ():
        target = free_name(dest / b.path.relative_to(root))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(b.path), str(target))
        report.moved.append((b.path, target))
    return report


def free_name(path: Path) -> Path:
    """PATH, or x.1.jpg, x.2.jpg... after it when taken, numbered from the original stem: nothing is overwritten."""
    target, n = path, 1
    while target.exists() or target.is_symlink():
        target, n = path.with_name(f"{path.stem}.{n}{path.suffix}"), n + 1
    return target


def refuse_bad_files(samples: Sequence[Sample], workers: int = 0) -> None:
    """The strict option: decode every image first and stop, naming the bad ones, before a minute is spent training."""
    bad = check_files([s.path for s in samples], workers=workers)
    if bad:
        listed = "; ".join(f"{b.path}: {b.reason}" for b in bad[:10]) + ("; ..." if len(bad) > 10 else "")
        root = Path(bad[0].path).parent.parent
        raise DataError(f"{len(bad)} unreadable images and strict data checking is on: {listed}. Move them out with "
                        f"`python -m helpers verify {root} --quarantine {root}-bad`, or drop --strict-data to skip "
                        f"them with a warning.")

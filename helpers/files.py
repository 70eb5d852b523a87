"""Files that are never half-written: a unique temporary file beside the target, flushed to disk, then renamed."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Open a temporary file in PATH's folder; on success it is fsynced and renamed onto PATH, on error removed.

    The name is unique (two writers never share it) and in the same folder (a rename across file systems would
    copy, and a crash mid-copy leaves half a file). os.replace is atomic on POSIX and Windows alike.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes the file 0600; the result gets what open() would give: 0666 less the umask
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_folder(path.parent)


def current_umask() -> int:
    """This process's umask: from /proc on Linux; elsewhere os.umask, which can only read it by setting it back."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """WRITE the content to PATH through atomic_file (torch.save, savefig and bytes all take a binary file)."""
    with atomic_file(path) as f:
        write(f)
    return Path(path)


def sync_folder(folder: str | Path) -> None:
    """Flush a folder's entries, so a rename survives a power cut (POSIX; Windows cannot open folders)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename has happened all the same
        pass
    finally:
        os.close(fd)


def unwritable(path: str | Path, folder: bool = False) -> str | None:
    """Why PATH (a file, or with FOLDER a folder) cannot be written, or None when it can; nothing is left behind.

    It tries what the write will do: a temporary file in the nearest folder that exists (atomic_file writes one there
    and makes the missing folders), removed at once. os.access is not enough: it says yes to root in /proc.
    """
    path = Path(path).expanduser()
    if path.is_dir() and not folder:
        return "it is a folder"
    if path.exists() and not path.is_dir() and folder:
        return "it is a file, not a folder"
    nearest = path if folder and path.is_dir() else path.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        return f"{nearest} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(dir=nearest, prefix=".write-probe.")
    except OSError as exc:
        return f"{nearest} does not accept new files ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    if path.is_file() and not os.access(path, os.W_OK):
        return "the file is read-only"
    return None

"""Progress bars that show in a terminal or a notebook and stay out of logs written to a file or a pipe."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm


def interactive() -> bool:
    """True in a terminal or a Jupyter kernel, where a bar redraws in place; False for a file or a pipe."""
    stream = sys.stderr
    return type(stream).__module__.startswith("ipykernel") or bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "it", leave: bool = False) -> tqdm:
    """A tqdm bar when ENABLED and someone watches; a silent one otherwise, so a log holds only clean lines."""
    return tqdm(total=total, desc=desc, disable=not (enabled and interactive()), unit=unit, leave=leave)

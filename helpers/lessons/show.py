"""Show a helper's real source in a notebook, so a lesson never teaches from a copy that could drift."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def show(obj: Any) -> None:
    """Print where OBJ is defined and its source as the package holds it now."""
    lines, first = inspect.getsourcelines(obj)
    path = Path(inspect.getsourcefile(obj) or "?").resolve()
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    print(f"# {where}, line {first}\n" + "".join(lines).rstrip())

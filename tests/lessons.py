"""What a notebook's lessons found, read from its kernel after its last cell, for tests/test_lessons.py.

Under nbval (README's test command) the root conftest.py runs RECORDER in each notebook's kernel before its first
cell and PROBE after its last, so nothing is executed twice; run alone, test_lessons.py executes the notebook with
nbclient, the same two cells added around it. The learner's notebook holds neither.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# Every figure the kernel renders (inline or saved), with its titles and labels, kept in a module of its own so the
# learner's namespace gains no name.
RECORDER_SOURCE = '''
import weakref
import matplotlib.backend_bases as _bb

figures = []
_seen = weakref.WeakSet()
_print_figure = _bb.FigureCanvasBase.print_figure

def _record(self, *args, **kwargs):
    fig = self.figure
    if fig not in _seen:
        _seen.add(fig)
        figures.append(dict(
            suptitle=fig.get_suptitle(),
            axes=[dict(title=" ".join(t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t),
                       xlabel=ax.get_xlabel(), ylabel=ax.get_ylabel(), axis_on=bool(ax.axison),
                       images=len(ax.images), colorbar=ax.get_label() == "<colorbar>")
                  for ax in fig.axes if ax.get_visible()]))
    return _print_figure(self, *args, **kwargs)

_bb.FigureCanvasBase.print_figure = _record
'''
RECORDER = ("exec(compile({src!r}, '<lessons recorder>', 'exec'), __import__('sys').modules.setdefault("
            "'_lessons_recorder', __import__('types').ModuleType('_lessons_recorder')).__dict__)"
            ).format(src=RECORDER_SOURCE)

PROBE = "exec({body!r}, {{'path': {path!r}, 'expression': {expression!r}, 'ns': globals()}})"

PROBE_BODY = '''
import json, sys, traceback
found = {"figures": getattr(sys.modules.get("_lessons_recorder"), "figures", None)}
try:
    found["facts"] = eval(expression, ns)
except Exception:
    found["error"] = traceback.format_exc()
with open(path, "w") as f:
    json.dump(found, f, default=repr)
'''


def probe_code(path: str | Path, expression: str) -> str:
    """One statement that evaluates EXPRESSION in the notebook's namespace and writes it, and the figures, to PATH."""
    return PROBE.format(body=PROBE_BODY, path=str(path), expression=expression)


@dataclass
class Found:
    """What one executed notebook left: the probe's facts, and every figure it rendered."""

    facts: dict
    figures: list[dict] = field(default_factory=list)


def read_found(path: Path, stem: str) -> Found:
    """The probe's file as Found; an error in the probe fails here with the kernel's traceback."""
    if not path.exists():
        raise AssertionError(f"{stem}: the lesson probe wrote nothing (the kernel died or the last cell failed)")
    data = json.loads(path.read_text())
    if "error" in data:
        raise AssertionError(f"{stem}: the lesson probe failed in the kernel:\n{data['error']}")
    return Found(data["facts"], data.get("figures") or [])


# Filled while nbval runs the notebooks (conftest.py); keyed by the notebook's stem.
FOUND: dict[str, Found] = {}


def probe_running_kernel(run: Callable[[str], None], stem: str, expression: str) -> Found:
    """Probe a kernel nbval holds: RUN executes one statement in it and waits for it to finish."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "found.json"
        run(probe_code(path, expression))
        return read_found(path, stem)


def execute_and_probe(stem: str, expression: str, timeout: float = 600) -> Found:
    """Execute notebooks/STEM.ipynb with the recorder before it and the probe after it; the file is not changed."""
    import nbformat
    from nbclient import NotebookClient

    from helpers.app.kernels import end_kernel_groups, ipc_kernel_manager

    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "found.json"
        nb.cells = ([nbformat.v4.new_code_cell(RECORDER)] + nb.cells
                    + [nbformat.v4.new_code_cell(probe_code(path, expression))])
        os.environ.setdefault("HELPERS_OFFLINE", "1")
        with ipc_kernel_manager() as manager:
            try:
                NotebookClient(nb, timeout=timeout, kernel_manager_class=manager,
                               resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
            finally:
                end_kernel_groups(manager)
        return read_found(path, stem)

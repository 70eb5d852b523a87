"""Run the course's notebooks end to end with papermill, in order, into a folder of executed copies."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import CourseError
from .kernels import end_kernel_groups, ipc_kernel_manager

NOTEBOOK_DIR_ENV = "HELPERS_NOTEBOOK_DIR"
# The course's notebooks: $HELPERS_NOTEBOOK_DIR, else notebooks/ beside helpers/ in the source checkout.
NOTEBOOK_DIR = Path(os.environ.get(NOTEBOOK_DIR_ENV) or Path(__file__).resolve().parents[2] / "notebooks")
BENCH_CSV = "bench.csv"  # what notebook 05 writes into the output folder for the summary

# The quick profile is each notebook's own `parameters` cell (what nbval re-executes); the full one overrides it.
PROFILES: dict[str, dict[str, dict]] = {
    "quick": {},
    "full": {
        "01_transforms": dict(timing_images=48, timing_repeats=5),
        "03_multiprocess_loading": dict(image_size=224, timing_batches=20, workers=[0, 1, 2, 4]),
        "04_training": dict(epochs=3, image_size=224),
        "05_timing_workers": dict(image_size=512, workers=[0, 1, 2, 4, 8], batch_size=32, batches=16, repeats=5,
                                  e2e_image_size=224, e2e_workers=[0, 1, 2, 4], e2e_batches=10, e2e_repeats=5),
        "06_cheaper_workers": dict(image_size=512, transfer_workers=[0, 1, 2, 4], repeats=3),
        "07_beyond_the_loader": dict(image_size=224, epochs=3),
        "08_worker_memory": dict(entries=1_000_000, bench_workers=[0, 1, 2, 4], image_size=224,
                                 other_start_methods=["forkserver", "spawn"]),
        "09_failure_zoo": dict(image_size=512),  # 12 MiB batches against the 1 MiB and 64 MiB /dev/shm
        "10_see_the_workers": dict(image_size=224, batches=12),
        "11_specialised_loaders": dict(workers=[1, 2, 4], image_size=224, batch_size=32, batches=20, repeats=3),
        "12_far_away_storage": dict(latencies_ms=[0, 5, 20, 50], workers=[0, 2, 4, 8, 16], images=320),
        "13_your_own_loader": dict(workers=[0, 1, 2, 4], repeats=3, epochs=5),
    },
}


# Seconds one cell may run before the run fails: several times the slowest cell of each profile on a loaded 2-core
# machine (notebook 05's sweeps), so only a cell that never ends reaches it. --cell-timeout overrides.
CELL_TIMEOUTS = {"quick": 600.0, "full": 1800.0}


class CellTimedOut(CourseError, TimeoutError):
    """A cell ran past its time limit: the message names the notebook, the cell and its first line."""


class NotebookFailed(CourseError, RuntimeError):
    """A notebook stopped with an error; the message names the notebook, the cell and the executed copy."""

    exit_status = 1  # a lesson failed, rather than the command being given something it cannot use


@dataclass
class NotebookRun:
    name: str
    seconds: float
    output: Path


def notebook_paths(directory: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks (00_*.ipynb, 01_*.ipynb, ...) in course order."""
    return sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(path: str | Path) -> set[str]:
    """The names a notebook's `parameters` cell defines: the only ones papermill should be given."""
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def run_notebooks(profile: str = "quick", out: str | Path = "runs/notebooks", *, data: str | Path | None = None,
                  notebooks: str | Path = NOTEBOOK_DIR, only: Sequence[str] = (), cell_timeout: float | None = None,
                  log: Callable[[str], None] = print) -> list[NotebookRun]:
    """Execute every notebook (or those whose names start with one of ONLY) in order into OUT, stopping at the first
    failure, or at a cell that runs past CELL_TIMEOUT seconds (the profile's CELL_TIMEOUTS by default), with the
    notebook and cell named. Kernels listen on private Unix sockets, not TCP (helpers.app.kernels); each kernel's process
    group is ended after its notebook, so nothing it started outlives it."""
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    limit = CELL_TIMEOUTS[profile] if cell_timeout is None else cell_timeout
    out, notebooks = Path(out).resolve(), Path(notebooks).resolve()
    if out == notebooks:
        raise ValueError(f"--out {out} is the notebooks folder itself; executed copies never replace the sources.")
    paths = [p for p in notebook_paths(notebooks) if not only or p.name.startswith(tuple(only))]
    if not paths:
        raise FileNotFoundError(f"No numbered notebooks (00_*.ipynb, ...) in {notebooks}.")
    out.mkdir(parents=True, exist_ok=True)
    with ipc_kernel_manager() as kernel_manager:
        return [_run_one(path, profile, out, data, kernel_manager, log, limit) for path in paths]


def _run_one(path: Path, profile: str, out: Path, data: str | Path | None, kernel_manager: type,
             log: Callable[[str], None], cell_timeout: float) -> NotebookRun:
    """Execute one notebook with papermill into OUT; a failing cell becomes NotebookFailed naming it, a cell past
    CELL_TIMEOUT seconds CellTimedOut, and the kernel's process group is ended either way."""
    import papermill
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    wanted = {**PROFILES[profile].get(path.stem, {}), "bench_csv": str(out / BENCH_CSV)}
    if data is not None:
        wanted["data_dir"] = str(data)  # papermill passes parameters as JSON
    parameters = {k: v for k, v in wanted.items() if k in declared_parameters(path)}
    target = out / path.name
    log(f"== {path.name} ({profile})")
    start = time.perf_counter()
    quiet = EndKernelOnTimeout(kernel_manager)
    logging.getLogger("papermill").addHandler(quiet)
    try:
        papermill.execute_notebook(str(path), str(target), parameters=parameters, cwd=str(path.parent),
                                   progress_bar=False, kernel_manager_class=kernel_manager,
                                   execution_timeout=cell_timeout)
    except PapermillExecutionError as exc:
        raise NotebookFailed(
            f"{path.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\nThe executed copy, traceback included, is {target}.") from None
    except CellTimeoutError:
        index, first = last_started_cell(target)
        raise CellTimedOut(
            f"{path.name}: cell {index} (`{first}`) ran past the {cell_timeout:g} s limit for one cell; its kernel "
            f"and the kernel's children were ended. The executed copy is {target}; a cell that needs longer: "
            f"--cell-timeout S") from None
    finally:
        logging.getLogger("papermill").removeHandler(quiet)
        end_kernel_groups(kernel_manager)
    return NotebookRun(path.name, time.perf_counter() - start, target)


class EndKernelOnTimeout(logging.Handler):
    """papermill's log, held back (the run's own line says what failed); when nbclient logs that a cell's reply did
    not come in time, the kernel's process group is killed there and then, before nbclient asks the kernel, still
    busy, to shut down (which leaves it printing a traceback when its cell ends)."""

    def __init__(self, kernel_manager: type) -> None:
        super().__init__()
        self.kernel_manager = kernel_manager

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Timeout waiting for execute reply"):  # nbclient/client.py
            end_kernel_groups(self.kernel_manager)


def last_started_cell(executed: Path) -> tuple[int, str]:
    """The index and first source line of the last cell papermill started in the copy it wrote (the one running when
    the run stopped): papermill stamps each cell's start time as it starts it."""
    import nbformat

    cells = nbformat.read(executed, as_version=4).cells
    index = max((i for i, c in enumerate(cells) if c.metadata.get("papermill", {}).get("start_time")), default=0)
    lines = [line for line in cells[index].source.splitlines() if line.strip()] if cells else []
    return index, (lines[0].strip() if lines else "")


SUMMARY = "summary.txt"  # what run-notebooks leaves beside the executed copies


def write_summary(runs: list[NotebookRun], out: str | Path, profile: str) -> str:
    """The summary, headed by when, where and with which profile it ran, saved as OUT/summary.txt and returned."""
    import datetime

    from ..machine import machine_summary

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"{profile} profile, {when}, {machine_summary()}\n{summary(runs, out)}\n"
    (Path(out) / SUMMARY).write_text(text)
    return text


def summary(runs: list[NotebookRun], out: str | Path) -> str:
    """Seconds per notebook, then the num_workers table notebook 05 measured."""
    from ..timing.bench import BENCH_COLUMNS
    from ..timing.tables import format_table, read_csv

    rows = [dict(notebook=r.name, seconds=r.seconds) for r in runs]
    lines = [format_table(rows, (("notebook", "notebook", "s"), ("seconds", "seconds", ".1f"))),
             f"total {sum(r.seconds for r in runs):.0f} s; executed copies in {out}"]
    csv_path = Path(out) / BENCH_CSV
    if csv_path.exists():
        table = read_csv(csv_path)
        filled = [c for c in BENCH_COLUMNS if any(row.get(c[0]) not in (None, "") for row in table)]  # no empty column
        lines += ["", "num_workers, as notebook 05 measured it:", format_table(table, filled)]
    return "\n".join(lines)

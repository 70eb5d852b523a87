"""Run the course's notebooks end to end with papermill, in order, into a folder of executed copies."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import CourseError
from .kernels import ipc_kernel_manager

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
        "05_timing_workers": dict(image_size=512, workers=[0, 1, 2, 4, 8], batches=16, repeats=3,
                                  transfer_workers=[0, 1, 2, 4], e2e_image_size=224, e2e_workers=[0, 1, 2, 4],
                                  e2e_batches=6, ladder_repeats=3),
        "06_beyond_the_loader": dict(image_size=224, epochs=3),
        "07_worker_memory": dict(entries=1_000_000, bench_workers=[0, 1, 2, 4], image_size=224,
                                 other_start_methods=["forkserver", "spawn"]),
        "08_failure_zoo": dict(image_size=512),  # 12 MiB batches against the 1 MiB and 64 MiB /dev/shm
        "09_see_the_workers": dict(image_size=224, batches=12, live_batches=16, slow_px=4000),
        "10_specialised_loaders": dict(workers=[1, 2, 4], image_size=224, batch_size=32, batches=20, repeats=3),
    },
}


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
                  notebooks: str | Path = NOTEBOOK_DIR, only: Sequence[str] = (),
                  log: Callable[[str], None] = print) -> list[NotebookRun]:
    """Execute every notebook (or those whose names start with one of ONLY) in order into OUT, stopping at the first
    failure with the notebook and cell named. Kernels listen on private Unix sockets, not TCP (helpers.app.kernels)."""
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    out, notebooks = Path(out).resolve(), Path(notebooks).resolve()
    if out == notebooks:
        raise ValueError(f"--out {out} is the notebooks folder itself; executed copies never replace the sources.")
    paths = [p for p in notebook_paths(notebooks) if not only or p.name.startswith(tuple(only))]
    if not paths:
        raise FileNotFoundError(f"No numbered notebooks (00_*.ipynb, ...) in {notebooks}.")
    out.mkdir(parents=True, exist_ok=True)
    with ipc_kernel_manager() as kernel_manager:
        return [_run_one(path, profile, out, data, kernel_manager, log) for path in paths]


def _run_one(path: Path, profile: str, out: Path, data: str | Path | None, kernel_manager: type,
             log: Callable[[str], None]) -> NotebookRun:
    """Execute one notebook with papermill into OUT; a failing cell becomes NotebookFailed naming it."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    wanted = {**PROFILES[profile].get(path.stem, {}), "bench_csv": str(out / BENCH_CSV)}
    if data is not None:
        wanted["data_dir"] = str(data)  # papermill passes parameters as JSON
    parameters = {k: v for k, v in wanted.items() if k in declared_parameters(path)}
    target = out / path.name
    log(f"== {path.name} ({profile})")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(target), parameters=parameters, cwd=str(path.parent),
                                   progress_bar=False, kernel_manager_class=kernel_manager)
    except PapermillExecutionError as exc:
        raise NotebookFailed(
            f"{path.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\nThe executed copy, traceback included, is {target}.") from None
    return NotebookRun(path.name, time.perf_counter() - start, target)


SUMMARY = "summary.txt"  # what run-notebooks leaves beside the executed copies


def write_summary(runs: list[NotebookRun], out: str | Path, profile: str) -> str:
    """The summary, headed by when, where and with which profile it ran, saved as OUT/summary.txt and returned."""
    import datetime

    from ..machine import machine_summary

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"{profile} profile, {when}, {machine_summary()}\n{summary(runs, out)}\n"
    (Path(out) / SUMMARY).write_text(text)
    return text


def total_seconds(summary_text: str) -> float:
    """The total a summary states ('total 502 s; ...'), so README's quoted time can be checked against a run."""
    line = next(line for line in summary_text.splitlines() if line.startswith("total "))
    return float(line.split()[1])


def summary(runs: list[NotebookRun], out: str | Path) -> str:
    """Seconds per notebook, then the num_workers table notebook 05 measured."""
    from ..timing.tables import BENCH_COLUMNS, format_table, read_csv

    rows = [dict(notebook=r.name, seconds=r.seconds) for r in runs]
    lines = [format_table(rows, (("notebook", "notebook", "s"), ("seconds", "seconds", ".1f"))),
             f"total {sum(r.seconds for r in runs):.0f} s; executed copies in {out}"]
    csv_path = Path(out) / BENCH_CSV
    if csv_path.exists():
        lines += ["", "num_workers, as notebook 05 measured it:", format_table(read_csv(csv_path), BENCH_COLUMNS)]
    return "\n".join(lines)

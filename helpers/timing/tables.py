"""Plain-text tables and the bench's CSV: what every measurement is printed and stored with."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ..files import atomic_file

CSV_COLUMNS = ("loader", "pipeline", "mode", "worker_kind", "num_workers", "batch_size", "image_size", "device",
               "images_per_s", "images_per_s_min", "images_per_s_max", "startup_s", "data_wait_fraction", "ceiling_fraction",
               "pss_mb", "pss_growth_mb")


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A plain-text table; COLUMNS are (key, header, format spec); None prints as '-'."""
    cells = [[header for _, header, _ in columns]]
    cells += [["-" if row[key] is None else format(row[key], spec) for key, _, spec in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


BENCH_COLUMNS = (
    ("pipeline", "pipeline", "s"),
    ("mode", "mode", "s"),
    ("num_workers", "workers", "d"),
    ("batch_size", "batch", "d"),
    ("images_per_s", "images/s", ".1f"),
    ("images_per_s_min", "min", ".1f"),
    ("images_per_s_max", "max", ".1f"),
    ("startup_s", "start-up s", ".2f"),
    ("data_wait_fraction", "data wait", ".0%"),
    ("ceiling_fraction", "of CPU ceiling", ".0%"),
)
LOADER_COLUMN = ("loader", "loader", "s")  # printed first when the specialised loaders were timed too
BENCH_MEMORY_COLUMNS = (  # apart, so tables of CSVs from before memory was measured still print
    ("pss_mb", "PSS MB", ".0f"),
    ("pss_growth_mb", "PSS growth MB", "+.1f"),
)
BENCH_KIND_COLUMNS = (("worker_kind", "worker kind", "s"),)  # last, so tables of older CSVs keep their columns


def write_csv(rows: Sequence[dict], path: str | Path) -> None:
    """Bench rows as CSV, one column per CSV_COLUMNS entry, so results from different machines line up."""
    write_rows(rows, path, CSV_COLUMNS)


def write_rows(rows: Sequence[dict], path: str | Path, columns: Sequence[str] | None = None) -> None:
    """ROWS as CSV with COLUMNS (default: the first row's keys) in that order; read_csv reads it back."""
    with atomic_file(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns or rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: str | Path) -> list[dict]:
    """Rows written by write_csv, with numbers as numbers and empty cells as None."""
    def value(text: str):
        if text == "":
            return None
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]

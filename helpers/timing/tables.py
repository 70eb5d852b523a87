"""Plain-text tables and CSV rows: how every measurement is printed and stored; each table's columns live beside
the code that makes its rows."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ..files import atomic_file


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """A plain-text table; COLUMNS are (key, header, format spec); None prints as '-'."""
    cells = [[header for _, header, _ in columns]]
    cells += [["-" if row[key] is None else format(row[key], spec) for key, _, spec in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_rows(rows: Sequence[dict], path: str | Path, columns: Sequence[str] | None = None) -> None:
    """ROWS as CSV with COLUMNS (default: the first row's keys) in that order; read_csv reads it back."""
    with atomic_file(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns or rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: str | Path) -> list[dict]:
    """Rows written by write_rows, with numbers as numbers and empty cells as None."""
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

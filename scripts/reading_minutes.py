"""How long each notebook takes to read, so README's table of the course follows the notebooks as they are cut.

A notebook's reading time is the words of its markdown cells (split on white space) at 200 words a minute, rounded
up. Code and printed output are not counted. A notebook not yet in notebooks/ is listed as being written.

    python scripts/reading_minutes.py           # print the table
    python scripts/reading_minutes.py --write   # and put it in README.md, between its two marker comments
    python scripts/reading_minutes.py --check   # exit 1 when README.md's table is not the one printed
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
WORDS_A_MINUTE = 200
BEGIN = "<!-- reading-minutes: scripts/reading_minutes.py --write refreshes this table -->"
END = "<!-- reading-minutes end -->"
CORE = ("01", "02", "03", "04", "05")  # transforms, splitting, workers, training, timing workers (issue 28)

# The course's index: number, short title, the one question each notebook answers.
COURSE = [
    ("00", "setup and the question", "What did the blog measure, what did it get wrong, and what does its missing table say?"),
    ("01", "transforms", "What does each step of the pipeline do to an image, and what does it cost?"),
    ("02", "splitting", "How do I split the data without leaking augmentation into validation?"),
    ("03", "workers", "What is a worker, and what does the `DataLoader(...)` call need to start them safely?"),
    ("04", "training", "What does a correct training step look like, and how long does it wait for data?"),
    ("05", "time it right", "How do I time a loader so the number means something, and read data wait?"),
    ("06", "make each worker cheaper", "Where does a worker's time go, and how do I make each batch cheaper?"),
    ("07", "beyond the loader", "What if more workers are not enough: cached features, GPU decoding, torchrun?"),
    ("08", "worker memory", "Why does memory grow with every worker, and how do I keep it flat?"),
    ("09", "failure zoo", "Why does the loader hang or crash, and what fixes each case?"),
    ("10", "see the workers", "What is each worker doing, batch by batch?"),
    ("11", "specialised loaders", "When is a loader other than the DataLoader worth it?"),
    ("12", "when the files are far away", "What changes when every file takes a while to arrive?"),
    ("13", "your own loader", "How do I measure and tune my own loader?"),
]


def markdown_words(path: Path) -> int:
    """The words in PATH's markdown cells: what a learner reads, not what a cell prints."""
    nb = nbformat.read(path, as_version=4)
    return sum(len(cell.source.split()) for cell in nb.cells if cell.cell_type == "markdown")


def notebook(number: str, root: Path = ROOT) -> Path | None:
    """The notebook numbered NUMBER in root/notebooks, or None while it is being written."""
    found = sorted((root / "notebooks").glob(f"{number}_*.ipynb"))
    return found[0] if found else None


def table(root: Path = ROOT) -> str:
    """README's table of the notebooks with their words and minutes, and the totals under it."""
    rows = ["| notebook | the question it answers | words | minutes |", "| --- | --- | --- | --- |"]
    total = core = 0
    missing = []
    for number, title, question in COURSE:
        path = notebook(number, root)
        if path is None:
            rows.append(f"| {number} {title} | {question} | being written | being written |")
            missing.append(number)
            continue
        words = markdown_words(path)
        minutes = math.ceil(words / WORDS_A_MINUTE)
        total += minutes
        core += minutes if number in CORE else 0
        link = path.relative_to(root).as_posix()
        rows.append(f"| [{number} {title}]({link}) | {question} | {words:,} | {minutes} |")
    note = f" (without {', '.join(missing)}, being written)" if missing else ""
    rows += ["", f"Reading all of it takes {total} minutes{note}; the core path, notebooks "
                 f"{CORE[0]} to {CORE[-1]}, {core} minutes. Words are those of the markdown cells, read at "
                 f"{WORDS_A_MINUTE} a minute (`scripts/reading_minutes.py`)."]
    return "\n".join(rows)


def in_readme(text: str) -> str:
    """The table README.md holds between the markers."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers {BEGIN!r} and {END!r}")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="put the table in README.md")
    p.add_argument("--check", action="store_true", help="exit 1 when README.md's table differs")
    args = p.parse_args()
    readme = ROOT / "README.md"
    fresh = table()
    print(fresh)
    text = readme.read_text()
    if args.write:
        before, rest = text.split(BEGIN, 1) if BEGIN in text else (None, None)
        if before is None or END not in rest:
            print(f"README.md lacks the markers {BEGIN!r} and {END!r}", file=sys.stderr)
            return 2
        readme.write_text(before + BEGIN + "\n" + fresh + "\n" + END + rest.split(END, 1)[1])
    elif args.check and in_readme(text) != fresh:
        print("README.md's table of notebooks is out of date: run python scripts/reading_minutes.py --write",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

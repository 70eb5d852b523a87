"""How long each notebook takes to read, honestly, so README's table of the course follows the notebooks as they are cut.

A notebook's reading time is every word a learner meets, split on white space, at 200 words a minute, rounded up:
its markdown, its code, and the text its cells print (stream output, an error's traceback, a result's plain text;
not the text behind a figure). The table marks the answer's path, the notebooks that answer "which num_workers, and
why is it slow", and prints the limits on stored output: no cell prints more than OUTPUT_LINES lines, and all
notebooks together print at most OUTPUT_WORDS words. A notebook not yet in notebooks/ is listed as being written.

    python scripts/reading_minutes.py           # print the table
    python scripts/reading_minutes.py --write   # and put it in README.md, between its two marker comments
    python scripts/reading_minutes.py --check   # exit 1 when README.md's table is not the one printed
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
WORDS_A_MINUTE = 200
BEGIN = "<!-- reading-minutes: scripts/reading_minutes.py --write refreshes this table -->"
END = "<!-- reading-minutes end -->"
ANSWER = ("03", "05", "06", "10")  # the shortest path to "which num_workers, and why is it slow" (issue 37)
ANSWER_MINUTES, COURSE_MINUTES = 40, 110  # issue 37's targets
OUTPUT_LINES, OUTPUT_WORDS = 20, 4000     # issue 37: no cell prints more; all notebooks together print at most
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# The course's index: number, short title, the one question each notebook answers.
COURSE = [
    ("00", "setup and the question", "What did the blog measure, what did it get wrong, and what does its missing table say?"),
    ("01", "transforms and batches", "What does each step from file to batch do to an image, and what does it cost?"),
    ("02", "splitting", "How do I split the data without leaking augmentation into validation? (not about speed)"),
    ("03", "workers", "What is a worker, and what does the `DataLoader(...)` call need to start them safely?"),
    ("04", "training", "What does a training step look like, and how long does it wait for data?"),
    ("05", "time it right", "How do I time a loader so the number means something, and read data wait?"),
    ("06", "make each worker cheaper", "Where does a worker's time go, and how do I make each batch cheaper?"),
    ("07", "beyond the loader", "What if more workers are not enough: cached features, GPU decoding, torchrun?"),
    ("08", "worker memory", "Why does memory grow with every worker, and how do I keep it flat?"),
    ("09", "failure zoo", "Why does the loader hang or crash, and what fixes each case?"),
    ("10", "see the workers", "What is each worker doing, batch by batch?"),
    ("11", "specialised loaders", "When is a loader other than the DataLoader worth it?"),
    ("12", "when the files are far away", "What changes when every file takes a while to arrive?"),
    ("13", "your own loader", "How do I measure and tune my own loader?"),
    ("14", "appendix: the training defects", "Which of the blog's training defects change the result, and how does a run resume exactly?"),
]


@dataclass
class Words:
    """What a learner reads in one notebook: words of markdown, code and printed text, and its longest output."""
    markdown: int
    code: int
    output: int
    longest_output: int  # lines printed by the cell that prints the most

    @property
    def total(self) -> int:
        return self.markdown + self.code + self.output

    @property
    def minutes(self) -> int:
        return math.ceil(self.total / WORDS_A_MINUTE)


def printed(cell) -> str:
    """The text a code cell's stored outputs show: what a learner reads under it (a figure's text is not shown)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(ANSI.sub("", "\n".join(out.traceback)))
        elif out.output_type in ("execute_result", "display_data"):
            data = out.get("data", {})
            if not any(kind.startswith("image/") or "widget" in kind for kind in data):
                parts.append(data.get("text/plain", ""))
    return "\n".join(p.rstrip("\n") for p in parts if p.strip())


def words(path: Path) -> Words:
    """The words in PATH a learner reads: markdown, code, and the text the cells printed when last run."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = [printed(c) for c in code]
    return Words(markdown=sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown"),
                 code=sum(len(c.source.split()) for c in code),
                 output=sum(len(s.split()) for s in shown),
                 longest_output=max((len(s.splitlines()) for s in shown), default=0))


def notebook(number: str, root: Path = ROOT) -> Path | None:
    """The notebook numbered NUMBER in root/notebooks, or None while it is being written."""
    found = sorted((root / "notebooks").glob(f"{number}_*.ipynb"))
    return found[0] if found else None


def counted(root: Path = ROOT) -> dict[str, Words]:
    """Each written notebook's words, by number."""
    return {number: words(path) for number, *_ in COURSE if (path := notebook(number, root)) is not None}


def table(root: Path = ROOT) -> str:
    """README's table of the notebooks with their words and minutes, and the totals under it."""
    rows = ["| notebook | the question it answers | words (markdown + code + output) | minutes |",
            "| --- | --- | --- | --- |"]
    found = counted(root)
    total = answer = output = 0
    missing = []
    for number, title, question in COURSE:
        if number not in found:
            rows.append(f"| {number} {title} | {question} | being written | being written |")
            missing.append(number)
            continue
        w = found[number]
        total += w.minutes
        answer += w.minutes if number in ANSWER else 0
        output += w.output
        mark = " **(answer's path)**" if number in ANSWER else ""
        link = notebook(number, root).relative_to(root).as_posix()
        rows.append(f"| [{number} {title}]({link}){mark} | {question} | "
                    f"{w.markdown:,} + {w.code:,} + {w.output:,} | {w.minutes} |")
    note = f" (without {', '.join(missing)}, being written)" if missing else ""
    path = " → ".join(ANSWER)
    rows += ["", f"Reading all of it takes {total} minutes{note}; the answer's path, notebooks {path}, {answer} "
                 f"minutes. Every word counts, markdown, code and the text the cells print ({output:,} words of "
                 f"output in all), read at {WORDS_A_MINUTE} a minute (`scripts/reading_minutes.py`)."]
    return "\n".join(rows)


def over_limits(root: Path = ROOT) -> list[str]:
    """Each way the stored notebooks break issue 37's limits on minutes and printed output, in words."""
    found = counted(root)
    problems = [f"notebook {n} has a cell that prints {w.longest_output} lines (at most {OUTPUT_LINES})"
                for n, w in found.items() if w.longest_output > OUTPUT_LINES]
    output = sum(w.output for w in found.values())
    if output > OUTPUT_WORDS:
        problems.append(f"the notebooks print {output:,} words (at most {OUTPUT_WORDS:,})")
    total = sum(w.minutes for w in found.values())
    answer = sum(w.minutes for n, w in found.items() if n in ANSWER)
    if total > COURSE_MINUTES:
        problems.append(f"the course takes {total} minutes to read (at most {COURSE_MINUTES})")
    if answer > ANSWER_MINUTES:
        problems.append(f"the answer's path takes {answer} minutes to read (at most {ANSWER_MINUTES})")
    return problems


def in_readme(text: str) -> str:
    """The table README.md holds between the markers."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers {BEGIN!r} and {END!r}")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="put the table in README.md")
    p.add_argument("--check", action="store_true", help="exit 1 when README.md's table differs")
    p.add_argument("--limits", action="store_true", help="exit 1 when a notebook breaks the limits on minutes or output")
    args = p.parse_args()
    readme = ROOT / "README.md"
    fresh = table()
    print(fresh)
    if args.limits:
        problems = over_limits()
        for problem in problems:
            print(f"over the limit: {problem}", file=sys.stderr)
        if problems:
            return 1
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

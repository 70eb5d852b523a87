"""Every number the course reports as a measurement names its source, and the source holds it (docs/CLAIMS.md).

The prose read here: README.md, docs/*.md, results/README.md and every notebook's markdown cells. Nothing runs:
the test reads committed files only. How it reads them:

- A block is a paragraph, one list item or one table. A paragraph that ends with ':' lends its sources to the
  list items and the table after it; a table also takes the sources of the paragraph just before it (its caption).
- A measured number is a number with a unit of measurement (images/s, ms, s, %, MB, GB, GB/s, x, times, grey
  levels) in the block's text, or any number in the body of a table that names such a unit, outside its first
  column. A number joined to a
  measured one by ',', 'and', 'against', 'to', 'or', '/' or an arrow shares its unit ("984 against 1270 images/s").
  Numbers in `code`, in link targets and followed by a setting word (workers, threads, cores, px, ...) are settings.
- A source is a results file named in the block (`results/x.txt`, a link to it, or, in results/README.md, a bare
  file name such as `x.txt` or `x.{txt,csv,png}`), or a notebook cell's outputs: "(notebook 05, cell `abc123`)" from
  any page, "(cell `abc123`)" from a notebook's own markdown.
- The number must appear in a source at the text's precision: some number there, with at least as many decimals,
  rounds to it (1270 matches 1270.2; 4.2 matches 4.20; a % also matches a fraction, 86 % matches 0.86).
  "A / B = R", "A + B = R" and "A - B = R" are checked as arithmetic, at R's precision.
- A comparison quotes its verdict as the results file prints it, in double quotes: "Verdict over 3 runs, A against B:
  no measurable difference" must appear word for word in a source the block names (scripts/replicate_verdicts.py).
- ALLOWED lists the few numbers with a unit that report no measurement, each with its reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Numbers with a unit that are not measurements: (pattern around the number, why). Keep it short and reasoned.
ALLOWED = [
    (r"within 5 ?%|5 ?% of the best|[Uu]nder about 5 ?%|under 5 ?% data wait", "the course's rule, a threshold"),
    (r"80 ?% of the available memory|80 ?% of the memory", "bench's memory margin, a setting"),
    (r"at least 1\.3 ?x the best processes and 80 ?% of the CPU ceiling|90 ?% of the model's ceiling",
     "a target that was set, not met or measured"),
    (r"64 MB|1 MiB|3 MiB batches|--shm-size=2g", "Docker's default /dev/shm, sizes a test sets: not measured"),
    (r"10 times|ten times", "the blog's claim the course checks, not the course's measurement"),
    (r"a few GB|about 20 MB|about three minutes|about 3 minutes|twelve minutes",
     "install sizes and times, order of magnitude only"),
    (r"timeout=\d+|\d+ s (?:limit|timeout)|run's \d+ s limit|sleeps \d+ ms", "a time limit or a sleep: settings"),
    (r"\d+ batches of \d+ MiB in flight", "what the doctor computes for a faked machine, not a measurement"),
    (r"(?:a|one|two|16) batch(?:es)? (?:of )?\d+|\d+ MB batches|(?:201|200|100\.7|25\.2|12\.6) MB",
     "batch sizes in bytes follow from the batch's shape; a setting"),
]

UNIT = r"(?:images/s|img/s|ms\b|s\b|%|MB\b|MiB\b|GB/s|GB\b|x\b|×|times\b|grey levels)"
NUM = r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?"
SETTING_WORD = re.compile(r"\s*(?:workers?|threads?|cores?|px|batch(?:es)?|epochs?|repeats?|images(?!/)|JPEGs|files|"
                          r"steps?|ranks?|processes|entries|bytes?|tries|attempts?)\b")
JOIN = re.compile(r"^\s*(?:,\s*(?:and\s+)?|and|against|to|or|→|->|–|-|/|and then|then)\s*$")
TABLE_UNIT = r"images/s|\(s\)|milliseconds|\bms\b|%|\bMB\b|\d x\b|times|ratio"  # a table of measurements
CELL = re.compile(r"(?:notebook (\d\d),? )?cell `([\w-]+)`")
RESULTS = re.compile(r"(?:\.\./)?results/([\w./-]+?)(?:\.\{([\w,]+)\}|\.(txt|csv|ipynb))(?![\w])")
BARE = re.compile(r"(?<![/\w])([\w/-]+)(?:\.\{([\w,]+)\}|\.(txt|csv|ipynb))(?![\w])")


@dataclass
class Block:
    where: str
    text: str
    table: bool = False
    sources: list[str] = field(default_factory=list)


def strip_code(text: str) -> str:
    """The prose of TEXT: inline code and link targets blanked (same length, so positions keep)."""
    text = re.sub(r"`[^`]*`", lambda m: " " * len(m.group()), text)
    return re.sub(r"\]\(([^)]*)\)", lambda m: "](" + " " * len(m.group(1)) + ")", text)


def blocks(text: str, where: str) -> list[Block]:
    """TEXT's paragraphs, list items and tables; fenced code and headings left out."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    out: list[Block] = []
    current: list[str] = []
    kind = "para"

    def close() -> None:
        if current:
            out.append(Block(where, "\n".join(current), table=kind == "table"))
            current.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            close()
            continue
        is_table = stripped.startswith("|")
        is_item = bool(re.match(r"(?:[-*]|\d+\.)\s", stripped))
        if is_table != (kind == "table") or is_item:
            close()
            kind = "table" if is_table else "para"
        current.append(line)
    close()
    return out


def notebook_outputs(nb_path: Path) -> dict[str, str]:
    """Each code cell's outputs as text, by cell id."""
    nb = nbformat.read(nb_path, as_version=4)
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            for kind in ("text/plain", "text/markdown", "text/html"):
                value = out.get("data", {}).get(kind, "")
                parts.append("".join(value) if isinstance(value, list) else value)
        found[cell.id] = "\n".join(parts)
    return found


NOTEBOOKS = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def pages() -> list[tuple[str, str, str | None]]:
    """(name, markdown, the notebook's two-digit number or None) for every page the test reads."""
    found = [(p.relative_to(ROOT).as_posix(), p.read_text(), None)
             for p in [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             if p.exists()]
    for number, path in NOTEBOOKS.items():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                found.append((f"notebooks/{path.name} cell {cell.id}", cell.source, number))
    return found


def cited(block: Block, page: str, notebook: str | None) -> list[tuple[str, str]]:
    """(name, text) of every source BLOCK names; a name that resolves to nothing gives text None."""
    sources = []
    plain = block.text
    names = [(m.group(1), m.group(2), m.group(3)) for m in RESULTS.finditer(plain)]
    if page == "results/README.md":  # a bare name counts where results/ holds it
        names += [(m.group(1), m.group(2), m.group(3)) for m in BARE.finditer(plain)
                  if any((ROOT / "results" / f"{m.group(1)}.{e}").exists()
                         for e in (m.group(2).split(",") if m.group(2) else [m.group(3)]))]
    for stem, braces, ext in names:
        for e in (braces.split(",") if braces else [ext]):
            path = ROOT / "results" / f"{stem}.{e}"
            if e == "ipynb":
                sources.append((f"results/{stem}.{e}", "\n".join(notebook_outputs(path).values())
                                if path.exists() else None))
            elif e in ("txt", "csv"):
                sources.append((f"results/{stem}.{e}", path.read_text() if path.exists() else None))
    for m in CELL.finditer(plain):
        number = m.group(1) or notebook
        outputs = notebook_outputs(NOTEBOOKS[number]) if number in NOTEBOOKS else {}
        sources.append((f"notebook {number}, cell {m.group(2)}", outputs.get(m.group(2))))
    return sources


@dataclass
class Number:
    text: str
    start: int
    end: int
    unit: str | None

    @property
    def value(self) -> float:
        return float(self.text.replace(",", ""))

    @property
    def decimals(self) -> int:
        return len(self.text.split(".")[1]) if "." in self.text else 0


def measured(block: Block) -> list[Number]:
    """The numbers in BLOCK that report a measurement (the module docstring says which)."""
    prose = strip_code(block.text)
    numbers = [Number(m.group(), m.start(), m.end(), None) for m in re.finditer(NUM, prose)]
    for n in numbers:
        after = prose[n.end:]
        unit = re.match(r"\s?(" + UNIT + ")", after)
        if unit and not (unit.group(1) in ("x", "×") and re.match(r"\s?[x×]\s*\d", after)):
            n.unit = unit.group(1)
    for before, after in reversed(list(zip(numbers, numbers[1:]))):
        if before.unit is None and after.unit and JOIN.match(prose[before.end:after.start]):
            before.unit = after.unit
    lines = prose.splitlines()
    if block.table and re.search(TABLE_UNIT, lines[0] + " ".join(line.split("|")[1] for line in lines
                                                                 if line.count("|") > 1)):
        rows = [line for line in prose.splitlines() if not re.match(r"\s*\|[\s|:-]*\|\s*$", line)][1:]
        body = []
        for row in rows:
            first = row.index("|", row.index("|") + 1)  # the first column is the row's label
            offset = prose.index(row)
            body.append((offset + first, offset + len(row)))
        for n in numbers:
            if any(a <= n.start < b for a, b in body) and n.unit is None:
                n.unit = "(table)"
    kept = []
    for n in numbers:
        if n.unit is None or SETTING_WORD.match(prose[n.end:]) or re.search(r"(?:batch|num_workers=|torch|Python|notebooks?)\s*$",
                                                                            prose[:n.start]):
            continue
        if any(m.start() <= n.start < m.end() for pattern, _ in ALLOWED for m in re.finditer(pattern, prose)):
            continue
        kept.append(n)
    return kept


def derived(block: Block) -> list[tuple[Number, float]]:
    """R in every 'A / B = R', 'A + B = R' and 'A - B = R' of BLOCK: arithmetic the text does, checked."""
    prose = strip_code(block.text)
    out = []
    for m in re.finditer(r"(\d[\d,]*(?:\.\d+)?)\s*([/+−-])\s*(\d[\d,]*(?:\.\d+)?)\s*=\s*(\d+(?:\.\d+)?)", prose):
        a, b = (float(g.replace(",", "")) for g in m.group(1, 3))
        out.append((Number(m.group(4), m.start(4), m.end(4), "x"), {"/": a / b, "+": a + b}.get(m.group(2), a - b)))
    return out


def appears(number: Number, text: str) -> bool:
    """Whether some number in TEXT, with at least NUMBER's decimals, rounds to it (a % also as a fraction)."""
    half = 0.5 * 10 ** -number.decimals + 1e-9
    for m in re.finditer(r"\d+(?:,\d{3})*(?:\.\d+)?", text):
        raw = m.group().replace(",", "")
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        value = float(raw)
        if decimals >= number.decimals and abs(value - number.value) <= half:
            return True
        if number.unit == "%" and decimals >= number.decimals + 2 and abs(100 * value - number.value) <= half:
            return True
    return False


def problems() -> list[str]:
    """Every measured number without a source, or missing from the sources its block names."""
    found = []
    for page, text, notebook in pages():
        lead: list[tuple[str, str]] = []
        caption: list[tuple[str, str]] = []
        for block in blocks(text, page):
            sources = cited(block, page, notebook)
            is_item = bool(re.match(r"\s*(?:[-*]|\d+\.)\s", block.text))
            if block.table:
                sources = sources + caption + lead
            elif is_item:
                sources = sources + lead
            else:
                lead = sources if block.text.rstrip().endswith(":") else []
            caption = sources if not block.table else []
            texts = [t for _, t in sources if t is not None]
            missing = [name for name, t in sources if t is None]
            where = f"{page}: {' '.join(block.text.split())[:70]}..."
            if missing:
                found.append(f"{where} cites {missing}, which do not exist")
            for quoted in re.findall(r'"(Verdict[^"]*)"', block.text):
                quoted = " ".join(quoted.split())  # a line break in markdown is a space
                if not any(quoted in t for t in texts):
                    found.append(f"{where} the verdict \"{quoted}\" is not in {[name for name, _ in sources]}")
            checks = {n.start for n, _ in derived(block)}
            for n, value in derived(block):
                if abs(value - n.value) > 0.5 * 10 ** -n.decimals + 1e-9:
                    found.append(f"{where} {n.text} is not the ratio it computes ({value:.4f})")
            for n in measured(block):
                if n.start in checks:
                    continue
                if not texts:
                    found.append(f"{where} {n.text} {n.unit}: a measurement with no source")
                elif not any(appears(n, t) for t in texts):
                    found.append(f"{where} {n.text} {n.unit}: not in {[name for name, _ in sources]}")
    return found


def test_every_measured_number_is_in_its_source():
    found = problems()
    assert not found, f"{len(found)} numbers not traced (docs/CLAIMS.md):\n" + "\n".join(found)


@pytest.mark.parametrize("text, expected", [
    ("fast: 984 against 1270 images/s at 2 and 4 workers", ["984", "1270"]),
    ("`--workers 2 4` at 512 px, 4 workers, batch 32, within 5 % of the best", []),
    ("2.3 to 2.6 s, 86 %, 3.7 times, 1.83x, 4000 x 3000 px", ["2.3", "2.6", "86", "3.7", "1.83"]),
])
def test_what_counts_as_a_measurement(text, expected):
    assert [n.text for n in measured(Block("t", text))] == expected


def test_a_quoted_verdict_must_be_in_the_cited_file(tmp_path, monkeypatch):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "v.txt").write_text("Verdict over 3 runs, a against b: no measurable difference\n")
    (tmp_path / "README.md").write_text('Runs said "Verdict over 3 runs, a against b: faster" (results/v.txt).\n')
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "NOTEBOOKS", {})
    assert any("the verdict" in p for p in problems())
    (tmp_path / "README.md").write_text('Runs said "Verdict over 3 runs, a against b: no measurable difference" '
                                        '(results/v.txt).\n')
    assert problems() == []


def test_a_number_is_found_only_at_its_precision():
    source = "fast  loader  4  32  1270.2  1252.4\ndata wait 0.86\n"
    assert appears(Number("1270", 0, 0, "images/s"), source)
    assert not appears(Number("1271", 0, 0, "images/s"), source)
    assert not appears(Number("1270.3", 0, 0, "images/s"), source)
    assert appears(Number("86", 0, 0, "%"), source)


def test_replicate_verdicts_agrees_only_when_every_run_does(tmp_path):
    import subprocess
    import sys

    def run(*names: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "replicate_verdicts.py"), *names,
                               "--compare", "a", "b"], capture_output=True, text=True, timeout=60, cwd=tmp_path)

    apart = "Repeats, a: 10 11 12 13 14 images/s\nRepeats, b: 1 2 3 4 5 images/s\n"
    split = "Repeats, a: 10 11 12 13 14 images/s\nRepeats, b: 1 2 30 4 5 images/s\n"  # round 3 disagrees
    for name, text in (("r1.txt", apart), ("r2.txt", apart), ("r3.txt", split)):
        (tmp_path / name).write_text(text)
    assert "Verdict over 2 runs, a against b: faster" in run("r1.txt", "r2.txt").stdout
    assert "Verdict over 3 runs, a against b: no measurable difference" in run("r1.txt", "r2.txt", "r3.txt").stdout
    missing = run("r1.txt", "nope.txt")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope.txt" in missing.stderr

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
- And on the row its setting names: where the number's sentence (or its table cell, with the cell's row label and
  column header) names a setting (`8 workers`, `num_workers=8`, a pipeline blog/fast/gpu, `batch 32`, `run 4`), the
  number must be on a line of the source that names that setting or none of its kind (a table row by its columns,
  a run by the file's name). One setting holds for every number in the sentence; as many as there are numbers pair
  in order; a range ("0 to 4 workers") names no row. A number read off the wrong row fails, naming the row expected.
- A comparison quotes its verdict as the results file prints it, in double quotes: "Verdict over 3 runs, A against B:
  no measurable difference" must appear word for word in a source the block names (scripts/replicate_verdicts.py).
- ALLOWED lists the few numbers with a unit that report no measurement, each with its reason.
"""
from __future__ import annotations

import functools
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


# Where a number must be found: the row its setting names. A setting is one of these kinds, named in the prose as
# "8 workers", "num_workers=8", the pipeline's name (blog, fast, gpu), "batch 32" and "run 4"; in a results file as
# the same words on a line, a column of that name in a table (`workers`, `batch`, `pipeline`, `run`) or, for the
# run, the file's name (`storage_cpu2_run4.txt`).
KINDS = {
    "num_workers": (r"(?<![\w.])(\d+(?:(?:,|,? and|,? or) \d+)*)(?: thread| process)? workers?\b(?! per)"
                    r"|(?<![\w.])(no) workers\b|num_workers[ =](\d+)", ("workers", "num_workers")),
    "pipeline": (r"\b((?i:blog|fast)|gpu)\b(?!-)", ("pipeline",)),
    "batch": (r"\bbatch (?:of |size )?(\d+)\b|(?<![\w.])b(\d+)\b", ("batch", "batch_size")),
    "run": (r"(?<![a-z])run ?(\d+)\b(?![-\d])", ("run",)),
}
RANGE = re.compile(r"(?:\d+|no) (?:to|-|–) $")  # "0 to 4 workers", "from 2 workers on": a range names no one row


def named(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, position) of every setting TEXT names; a range of them names none."""
    found = []
    for kind, (pattern, _) in KINDS.items():
        for m in re.finditer(pattern, text):
            if RANGE.search(text[:m.start()]) or re.match(r" on\b", text[m.end():]):
                continue
            values = [v for g in m.groups() if g is not None for v in re.split(r",? (?:and|or) |, ", g)]
            found += [(kind, "0" if v == "no" else v.lower(), m.start()) for v in values]
    return found


def settings_of(block: Block, numbers: list[Number]) -> dict[int, dict[str, set[str]]]:
    """The settings each of NUMBERS (by start) is measured at: those named in its clause (its sentence, or its
    table cell with the cell's row label and column header). One value of a kind in a clause holds for every number
    in it; as many values as numbers pair in order ("984 against 1270 images/s at 2 and 4 workers"); otherwise any."""
    text = re.sub(r"`", " ", re.sub(r"\]\(([^)]*)\)", lambda m: "](" + " " * len(m.group(1)) + ")", block.text))
    clauses: list[tuple[int, int, list[tuple[str, str, int]]]] = []
    if block.table:
        lines = text.splitlines(keepends=True)
        header = [c for c in lines[0].split("|")[1:-1]]
        offset = 0
        for i, line in enumerate(lines):
            cells = line.split("|")[1:-1]
            start = offset + line.index("|") + 1
            label = named(cells[0]) if cells else []
            if header and re.search(r"\b(?:run|num_workers|workers)\b", header[0]) and cells:
                kind = "run" if "run" in header[0] else "num_workers"
                label += [(kind, v, 0) for v in re.findall(r"^\s*(\d+)\s*$", cells[0])]
            for j, cell in enumerate(cells):
                column = named(header[j]) if i > 0 and j < len(header) else []
                if i > 0 and j < len(header) and re.search(r"\b(?:num_workers|workers)\b", header[0]):
                    column += [("num_workers", v, 0) for v in re.findall(r"^\s*(\d+)\s*$", header[j])]
                own = named(cell)
                own_kinds = {k for k, _, _ in own}
                inherited = [s for s in label + column if s[0] not in own_kinds]
                clauses.append((start, start + len(cell), own + [(k, v, -1) for k, v, _ in inherited]))
                start += len(cell) + 1
            offset += len(line)
    else:
        start = 0
        for m in re.finditer(r"(?<!\d)\.(?!\d)|;|$", text):
            clauses.append((start, m.end(), [(k, v, p + start) for k, v, p in named(text[start:m.end()])]))
            start = m.end()
    out: dict[int, dict[str, set[str]]] = {}
    for a, b, found in clauses:
        inside = [n for n in numbers if a <= n.start < b]
        for kind in KINDS:
            values = [v for k, v, _ in found if k == kind]
            if not values:
                continue
            own = [v for k, v, p in found if k == kind and p >= 0]
            spans = any(re.fullmatch(r"\s*\S*\s*to\s*", text[x.end:y.start]) for x, y in zip(inside, inside[1:]))
            if len(own) == len(inside) and len(own) > 1 and not spans:
                for n, v in zip(inside, own):
                    out.setdefault(n.start, {})[kind] = {v}
            else:
                for n in inside:
                    out.setdefault(n.start, {})[kind] = set(own or values)
    return out


@functools.lru_cache(maxsize=None)
def rows(name: str, text: str) -> list[tuple[str, dict[str, set[str]]]]:
    """Each line of a source with the settings it names, by its words, its table's columns or the file's name."""
    lines = text.splitlines()
    columns: dict[int, dict[str, tuple[int, int] | int]] = {}  # line index -> kind -> span (txt) or field (csv)
    if name.endswith(".csv") and lines:
        header = lines[0].split(",")
        fields = {kind: header.index(c) for kind, (_, cols) in KINDS.items() for c in cols if c in header}
        columns = {i: fields for i in range(1, len(lines))}
    for i, line in enumerate(lines):
        if re.fullmatch(r"\s*-{3,}(?:\s+-{3,})+\s*", line) and i > 0:
            spans = [m.span() for m in re.finditer(r"-+", line)]
            heads = [lines[i - 1][a:b].strip() for a, b in spans]
            found = {kind: spans[heads.index(c)] for kind, (_, cols) in KINDS.items() for c in cols if c in heads}
            j = i + 1
            while j < len(lines) and lines[j].strip():
                columns[j] = found
                j += 1
    file_run = re.findall(r"run(\d+)(?![-\d])", name)
    out = []
    for i, line in enumerate(lines):
        said: dict[str, set[str]] = {}
        for kind, value, _ in named(line):
            said.setdefault(kind, set()).add(value)
        for kind, where in columns.get(i, {}).items():
            if isinstance(where, int):
                cells = line.split(",")
                value = cells[where].strip() if where < len(cells) else ""
            else:
                value = line[where[0]:where[1]].strip()
            if value:
                said.setdefault(kind, set()).add(value.lower())
        if file_run:
            said["run"] = set(file_run)
        out.append((line, said))
    return out


def wrong_row(number: Number, settings: dict[str, set[str]], sources: list[tuple[str, str]]) -> str | None:
    """None when NUMBER is on a line of SOURCES that names its SETTINGS (or none of their kind, where a source's
    lines tell that kind apart); else the row it expected and the lines it was found on."""
    seen = []
    for name, text in sources:
        table = rows(name, text)
        apart = {kind for kind in settings
                 if len({v for _, said in table for v in said.get(kind, ())}) > 1 or
                 (kind == "run" and any(said.get("run") for _, said in table))}
        for line, said in table:
            if not appears(number, line):
                continue
            if all(not said.get(kind) or said[kind] & settings[kind] for kind in apart):
                return None
            seen.append(f"{name}: {' '.join(line.split())[:90]}")
    if not seen:
        return None  # not in the sources at all: the caller says so
    wanted = ", ".join(f"{kind} {' or '.join(sorted(values))}" for kind, values in settings.items())
    return f"expected on the row for {wanted}; found only on {seen[:3]}"


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
            numbers = measured(block)
            settings = settings_of(block, numbers)
            present = [(name, t) for name, t in sources if t is not None]
            for n in numbers:
                if n.start in checks:
                    continue
                if not texts:
                    found.append(f"{where} {n.text} {n.unit}: a measurement with no source")
                elif not any(appears(n, t) for t in texts):
                    found.append(f"{where} {n.text} {n.unit}: not in {[name for name, _ in sources]}")
                elif n.start in settings and (wrong := wrong_row(n, settings[n.start], present)):
                    found.append(f"{where} {n.text} {n.unit}: {wrong}")
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


def test_settings_pair_with_their_numbers():
    block = Block("t", "fast: 984 against 1270 images/s at 2 and 4 workers; 0 to 4 workers read 35 to 41 images/s")
    numbers = measured(block)
    settings = settings_of(block, numbers)
    assert [settings.get(n.start) for n in numbers] == [
        {"num_workers": {"2"}, "pipeline": {"fast"}}, {"num_workers": {"4"}, "pipeline": {"fast"}}, None, None]


EPOCHS = ("blog 512px b4   0 workers: epoch  19.61 s,  102 images/s, data wait 86%\n"
          "blog 512px b4   8 workers: epoch   4.20 s,  477 images/s, data wait 7%\n"
          "blog 512px b4  12 workers: epoch   4.37 s,  457 images/s, data wait 8%\n")


def test_a_number_from_another_row_fails_and_names_the_row(tmp_path, monkeypatch):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "e.txt").write_text(EPOCHS)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "NOTEBOOKS", {})
    (tmp_path / "README.md").write_text("The blog's setup took 4.20 s with 8 workers (results/e.txt).\n")
    assert problems() == []
    (tmp_path / "README.md").write_text("The blog's setup took 4.37 s with 8 workers (results/e.txt).\n")
    found = problems()
    assert len(found) == 1 and "expected on the row for num_workers 8, pipeline blog" in found[0], found
    assert "12 workers" in found[0]  # and it says where the number was


def moved(number: Number, settings: dict[str, set[str]], sources: list[tuple[str, str]]) -> Number | None:
    """NUMBER's column on another row of the same table of SOURCES, a row that names another of its SETTINGS, at
    NUMBER's precision and found on no row that names them: the mistake of reading the wrong row (None where the
    sources offer no such value)."""
    token = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")

    def fits(said: dict[str, set[str]]) -> bool:
        return not any(said.get(kind) and not said[kind] & values for kind, values in settings.items())

    for name, text in sources:
        table = rows(name, text)
        for line, said in table:
            values = token.findall(line)
            column = next((k for k, v in enumerate(values)
                           if fits(said) and appears(number, v)), None)
            if column is None:
                continue
            for other_line, other_said in table:
                other_values = token.findall(other_line)
                if fits(other_said) or len(other_values) != len(values):
                    continue
                if len((other_values[column] + ".").split(".")[1]) < number.decimals:
                    continue
                other = Number(f"{float(other_values[column]):.{number.decimals}f}", 0, 0, number.unit)
                if other.value != number.value and not any(
                        appears(other, line_) for name_, text_ in sources for line_, said_ in rows(name_, text_)
                        if fits(said_)):
                    return other
    return None


def test_every_claim_at_a_setting_fails_with_another_rows_value():
    """The check bites on the course's own prose: each number tied to a setting, swapped for a value found only on
    rows of the same cited files that name another setting, is reported, naming the row it expected."""
    tried, passed = 0, []
    for page, text, notebook in pages():
        for block in blocks(text, page):
            sources = [(name, t) for name, t in cited(block, page, notebook) if t is not None]
            numbers = measured(block)
            settings = settings_of(block, numbers)
            for n in numbers:
                other = moved(n, settings[n.start], sources) if n.start in settings else None
                if other is not None:
                    tried += 1
                    if not (wrong_row(other, settings[n.start], sources) or "").startswith("expected on the row"):
                        passed.append(f"{page}: {n.text} -> {other.text}")
    assert tried and not passed, f"{len(passed)} of {tried} moved numbers passed: {passed}"

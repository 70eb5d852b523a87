"""Every pointer to a notebook names it, so a renumbering or a new title cannot leave a wrong one.

Read: README.md, docs/*.md, results/README.md and every notebook's markdown cells, code left out.

- A link to a notebook, `[TEXT](...NN_name.ipynb)`, points at a file that exists, and TEXT is "NN · T" or
  "notebook NN · T": NN is the file's own number and T begins the notebook's title (its first heading,
  "# NN · Title"), whole words.
- "notebook NN" anywhere else in the prose is a pointer without its title, and fails.

README's table of notebooks is left out: scripts/reading_minutes.py writes it from the notebooks themselves and
tests/test_docs.py checks that it is current.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*?(\d\d)_[\w-]+\.ipynb)(?:#[^)\s]*)?\)")
MENTION = re.compile(r"\b[Nn]otebooks? (\d\d)\b")
TEXT = re.compile(r"^(?:[Nn]otebooks? )?(\d\d) · (.+)$", re.S)


def titles() -> dict[str, str]:
    """Each notebook's title by its number: its first heading without '# NN · '."""
    found = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
        match = re.match(r"#\s+(\d\d) · (.+)", first)
        assert match and match.group(1) == path.name[:2], f"{path.name}: its first line is not '# {path.name[:2]} · Title'"
        found[match.group(1)] = match.group(2).strip()
    return found


def without_code(text: str) -> str:
    """TEXT with fenced and inline code blanked: a file name in code is not a pointer."""
    text = re.sub(r"```.*?```", lambda m: " " * len(m.group()), text, flags=re.S)
    return re.sub(r"`[^`\n]*`", lambda m: " " * len(m.group()), text)


def begins_title(words: str, title: str) -> bool:
    """WORDS are the title's first whole words (case and spacing aside)."""
    words, title = " ".join(words.split()).lower().rstrip(".,;:"), " ".join(title.split()).lower()
    return bool(words) and title.startswith(words) and (len(words) == len(title) or not title[len(words)].isalnum())


def problems(text: str, where: str, base: Path, known: dict[str, str]) -> list[str]:
    """What is wrong with TEXT's pointers to notebooks; BASE is the folder its relative links start from."""
    prose, found = without_code(text), []
    for link in LINK.finditer(prose):
        label, target, number = link.group(1), link.group(2), link.group(3)
        shown = TEXT.match(label.strip())
        if not (base / target).is_file():
            found.append(f"{where}: [{label}]({target}) points at no file")
        elif number not in known:
            found.append(f"{where}: [{label}]({target}) is not a numbered notebook")
        elif not shown:
            found.append(f"{where}: [{label}]({target}) should read [{number} · {known[number]}]({target})")
        elif shown.group(1) != number or not begins_title(shown.group(2), known[number]):
            found.append(f"{where}: [{label}]({target}) names another notebook than {target}, "
                         f"'{number} · {known[number]}'")
    bare = LINK.sub(lambda m: " " * len(m.group()), prose)
    for mention in MENTION.finditer(bare):
        number = mention.group(1)
        title = known.get(number, "no such notebook")
        found.append(f"{where}: '{mention.group()}' without its title: write [notebook {number} · {title}](...)")
    return found


def readme_table(readme: str) -> str:
    """The table of notebooks scripts/reading_minutes.py wrote into README, between its markers."""
    spec = importlib.util.spec_from_file_location("reading_minutes", ROOT / "scripts" / "reading_minutes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.in_readme(readme)


def pages() -> list[tuple[str, str, Path]]:
    """(where, markdown, base folder) for every page the course's prose is on."""
    readme = (ROOT / "README.md").read_text()
    readme = readme.replace(readme_table(readme), "")
    found = [("README.md", readme, ROOT), ("results/README.md", (ROOT / "results" / "README.md").read_text(),
                                          ROOT / "results")]
    found += [(f"docs/{p.name}", p.read_text(), ROOT / "docs") for p in sorted((ROOT / "docs").glob("*.md"))]
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                found.append((f"notebooks/{path.name} cell {cell.id}", cell.source, NOTEBOOKS))
    return found


def test_every_pointer_to_a_notebook_carries_its_title():
    known = titles()
    found = [problem for where, text, base in pages() for problem in problems(text, where, base, known)]
    assert not found, f"{len(found)} pointers to notebooks without their title:\n" + "\n".join(found)


def test_a_renumbered_or_untitled_pointer_fails():
    known = titles()
    first, second = sorted(known)[5:7]
    name = {n: next(NOTEBOOKS.glob(f"{n}_*.ipynb")).name for n in (first, second)}
    right = f"[{first} · {known[first]}]({name[first]}) and [notebook {second} · {known[second]}]({name[second]})"
    assert problems(right, "page", NOTEBOOKS, known) == []
    swapped = f"[{first} · {known[first]}]({name[second]})"
    bare = f"as notebook {first} showed"
    numbers_only = f"[{first}]({name[first]})"
    gone = f"[{first} · {known[first]}]({first}_no_such_notebook.ipynb)"
    in_code = f"`notebook {first}` and `[{first}]({name[first]})`"
    for wrong in (swapped, bare, numbers_only, gone):
        assert len(problems(wrong, "page", NOTEBOOKS, known)) == 1, wrong
    assert problems(in_code, "page", NOTEBOOKS, known) == []

"""README for the learner, the manual in docs/: links that resolve, a README that stays short, one list of defects.

Numbers in these pages are checked by tests/test_claims.py; this module checks their shape and their links.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md",
         ROOT / "results" / "h200_notebooks" / "README.md"]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors PAGE's headings give, outside fenced code."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)}


def broken_links(page: Path) -> list[str]:
    """Every relative link in PAGE whose file, or whose anchor in a markdown file, does not exist."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    found = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            found.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            found.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert page.exists()
    assert not broken_links(page)


def test_a_broken_link_is_found(tmp_path, monkeypatch):
    (tmp_path / "there.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md) [ok](there.md#a-heading) [web](https://example.org/x) "
                    "[gone](missing.md) [bad anchor](there.md#nope)\n```\n[in code](nowhere.md)\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [line.split(": ")[1] for line in broken_links(page)] == ["missing.md (no such file)",
                                                                    "there.md#nope (no such heading)"]


def test_readme_is_for_the_learner_and_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the manual belongs in docs/"


def reading_minutes():
    """scripts/reading_minutes.py as a module."""
    spec = importlib.util.spec_from_file_location("reading_minutes", ROOT / "scripts" / "reading_minutes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reading_minutes"] = module  # a dataclass needs its module registered
    spec.loader.exec_module(module)
    return module


def test_readmes_table_of_notebooks_is_the_one_the_script_prints():
    script = reading_minutes()
    assert script.in_readme((ROOT / "README.md").read_text()) == script.table(), \
        "README.md's table of notebooks is out of date: run python scripts/reading_minutes.py --write"


def test_reading_minutes_count_markdown_code_and_printed_text_but_not_a_figure(tmp_path):
    import nbformat

    script = reading_minutes()
    (tmp_path / "notebooks").mkdir()
    code = nbformat.v4.new_code_cell("print('read'*50)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="read " * 50 + "\n"),
                    nbformat.v4.new_output("display_data", data={"image/png": "", "text/plain": "<Figure " + "x " * 300 + ">"})]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("word " * 201), code])
    nbformat.write(nb, tmp_path / "notebooks" / "01_transforms.ipynb")
    table = script.table(tmp_path)
    assert "| [01 transforms and batches](notebooks/01_transforms.ipynb) | " in table, table
    assert "| 201 + 1 + 50 | 2 |" in table and "being written" in table, table


def test_the_limits_name_a_cell_that_prints_too_much(tmp_path):
    import nbformat

    script = reading_minutes()
    (tmp_path / "notebooks").mkdir()
    cell = nbformat.v4.new_code_cell("for i in range(30): print(i)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="".join(f"{i}\n" for i in range(30)))]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "notebooks" / "05_timing_workers.ipynb")
    assert script.over_limits(tmp_path) == ["notebook 05 has a cell that prints 30 lines (at most 20)"]
    cell.outputs[0]["text"] = "".join(f"{i}\n" for i in range(20))
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "notebooks" / "05_timing_workers.ipynb")
    assert script.over_limits(tmp_path) == []


def defect_names(text: str, pattern: str) -> list[tuple[str, str]]:
    return re.findall(pattern, text, flags=re.M)


def test_readme_and_docs_number_and_name_the_defects_alike():
    readme = (ROOT / "README.md").read_text().split("## What the blog experiment gets wrong", 1)[1].split("\n## ")[0]
    listed = defect_names(readme, r"^\| (\d+[a-c]?) \| \*\*(.+?)\*\* \|")
    table = defect_names((ROOT / "docs" / "defects.md").read_text(), r"^\| (\d+[a-c]?) \| \*\*(.+?)\*\* \|")
    numbers = [n for n, _ in listed]
    assert len(numbers) >= 10 and len(set(numbers)) == len(numbers), numbers
    assert listed == table


def test_every_defect_named_in_the_course_is_one_the_list_numbers():
    """"defect 8" once meant three things; now a notebook or page may cite only a number the list gives."""
    import nbformat

    listed = dict(defect_names((ROOT / "docs" / "defects.md").read_text(), r"^\| (\d+[a-c]?) \| \*\*(.+?)\*\* \|"))
    texts = {p.name: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        texts[path.name] = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    unknown = [(name, n) for name, text in texts.items()
               for n in re.findall(r"\b[Dd]efects? (\d+[a-c]?)\b", text) if n not in listed]
    assert not unknown, f"defect numbers the list does not give: {unknown}"


def test_the_notebooks_meet_the_limits_on_reading_time_and_printed_output():
    """Issue 37: the course in 110 honest minutes, the answer's path in 40, no cell printing past 20 lines."""
    assert reading_minutes().over_limits() == []

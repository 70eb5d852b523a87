"""The rules the package keeps, so that a change that breaks one fails here rather than in review."""
import ast
import os
import sys
from pathlib import Path

import pytest

from helpers.processes import run_group

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "helpers").rglob("*.py"))


def modules_loaded_by(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after STATEMENT; a fresh one, so nothing loaded earlier counts."""
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    result = run_group([sys.executable, "-c", code], cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_trainers_import_neither_matplotlib_nor_the_demos():
    loaded = modules_loaded_by("import helpers.training.fit, helpers.training.ddp, helpers.training.features")
    assert "helpers.training.ddp" in loaded
    assert not {m for m in loaded if m.split(".")[0] == "matplotlib"} and "helpers.lessons.demos" not in loaded


def test_the_slider_imports_neither_the_model_nor_the_trainer():
    loaded = modules_loaded_by("import helpers.lessons.widgets")
    assert "helpers.timing.measure" in loaded
    assert not loaded & {"helpers.training.model", "helpers.training.loop", "helpers.training.fit", "helpers.timing.bench"}


def module_name(path: Path) -> str:
    """helpers.part.module for a file under helpers/ (a package's __init__ is the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> dict[str, set[str]]:
    """Every helpers module PATH imports, at the top or inside a function, with the names it takes from each."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "helpers":
                    found.setdefault(alias.name, set())
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module.split(".")[0] != "helpers":
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if submodule in NAMES:  # from helpers.part import module
                    found.setdefault(submodule, set())
                else:
                    found.setdefault(module, set()).add(alias.name)
    return found


NAMES = {module_name(p) for p in MODULES}
GRAPH = {module_name(p): imports_of(p) for p in MODULES}
PART_RULES = {  # part -> the parts it must not import, and why
    "helpers.training": ({"helpers.app", "helpers.lessons"}, "training runs without the command line and the figures"),
    "helpers.loading": ({"helpers.training", "helpers.timing", "helpers.app", "helpers.lessons"},
                        "the data side is the bottom floor: a loader needs no model, no clock and no parser"),
}
SEAM = "helpers.training.loop"  # the one module of training that timing may import: the step it times
LONG = {  # a module past LONG_LINES, with why it still holds one concern
    "helpers.app.commands": "the command line: each command's options beside its action; splitting it by command "
                            "would scatter the one table a reader scans for `python -m helpers --help`",
}
LONG_LINES = 400


@pytest.mark.parametrize("part", sorted(PART_RULES))
def test_each_part_imports_only_the_parts_below_it(part):
    forbidden, why = PART_RULES[part]
    crossings = [f"{m} -> {t}" for m, targets in GRAPH.items() if m.startswith(part + ".")
                 for t in targets if any(t == f or t.startswith(f + ".") for f in forbidden)]
    assert crossings == [], why


def test_timing_reaches_training_only_through_the_step_it_times():
    crossings = [f"{m} -> {t}" for m, targets in GRAPH.items() if m.startswith("helpers.timing.")
                 for t in targets if t.startswith("helpers.training") and t != SEAM]
    assert crossings == []


def test_the_top_level_modules_import_no_part():
    top = [m for m in GRAPH if m.count(".") == 1 and m != "helpers.__main__"]
    crossings = [f"{m} -> {t}" for m in top for t in GRAPH[m] if t.count(".") >= 2 or t in PARTS]
    assert crossings == [], "errors, files, options, machine, progress and processes are the ground every part stands on"


PARTS = {"helpers.loading", "helpers.training", "helpers.timing", "helpers.lessons", "helpers.app"}


def test_the_top_level_holds_at_most_eight_modules():
    top = sorted(p.name for p in (ROOT / "helpers").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= 8, top
    assert sorted(p.name for p in (ROOT / "helpers").iterdir() if p.is_dir() and p.name != "__pycache__") == \
        sorted(p.rpartition(".")[2] for p in PARTS)


def test_no_import_circle_lazy_imports_included():
    def circle_from(start: str) -> list[str] | None:
        stack, on_path = [(start, iter(sorted(GRAPH.get(start, ()))))], [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.pop()
            elif child == start:
                return on_path + [start]
            elif child not in on_path and child in GRAPH and child not in done:
                stack.append((child, iter(sorted(GRAPH[child]))))
                on_path.append(child)
        return None

    done: set[str] = set()
    circles = []
    for module in sorted(GRAPH):
        if module not in PARTS and module != "helpers":
            found = circle_from(module)
            if found:
                circles.append(" -> ".join(found))
        done.add(module)
    assert circles == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT / "helpers")))
def test_a_long_module_says_why_it_holds_one_concern(path):
    """Past LONG_LINES lines a module probably holds two concerns: split it by what its parts answer, or say in LONG why not."""
    name, lines = module_name(path), len(path.read_text().splitlines())
    assert lines <= LONG_LINES or name in LONG, f"{name}: {lines} lines; split it by concern, or give a reason in LONG"


def test_every_reason_for_a_long_module_is_still_needed():
    stale = [m for m in LONG if len((ROOT / (m.replace(".", "/") + ".py")).read_text().splitlines()) <= LONG_LINES]
    assert stale == []


def test_no_private_name_is_imported_across_modules():
    crossings = [f"{m}: {t}.{n}" for m, targets in GRAPH.items() for t, names in targets.items()
                 for n in names if n.startswith("_")]
    assert crossings == []


def test_the_data_and_notebook_folders_follow_their_environment_variables(tmp_path):
    """An installed package must not write into site-packages: both folders can be pointed elsewhere."""
    code = "from helpers.loading.samples import sample_dir; from helpers.app.notebooks import NOTEBOOK_DIR; print(sample_dir(), NOTEBOOK_DIR)"
    env = {**os.environ, "HELPERS_DATA_DIR": str(tmp_path / "d"), "HELPERS_NOTEBOOK_DIR": str(tmp_path / "nb")}
    result = run_group([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "d" / "sample"), str(tmp_path / "nb")]

"""The rules the package keeps, so that a change that breaks one fails here rather than in review."""
import ast
import os
import sys
from pathlib import Path

import pytest

from helpers.processes import run_group

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "helpers").rglob("*.py"))
MAX_LINES = 300


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


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_module_is_longer_than_the_limit(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"split {path.name} by what its parts answer"


def test_no_private_name_is_imported_across_modules():
    crossings = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("helpers")):
                crossings += [f"{path.name}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
    assert crossings == []


def test_the_data_and_notebook_folders_follow_their_environment_variables(tmp_path):
    """An installed package must not write into site-packages: both folders can be pointed elsewhere."""
    code = "from helpers.loading.samples import sample_dir; from helpers.app.notebooks import NOTEBOOK_DIR; print(sample_dir(), NOTEBOOK_DIR)"
    env = {**os.environ, "HELPERS_DATA_DIR": str(tmp_path / "d"), "HELPERS_NOTEBOOK_DIR": str(tmp_path / "nb")}
    result = run_group([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "d" / "sample"), str(tmp_path / "nb")]

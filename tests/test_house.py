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


def test_timing_draws_no_figure():
    """timing/ measures; the figures live in lessons/, so a measurement never loads matplotlib, even lazily."""
    drawing = [f"{module_name(p)}:{node.lineno}" for p in MODULES if module_name(p).startswith("helpers.timing")
               for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                   (name or "").split(".")[0] == "matplotlib"
                   for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]))]
    assert drawing == []


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


# --- following one parameter through the calls that pass it on -------------------------------------------------------
# A walk starts at one parameter of one function and follows it, and every value computed from it, into each helpers
# function or class that receives one as an argument, and into every dataclass it is packed into: the record then
# carries it on, and the module that defines the record is opened on the way. A value stored in an attribute or an
# item, or formatted into a message (an f-string), ends its trip there. Splats (*a, **kw) and calls on objects
# (x.method()) are not followed. The modules visited are what a reader opens to follow it.
#
# The counts are stated, not hoped for: WALKS gives each start the count the walk finds today as its cap (a change that
# sends a value through more modules fails, and says where it went) or None where the count is only reported, for
# code another change is rewriting. What the walk found on 2026-12-06, records followed: compare 7, the cached command
# 18, fit 18, sweep_workers 17, the bench command 23. The cached command was 19 until config_from_args moved beside
# TrainConfig's fields (training/config.py), so the options no longer pass through app/cli.py on their way.
# The aim of 8 is not met, honestly: the command builds its loaders from its options, and making
# a loader reaches 9 modules of loading/ (loaders, data, samples, splits, transforms, gpu_decode, storage for
# --read-latency-ms, resume, verify for --strict-data); compare's own 7 and the printed table (timing/tables) add
# the rest. Below 8 only by building the loaders where the walk cannot see (a splat, a method), which hides the trip.

WALKS = {  # where a parameter starts: (the modules it may reach, or None to report only; why)
    ("helpers.training.features", "compare", "config"): (7, "compare receives the loaders; it does not build the data"),
    ("helpers.app.commands", "cached", "args"): (18, "the options build the loaders (loading/, the storage model for "
                                                     "--read-latency-ms since issue 35) and the head's fit"),
    ("helpers.training.fit", "fit", "config"): (None, "reported: training/autotune.py is being rewritten"),
    ("helpers.timing.bench", "sweep_workers", "options"): (None, "reported: timing/bench.py is being rewritten"),
    ("helpers.app.commands", "bench", "args"): (None, "reported: the bench command packs them in one BenchOptions"),
}


class Source:
    """One module's definitions and top-level imports, for resolving the names its calls use."""

    def __init__(self, path: Path) -> None:
        self.name = module_name(path)
        self.tree = ast.parse(path.read_text())
        self.package = self.name if path.name == "__init__.py" else self.name.rpartition(".")[0]
        self.defs = {n.name: n for n in self.tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        self.imports = names_imported(self.tree.body, self.package)


def names_imported(body: list[ast.stmt], package: str) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, name) for `from m import name`, (module, None) for a module, in BODY's statements."""
    names: dict[str, tuple[str, str | None]] = {}
    for node in (n for statement in body for n in ast.walk(statement)):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                whole = f"{module}.{alias.name}"
                names[alias.asname or alias.name] = (whole, None) if whole in NAMES else (module, alias.name)
        elif isinstance(node, ast.Import):
            names.update({alias.asname: (alias.name, None) for alias in node.names if alias.asname})
    return names


SOURCES = {s.name: s for s in map(Source, MODULES)}
RECORDS = {name for s in SOURCES.values() for name, d in s.defs.items() if isinstance(d, ast.ClassDef)
           and any("dataclass" in ast.unparse(decorator) for decorator in d.decorator_list)}


def carries(expr: ast.AST, tracked: set[str], records: bool = False) -> bool:
    """Whether EXPR's value holds a tracked one (a message and a condition's test do not; a record built from it
    does only when RECORDS, the walk that follows values into the dataclasses they are packed into)."""
    if isinstance(expr, ast.Name):
        return expr.id in tracked
    if isinstance(expr, ast.JoinedStr) or (not records and isinstance(expr, ast.Call)
                                           and isinstance(expr.func, ast.Name) and expr.func.id in RECORDS):
        return False
    if isinstance(expr, ast.IfExp):
        return carries(expr.body, tracked, records) or carries(expr.orelse, tracked, records)
    return any(carries(child, tracked, records) for child in ast.iter_child_nodes(expr))


def bound(target: ast.AST) -> set[str]:
    """The names an assignment binds; a value stored in an attribute or an item is put down there."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {name for t in target.elts for name in bound(t)}
    return bound(target.value) if isinstance(target, ast.Starred) else set()


def defined(source: Source, func: ast.expr, local: dict) -> tuple[Source, ast.FunctionDef | ast.ClassDef] | None:
    """The helpers function or class a call names, and its module."""
    target = None
    if isinstance(func, ast.Name):
        if func.id in source.defs and func.id not in local:
            target = source, source.defs[func.id]
        elif (found := local.get(func.id) or source.imports.get(func.id)) and found[1] and found[0] in SOURCES:
            target = SOURCES[found[0]], SOURCES[found[0]].defs.get(found[1])
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        found = local.get(func.value.id) or source.imports.get(func.value.id)
        if found and found[1] is None and found[0] in SOURCES:
            target = SOURCES[found[0]], SOURCES[found[0]].defs.get(func.attr)
    return None if target is None or target[1] is None else target


def callee(source: Source, func: ast.expr, local: dict) -> tuple[Source, ast.FunctionDef, int] | None:
    """The helpers function a call runs (a class: its __init__, past self), its module, and the arguments to skip."""
    target = defined(source, func, local)
    if target is None:
        return None
    if isinstance(target[1], ast.ClassDef):
        init = next((n for n in target[1].body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        return (target[0], init, 1) if init else None
    return target[0], target[1], 0


def walk(module: str, function: str, parameter: str, records: bool = False) -> dict[tuple[str, str], list[str]]:
    """Each helpers function PARAMETER of MODULE.FUNCTION reaches, with the shortest chain of modules a reader opens
    to follow it there; with RECORDS, a value packed into a dataclass travels on in it, and the module that defines
    the dataclass is opened on the way."""
    chains: dict[tuple[str, str], list[str]] = {}
    done = set()
    todo = [(SOURCES[module], SOURCES[module].defs[function], parameter, [module])]
    while todo:
        source, fn, name, chain = todo.pop(0)  # breadth first: the first chain to a function is a shortest one
        if (source.name, fn.lineno, name) in done:
            continue
        done.add((source.name, fn.lineno, name))
        chains.setdefault((source.name, fn.name), chain)
        tracked = {name}
        for _ in range(3):  # values computed from values computed from it
            for node in ast.walk(fn):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None \
                        and carries(node.value, tracked, records):
                    tracked |= {n for t in getattr(node, "targets", [getattr(node, "target", None)]) for n in bound(t)}
                elif isinstance(node, (ast.For, ast.comprehension)) and carries(node.iter, tracked, records):
                    tracked |= bound(node.target)
                elif isinstance(node, ast.withitem) and node.optional_vars \
                        and carries(node.context_expr, tracked, records):
                    tracked |= bound(node.optional_vars)
                elif isinstance(node, ast.NamedExpr) and carries(node.value, tracked, records):
                    tracked.add(node.target.id)
        local = names_imported(fn.body, source.package)
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
        for call in calls if records else []:  # the records built here from it: opened before what they reach
            record = defined(source, call.func, local)
            if record and record[1].name in RECORDS and record[0].name not in chain and any(
                    carries(arg, tracked, records) for arg in call.args + [k.value for k in call.keywords]):
                chain = chain + [record[0].name]
                chains.setdefault((record[0].name, record[1].name), chain)
        for call in calls:
            found = callee(source, call.func, local)
            if found is None:
                continue
            target, defn, skip = found
            onward = chain + ([target.name] if target.name not in chain else [])
            positional = [a.arg for a in defn.args.posonlyargs + defn.args.args][skip:]
            named = positional + [a.arg for a in defn.args.kwonlyargs]
            todo += [(target, defn, positional[i], onward) for i, arg in enumerate(call.args)
                     if not isinstance(arg, ast.Starred) and i < len(positional) and carries(arg, tracked, records)]
            for keyword in call.keywords:
                if keyword.arg and carries(keyword.value, tracked, records):
                    if keyword.arg in named:
                        todo.append((target, defn, keyword.arg, onward))
                    elif defn.args.kwarg:
                        todo.append((target, defn, defn.args.kwarg.arg, onward))
    return chains


def modules_visited(module: str, function: str, parameter: str, records: bool = False) -> list[str]:
    """The modules PARAMETER of MODULE.FUNCTION reaches (with RECORDS, through the dataclasses it is packed into)."""
    return list(dict.fromkeys(m for chain in walk(module, function, parameter, records).values() for m in chain))


@pytest.mark.parametrize("start", sorted(WALKS), ids=lambda s: ".".join(s))
def test_following_a_parameter_stays_within_its_stated_count(start):
    chains = walk(*start, records=True)
    visited = modules_visited(*start, records=True)
    cap, why = WALKS[start]
    print(f"{'.'.join(start)}: {len(visited)} modules")
    route = {m: chain for chain in chains.values() for m in chain[-1:]}
    assert cap is None or len(visited) <= cap, (
        f"{len(visited)} modules, stated {cap} ({why}): " + "; ".join(" -> ".join(route.get(m, [m])) for m in visited))


def test_the_walk_follows_a_value_into_the_record_it_is_packed_in():
    """The bench command packs its options into one BenchOptions: a walk that stopped there would see three modules."""
    stopping = modules_visited("helpers.app.commands", "bench", "args")
    following = modules_visited("helpers.app.commands", "bench", "args", records=True)
    assert "helpers.timing.measure" not in stopping
    assert {"helpers.timing.measure", "helpers.loading.storage"} <= set(following)


def test_the_walk_sees_through_calls_into_other_parts():
    """fit(config) builds the data and writes checkpoints: a walk that missed them would pass every bound above."""
    visited = modules_visited("helpers.training.fit", "fit", "config")
    assert {"helpers.loading.loaders", "helpers.loading.transforms", "helpers.training.checkpoint",
            "helpers.files"} <= set(visited)

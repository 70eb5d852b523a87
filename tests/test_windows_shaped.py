"""The course as Windows would run it: no POSIX-only signals, no os.fork, spawn the only start method.

Each check runs in a fresh Python whose sitecustomize (first on PYTHONPATH, so DataLoader workers started with spawn
get it too) removes what Windows lacks before anything of the course is imported: signal.SIGUSR1, SIGUSR2, SIGKILL
and pthread_kill, faulthandler.register, os.fork, os.forkpty and os.killpg, and every start method but spawn.
A module that reads one of them when it is imported, or a training run that needs fork, fails here.
"""
from __future__ import annotations

import os
import pkgutil
import sys
from pathlib import Path

import pytest

import helpers
from helpers.processes import run_group

ROOT = Path(__file__).resolve().parents[1]

WINDOWS_SHAPE = '''
import faulthandler, multiprocessing, multiprocessing.context as context, os, signal
for module, names in ((signal, ("SIGUSR1", "SIGUSR2", "SIGKILL", "pthread_kill")), (faulthandler, ("register",)),
                      (os, ("fork", "forkpty", "killpg"))):
    for name in names:
        if hasattr(module, name):
            delattr(module, name)
context._concrete_contexts = {"spawn": context._concrete_contexts["spawn"]}
multiprocessing.set_start_method("spawn", force=True)
multiprocessing.get_all_start_methods = lambda: ["spawn"]
'''


@pytest.fixture(scope="module")
def windows_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("windows_shape")
    (folder / "sitecustomize.py").write_text(WINDOWS_SHAPE)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}


def run(env: dict[str, str], *args: str, timeout: float = 120):
    return run_group([sys.executable, *args], env=env, cwd=ROOT, timeout=timeout)


def test_the_shape_is_in_place(windows_env):
    probe = ("import multiprocessing, os, signal; "
             "print(hasattr(signal, 'SIGUSR1'), hasattr(os, 'fork'), multiprocessing.get_start_method())")
    assert run(windows_env, "-c", probe).stdout.split() == ["False", "False", "spawn"]


def test_every_module_of_helpers_imports(windows_env):
    names = [m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers.")]
    code = ("import importlib, sys\nfailed = []\nfor name in sys.argv[1:]:\n    try:\n"
            "        importlib.import_module(name)\n    except Exception as exc:\n"
            "        failed.append(f'{name}: {exc!r}')\nprint('\\n'.join(failed))\nsys.exit(1 if failed else 0)")
    result = run(windows_env, "-c", code, *names)
    assert result.returncode == 0, result.stdout + result.stderr


def test_train_shows_its_help_and_trains_one_batch(windows_env):
    shown = run(windows_env, "scripts/train.py", "--help")
    assert shown.returncode == 0 and "--start-method {spawn}" in shown.stdout, shown.stderr
    trained = run(windows_env, "scripts/train.py", "--epochs", "1", "--max-batches", "1", "--num-workers", "1",
                  "--image-size", "32", "--batch-size", "4", "--no-pretrained", "--checkpoint", "", "--no-progress",
                  timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert "with 1 workers" in trained.stdout and "Epoch 1/1" in trained.stdout


def test_a_stall_watch_the_platform_cannot_keep_is_refused_in_one_line(windows_env):
    refused = run(windows_env, "scripts/train.py", "--stall-s", "5", "--epochs", "1", "--no-pretrained")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "--stall-s" in refused.stderr and "signal.SIGUSR1" in refused.stderr


def test_profile_times_a_loader_with_a_worker(windows_env):
    """profile ends each pass's workers with SIGKILL where there is one: Windows has none."""
    done = run(windows_env, "-m", "helpers", "profile", "profile_loaders:iterable", "--path", str(ROOT / "tests"),
               "--workers", "0", "1", "--repeats", "1", "--batches", "4", timeout=300)
    assert done.returncode == 0 and "Recommended" in done.stdout, done.stderr

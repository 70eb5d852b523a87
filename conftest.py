"""Loaded by pytest before anything is collected, so notebook kernels started by nbval inherit this too."""
import os

import pytest

os.environ["HELPERS_OFFLINE"] = "1"  # tests and CI never try to download ImageNet weights


def pytest_configure(config):
    """nbval starts its kernels as the main job does (helpers/app/kernels.py: private Unix sockets, each kernel's process
    group ended at the end of the session), and a cell past run-notebooks' quick limit fails rather than waits."""
    if not getattr(config.option, "nbval", False):
        return
    import contextlib

    import nbval.kernel
    from jupyter_client.manager import KernelManager

    from helpers.app.kernels import ipc_kernel_manager
    from helpers.app.notebooks import CELL_TIMEOUTS

    stack = contextlib.ExitStack()
    nbval.kernel.KernelManager = stack.enter_context(ipc_kernel_manager(KernelManager))
    config.add_cleanup(stack.close)
    if float(config.option.nbval_cell_timeout) == 2000:  # nbval's default, 33 minutes; a value given is kept
        config.option.nbval_cell_timeout = CELL_TIMEOUTS["quick"]


# Lesson assertions (tests/lessons.py, tests/test_lessons.py): while nbval runs a notebook, its kernel records every
# figure from before the first cell, and after the last cell the notebook's probe reads what the lessons found.
# test_lessons.py's tests run after the notebooks and read that; run without nbval, they execute the notebook.

def _lessons():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "tests"))
    import lessons

    return lessons


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not slow"` sees the marks added here
def pytest_collection_modifyitems(session, config, items):
    """The lesson tests run last, so the notebooks nbval executes in this session have been probed by then; a lesson
    test whose notebook nbval does not run in this session executes it itself, and is marked slow."""
    last = [item for item in items if item.path.name == "test_lessons.py"]
    if last:
        items[:] = [item for item in items if item.path.name != "test_lessons.py"] + last
        config._lesson_probes = {stem: lesson.probe for stem, lesson in last[0].module.LESSONS.items()}
        probed = {item.path.stem for item in items if type(item).__name__ == "IPyNbCell"}
        for item in last:
            stem = getattr(item, "callspec", None) and item.callspec.params.get("stem")
            if stem and stem not in probed:
                item.add_marker(pytest.mark.slow)


def _nbval_cell(item):
    return type(item).__name__ == "IPyNbCell" and getattr(item.parent, "kernel", None) is not None


def _run_in(kernel, code: str) -> None:
    msg_id = kernel.execute_cell_input(code, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=120)
    kernel.await_idle(msg_id, timeout=120)



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield
    if _nbval_cell(item) and item.cell_num == 0 and getattr(item.config, "_lesson_probes", None):
        _run_in(item.parent.kernel, _lessons().RECORDER)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    probes = getattr(item.config, "_lesson_probes", None) or {}
    stem = item.path.stem
    last = nextitem is None or nextitem.parent is not item.parent
    if _nbval_cell(item) and last and stem in probes and item.parent.kernel.is_alive():
        lessons = _lessons()
        try:
            lessons.FOUND[stem] = lessons.probe_running_kernel(lambda code: _run_in(item.parent.kernel, code),
                                                               stem, probes[stem])
        except Exception as exc:  # the lesson test reports it; nbval's own verdict on the cell stands
            lessons.FOUND[stem] = exc
    yield

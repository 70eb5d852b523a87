"""The num_workers slider as a learner uses it: JupyterLab in headless Chromium, the slider's cells run, the slider moved."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers.app.lab import lab_argv, lab_env
from helpers.app.notebooks import NOTEBOOK_DIR

pytestmark = pytest.mark.browser

NOTEBOOK = "03_multiprocess_loading.ipynb"
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", Path(__file__).resolve().parents[1] / "runs" / "browser"))
RUN_ALL_TIMEOUT_S = 300
MEASURE_TIMEOUT_S = 120
# JupyterLab settings for a test: every cell in the DOM (no windowing), no news prompt.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


def _chromium() -> str:
    """The system browser: CHROMIUM_PATH, else Debian's chromium; CI must have it, elsewhere the test says how."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = ("no Chromium found: install Debian's with `apt-get install chromium` (scripts/test.sh does this as "
               "root), or set CHROMIUM_PATH to a Chrome or Chromium executable")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line names TEXT (the kernels name their connection file in our runtime folder)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return [pid for pid in pids if pid != os.getpid()]


@pytest.fixture()
def jupyterlab(tmp_path):
    """JupyterLab on a copy of notebooks/ (so the sources are never saved over); it and its kernels always stopped."""
    root, state = tmp_path / "notebooks", tmp_path / "lab"
    shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    _cut_to_the_slider(root / NOTEBOOK)
    for name, values in LAB_SETTINGS.items():
        path = state / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(lab_argv(root, port=port, token=token, open_browser=False, state_dir=state),
                              env=lab_env(state, offline=True), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}; its log:\n{(tmp_path / 'jupyterlab.log').read_text()}")
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 90 s")
                time.sleep(0.5)
        yield dict(base=base, token=token, root=root, log=tmp_path / "jupyterlab.log")
    finally:
        try:
            _api(base, token, "/api/shutdown", method="POST")  # shuts the kernels down too
            server.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        for pid in _processes_mentioning(str(state / "runtime")):
            os.kill(pid, signal.SIGKILL)
        log.close()
        assert not _processes_mentioning(str(state / "runtime")), "a kernel outlived the test"


def _cut_to_the_slider(path: Path) -> None:
    """Keep the code cells up to the slider (parameters, the learner's dataset module, set-up, the slider): nbval
    already runs the rest of the notebook."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "the notebook no longer opens with its parameters"
    slider = [i for i, c in enumerate(code) if "NumWorkersExplorer" in "".join(c["source"])]
    assert slider, "the notebook no longer shows the slider"
    nb["cells"] = code[:slider[0] + 1]
    path.write_text(json.dumps(nb))


def _kernel_states(lab) -> list[str]:
    """Each kernel's state; "starting" while jupyter_server cannot list a kernel it is still starting."""
    for _ in range(10):
        try:
            return [k["execution_state"] for k in _api(lab["base"], lab["token"], "/api/kernels")]
        except urllib.error.HTTPError as exc:
            # jupyter_server answers 500 (KeyError: 'last_activity') if asked in the instant a kernel starts
            if exc.code != 500:
                raise
            time.sleep(0.5)
    return ["starting"]


def _check_alive(page, lab) -> None:
    """Fail at once, with the reason, when the kernel died or JupyterLab shows an error dialog."""
    states = _kernel_states(lab)
    lab["kernel_seen"] = lab.get("kernel_seen") or bool(states)
    assert "dead" not in states and (states or not lab["kernel_seen"]), f"the kernel died (kernel states {states})"
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        pytest.fail(f"JupyterLab showed a dialog: {dialog.first.inner_text()!r}")


def _wait_for(page, lab, condition, timeout_s: float, what: str, seen=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(page, lab)
        value = condition()
        if value:
            return value
        page.wait_for_timeout(500)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; {seen()}")


def _prompts(page) -> list[str]:
    return page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()


def _plot_src(widget) -> str:
    image = widget.locator("img")
    return image.first.get_attribute("src") if image.count() else ""


def test_num_workers_slider_in_jupyterlab(jupyterlab):
    from playwright.sync_api import sync_playwright

    lab = jupyterlab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
            _wait_for(page, lab, lambda: _kernel_states(lab) == ["idle"], 90, "the kernel to start")

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            _wait_for(page, lab, lambda: "[*]:" in _prompts(page), 30, "the cells to be queued")
            _wait_for(page, lab, lambda: "[*]:" not in _prompts(page), RUN_ALL_TIMEOUT_S, "every cell to run")
            prompts = _prompts(page)
            assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"cells left unrun: {prompts}"

            saved_file = lab["root"] / NOTEBOOK
            unsaved = saved_file.stat().st_mtime_ns
            page.keyboard.press("Control+s")
            saved = _wait_for(page, lab, lambda: saved_file.stat().st_mtime_ns != unsaved and _saved_errors(saved_file),
                              30, "the notebook to save")
            assert saved == ["none"], f"cells ended in errors: {saved}"

            widget = page.locator(".widget-vbox", has=page.locator(".widget-slider")).last
            assert widget.count(), "the slider did not render (is the ipywidgets extension installed?)"
            assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
            widget.scroll_into_view_if_needed()
            status = widget.locator(".widget-html")
            _wait_for(page, lab, lambda: "num_workers=0:" in status.inner_text(), MEASURE_TIMEOUT_S,
                      "the first measurement")
            widget.screenshot(path=SCREENSHOTS / "1_after_run_all.png")

            handle = widget.locator(".noUi-handle")
            shown = lambda: (f"the slider shows {handle.get_attribute('aria-valuenow')}, the status "
                             f"{status.inner_text()!r}, the plot {'changed' if _plot_src(widget) != before else 'did not change'}")
            before = _plot_src(widget)
            handle.focus()
            page.keyboard.press("ArrowRight")
            _wait_for(page, lab, lambda: "num_workers=1:" in status.inner_text() and _plot_src(widget) != before,
                      MEASURE_TIMEOUT_S, "the measurement at num_workers=1 and a new plot (keyboard)", shown)
            widget.screenshot(path=SCREENSHOTS / "2_keyboard_to_1.png")

            track = widget.locator(".noUi-target").bounding_box()
            box = handle.bounding_box()
            before = _plot_src(widget)
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(track["x"] + track["width"] + 20, box["y"] + box["height"] / 2, steps=12)
            page.mouse.up()
            top = round(float(handle.get_attribute("aria-valuenow")))
            _wait_for(page, lab, lambda: f"num_workers={top}:" in status.inner_text() and _plot_src(widget) != before,
                      MEASURE_TIMEOUT_S, f"the measurement at num_workers={top} and a new plot (drag)", shown)
            assert top > 1, f"dragging the handle to the right end left it at {top}"
            assert "3 measurements so far" in status.inner_text()
            widget.screenshot(path=SCREENSHOTS / "3_dragged_to_max.png")
            page.screenshot(path=SCREENSHOTS / "4_jupyterlab.png")
            _check_alive(page, lab)
        finally:
            browser.close()
    assert not console_errors, f"uncaught errors in the page: {console_errors}"


def _saved_errors(path: Path) -> list[str] | None:
    """The error outputs in the saved notebook (['none'] when there are none), or None while it is half written."""
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return None
    errors = [f"{o['ename']}: {o['evalue']}" for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    return errors or ["none"]

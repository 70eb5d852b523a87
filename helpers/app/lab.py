"""JupyterLab on the course notebooks with this environment's kernel, for a learner and for the browser test."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..processes import wait_passing_on_interrupt
from .notebooks import NOTEBOOK_DIR

# Nothing fetched from the network behind the learner's back: no news feed, no update check.
QUIET_OPTIONS = ("--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")


def lab_argv(root_dir: str | Path = NOTEBOOK_DIR, *, ip: str = "127.0.0.1", port: int | None = None,
             token: str | None = None, open_browser: bool = True, state_dir: str | Path | None = None,
             extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The `jupyter lab` command line; this interpreter runs it, so its `python3` kernel imports `helpers`."""
    argv = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={Path(root_dir).resolve()}",
            f"--ServerApp.ip={ip}", *QUIET_OPTIONS]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root; JupyterLab refuses by default
        argv.append("--ServerApp.allow_root=True")
    if port is not None:
        argv += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        argv.append("--ServerApp.open_browser=False")
    if state_dir is not None:
        state = Path(state_dir).resolve()
        argv += [f"--LabApp.user_settings_dir={state / 'settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}"]
    return [*argv, *extra]


def lab_env(state_dir: str | Path | None = None, *, offline: bool = False) -> dict[str, str]:
    """The environment JupyterLab and its kernels inherit: private runtime files and offline weights when asked."""
    env = dict(os.environ)
    if offline:
        from ..training.model import OFFLINE_ENV
        env[OFFLINE_ENV] = "1"
    if state_dir is not None:
        env["JUPYTER_RUNTIME_DIR"] = str(Path(state_dir).resolve() / "runtime")
    return env


def run_lab(extra: list[str]) -> int:
    """Start JupyterLab on notebooks/ and wait for it; Ctrl+C is passed on, so it stops its kernels and exits.

    It runs in a session of its own, so the terminal's Ctrl+C reaches this process alone and JupyterLab gets one
    clean stop rather than its own yes/no question."""
    argv = lab_argv(extra=extra)
    print("starting:", " ".join(argv[2:]), flush=True)
    return wait_passing_on_interrupt(subprocess.Popen(argv, env=lab_env(), start_new_session=True))

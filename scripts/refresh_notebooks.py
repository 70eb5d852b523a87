"""For course authors: re-execute the committed notebooks in place, so their stored outputs match the code.

Runs each notebook with its own parameters (the quick lesson) and without trying to download weights, which is
exactly how nbval re-executes them in CI. Learners use `python -m helpers run-notebooks` instead, which never
writes over the sources.
"""
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.app.kernels import ipc_kernel_manager  # noqa: E402
from helpers.app.notebooks import notebook_paths  # noqa: E402


# Temporary folders and torch's weight cache, written as tests/nbval_sanitize.cfg masks them, so nbval still matches.
MACHINE_PATHS = ((re.compile(r"/tmp/[^\s'\"<>:]*"), "TMP"),
                 (re.compile(r"[^\s'\"]*/hub/checkpoints"), "TORCH_HUB/checkpoints"))


def without_machine_paths(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """No machine path in an output: this checkout's becomes the path from notebooks/, temporary ones are masked."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                text = output["text"].replace(f"{ROOT}/", "../")
                for pattern, mask in MACHINE_PATHS:
                    text = pattern.sub(mask, text)
                output["text"] = text
    return nb


def main(names: list[str]) -> int:
    os.environ["HELPERS_OFFLINE"] = "1"
    with ipc_kernel_manager() as kernel_manager:
        for path in notebook_paths():
            if names and not any(path.name.startswith(n) for n in names):
                continue
            start = time.perf_counter()
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                           record_timing=False, kernel_manager_class=kernel_manager).execute()
            nbformat.write(without_machine_paths(nb), path)
            print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

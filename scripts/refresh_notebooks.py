"""For course authors: re-execute the committed notebooks in place, so their stored outputs match the code.

Runs each notebook with its own parameters (the quick lesson) and without trying to download weights, which is
exactly how nbval re-executes them in CI. Learners use `python -m helpers run-notebooks` instead, which never
writes over the sources.
"""
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.kernels import ipc_kernel_manager  # noqa: E402
from helpers.notebooks import notebook_paths  # noqa: E402


def without_machine_paths(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """This checkout's absolute path in an output (a warning's file name) becomes the path from notebooks/."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = output["text"].replace(f"{ROOT}/", "../")
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

"""The committed notebooks are complete and executed, and run-notebooks runs them all with papermill."""
import json
import re
from pathlib import Path

import nbformat
import pytest

from helpers.loading.data import index_image_folder
from helpers.app.notebooks import (BENCH_CSV, PROFILES, SUMMARY, NotebookFailed, NotebookRun, declared_parameters,
                               notebook_paths, run_notebooks, summary, write_summary)
from helpers.timing.bench import write_csv

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebook_paths()


def total_seconds(summary_text: str) -> float:
    """The total a summary states ('total 502 s; ...'), so the manual's quoted time can be checked against a run."""
    line = next(line for line in summary_text.splitlines() if line.startswith("total "))
    return float(line.split()[1])


def test_the_notebooks_are_numbered_from_00_without_a_gap():
    """The course's order is the numbers' (00 to 13, then the appendix 14): a gap or a doubled number is a slip."""
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02}" for i in range(len(NOTEBOOKS))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_without_errors(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "every code cell must carry the outputs of a run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} holds an error output: {errors[0].ename}"
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])], "papermill needs a `parameters` cell"
    assert nb.cells[0].cell_type == "markdown" and "What this notebook teaches" in nb.cells[0].source
    assert nb.cells[-1].cell_type == "markdown" and "What to remember" in nb.cells[-1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_puts_a_dataloader_call_in_the_learners_view(path):
    """Issue 37: the learner writes or reads the `DataLoader(...)` call in every notebook, not only helpers' calls."""
    nb = nbformat.read(path, as_version=4)
    assert any("DataLoader(" in c.source for c in nb.cells if c.cell_type == "code"), f"{path.name}: no DataLoader( in a code cell"


def test_full_profile_only_sets_parameters_the_notebooks_declare():
    by_stem = {p.stem: p for p in NOTEBOOKS}
    for stem, params in PROFILES["full"].items():
        assert stem in by_stem, f"the full profile names a notebook that does not exist: {stem}"
        assert set(params) <= declared_parameters(by_stem[stem]), stem


def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("value = 1")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_run_notebooks_stops_at_the_first_failure_and_names_notebook_and_cell(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "00_fine.ipynb", "print(value)")
    _notebook(src / "01_broken.ipynb", "print('ok')", "raise ValueError('the lesson broke')")
    _notebook(src / "02_never.ipynb", "print(value)")
    with pytest.raises(NotebookFailed) as failure:
        run_notebooks("quick", tmp_path / "out", notebooks=src, log=lambda _: None)
    message = str(failure.value)
    assert "01_broken.ipynb" in message and "cell 2" in message and "the lesson broke" in message
    assert (tmp_path / "out" / "00_fine.ipynb").exists() and (tmp_path / "out" / "01_broken.ipynb").exists()
    assert not (tmp_path / "out" / "02_never.ipynb").exists()
    assert json.loads((src / "01_broken.ipynb").read_text())["cells"][1]["outputs"] == []  # sources untouched


def test_run_notebooks_refuses_to_write_over_the_sources(tmp_path):
    _notebook(tmp_path / "00_a.ipynb", "print(value)")
    with pytest.raises(ValueError, match="never replace the sources"):
        run_notebooks("quick", tmp_path, notebooks=tmp_path)


@pytest.mark.slow
def test_the_lessons_that_read_files_run_on_a_prepared_download_with_bad_files(tmp_path):
    """nbval runs every notebook on the sample set; this runs, through papermill with the data passed in, the one that
    shows the bad files a download holds (00). Training past them is tested without a notebook (test_bad_data.py)."""
    from helpers.loading.prepare import prepare
    from hostile import make_download

    data = prepare(make_download(tmp_path / "download", "petimages", good_per_class=100), tmp_path / "data").dest
    runs = run_notebooks("quick", tmp_path / "out", data=data, only=("00",), log=lambda _: None)
    assert [r.name[:2] for r in runs] == ["00"]
    nb = nbformat.read(runs[0].output, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert str(data) in json.dumps(nb.cells[1:3])  # papermill injected the data folder
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    indexed = len(index_image_folder(data).samples)
    sized = int(re.search(r"of (\d+) images are smaller than", text).group(1))
    assert f"{indexed} images, classes" in text and sized < indexed  # the unreadable files were sized as none


def test_summary_lists_each_notebook_and_the_table_notebook_05_wrote(tmp_path):
    write_csv([dict(pipeline="fast", mode="loader", num_workers=2, batch_size=32, image_size=512, device="cpu",
                    images_per_s=181.5, images_per_s_min=170.0, images_per_s_max=190.0, startup_s=0.4,
                    data_wait_fraction=None, ceiling_fraction=0.8)], tmp_path / BENCH_CSV)
    runs = [NotebookRun("00_setup_and_data.ipynb", 12.0, tmp_path / "00.ipynb"),
            NotebookRun("05_timing_workers.ipynb", 30.5, tmp_path / "05.ipynb")]
    lines = summary(runs, tmp_path).splitlines()
    assert lines[2].split() == ["00_setup_and_data.ipynb", "12.0"] and lines[4].startswith("total 42 s")
    assert "num_workers, as notebook 05 measured it:" in lines and lines[-1].split()[:5] == ["fast", "loader", "2",
                                                                                             "32", "181.5"]
    assert "data wait" not in "\n".join(lines) and "of CPU ceiling" in "\n".join(lines), "a column no row fills is left out"


def test_the_written_summary_names_profile_and_machine_and_states_the_total(tmp_path):
    runs = [NotebookRun("00_setup_and_data.ipynb", 12.0, tmp_path / "00.ipynb"),
            NotebookRun("01_transforms.ipynb", 30.6, tmp_path / "01.ipynb")]
    text = write_summary(runs, tmp_path, "full")
    assert (tmp_path / SUMMARY).read_text() == text
    assert text.startswith("full profile, ") and "CPU cores" in text.splitlines()[0]
    assert total_seconds(text) == 43


def test_the_manual_quotes_the_committed_run_of_the_main_job():
    """The manual's time for `bash scripts/run.sh` is the total of the run committed under results/, not a number typed in."""
    import re

    page = ROOT / "docs" / "command-line.md"
    quoted = re.search(r"measured: (\d+) s, `results/run_full_cpu2.txt`", page.read_text())
    assert quoted, f"{page.name} must quote the run's total as `measured: N s, `results/run_full_cpu2.txt``"
    assert int(quoted.group(1)) == round(total_seconds((ROOT / "results" / "run_full_cpu2.txt").read_text()))


def test_kernels_talk_over_private_unix_sockets_so_no_tcp_warning_is_printed(tmp_path, capfd):
    _notebook(tmp_path / "00_fine.ipynb", "import json\nfrom ipykernel.connect import get_connection_file\n"
                                         "print(json.load(open(get_connection_file()))['transport'])")
    runs = run_notebooks("quick", tmp_path / "out", notebooks=tmp_path, log=lambda _: None)
    nb = nbformat.read(runs[0].output, as_version=4)
    assert nb.cells[1].outputs[0]["text"].strip() == "ipc"
    assert "without encryption" not in capfd.readouterr().err


def _gone(pid: int) -> bool:
    """No such process, or one that has ended and waits only to be reaped."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_cell_past_the_time_limit_ends_the_run_in_one_line_with_nothing_left_running(tmp_path):
    """The front door as a user runs it: a cell that never ends stops run-notebooks with one line naming the notebook,
    the cell and its first line, exit status 2, and the kernel and the process it started are gone."""
    import os
    import subprocess
    import sys

    pids = tmp_path / "pids.txt"
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "00_sleepy.ipynb", "print(value)",
              "import os, subprocess, sys\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
              f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
              "import time; time.sleep(600)")
    _notebook(src / "01_never.ipynb", "print(value)")
    env = {**os.environ, "HELPERS_NOTEBOOK_DIR": str(src), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "helpers", "run-notebooks", "--cell-timeout", "3", "--out",
                           str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=120,
                          start_new_session=True)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: 00_sleepy.ipynb: cell 2 (`import os, subprocess, sys`) ran past the 3 s limit")
    assert "--cell-timeout" in line and not (tmp_path / "out" / "01_never.ipynb").exists()
    kernel, child = map(int, pids.read_text().split())
    assert _gone(kernel) and _gone(child)


def test_nbval_starts_its_kernels_as_the_main_job_does(tmp_path):
    """The test command's nbval kernels use the main job's kernel manager (helpers/app/kernels.py): the stored output
    'ipc' matches only when the kernel was started by it (jupyter_client's default is tcp)."""
    import os
    import shutil
    import subprocess
    import sys

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("import json\nfrom ipykernel.connect import get_connection_file\n"
                                     "print(json.load(open(get_connection_file()))['transport'])")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ipc\n")]
    cell.execution_count = 1
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "transport.ipynb")
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                           "--nbval-current-env", "transport.ipynb"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300, start_new_session=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 passed" in done.stdout

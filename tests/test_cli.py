"""The command-line front door and scripts/train.py: real subprocesses where the process itself is tested (spawn, the
guard, a clean exit), in this process where only a command's output and files are."""
import os
import runpy
import sys
from pathlib import Path
from unittest.mock import patch

import pytest
import torch

from front_door import run_command
from helpers.processes import run_group
from helpers.timing.tables import read_csv

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=ROOT, timeout=600):
    env = {**os.environ, "HELPERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return run_group([sys.executable, *args], cwd=cwd, env=env, timeout=timeout)


def test_every_command_and_script_has_help(capsys):
    """All in this one process: each --help prints a usage and exits 0."""
    from helpers.__main__ import main

    commands = [[], ["sample-data"], ["train"], ["cached"], ["ddp"], ["bench"], ["run-notebooks"], ["prepare"],
                ["verify"], ["lab"], ["memory"]]
    for command in commands:
        with pytest.raises(SystemExit) as exc:
            main([*command, "--help"])
        assert exc.value.code == 0, command
        assert "usage:" in capsys.readouterr().out, command
    for script in ("scripts/train.py", "scripts/train_ddp.py"):
        with pytest.raises(SystemExit) as exc, patch.object(sys, "argv", [script, "--help"]):
            runpy.run_path(str(ROOT / script), run_name="__main__")
        assert exc.value.code == 0 and "--num-workers" in capsys.readouterr().out, script


def test_only_lab_passes_unknown_options_on():
    from helpers.__main__ import build_parser, main
    from helpers.app.lab import lab_argv

    with pytest.raises(SystemExit) as exc:
        main(["sample-data", "x", "--no-browser"])
    assert exc.value.code == 2
    argv = lab_argv(ROOT / "notebooks", port=8890, token="t", open_browser=False, extra=["--ServerApp.foo=1"])
    assert argv[1:4] == ["-m", "jupyter", "lab"] and argv[0] == sys.executable
    assert f"--ServerApp.root_dir={ROOT / 'notebooks'}" in argv and "--ServerApp.port=8890" in argv
    assert argv[-1] == "--ServerApp.foo=1" and "--LabApp.news_url=None" in argv
    assert build_parser().parse_args(["lab"]).command == "lab"


def test_sample_data_command_writes_an_image_folder(tmp_path):
    result = run("-m", "helpers", "sample-data", str(tmp_path / "d"), "--per-class", "2", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "d").rglob("*.jpg")) == ["cat.0.jpg", "cat.1.jpg", "dog.0.jpg",
                                                                       "dog.1.jpg"]


@pytest.mark.slow
def test_script_trains_under_spawn_and_writes_its_checkpoint_and_plot(sample_dir, tmp_path):
    """Resuming through the script is tested in test_resume.py (runs killed mid-epoch, 0 or 2 workers)."""
    ckpt = tmp_path / "ck.pt"
    first = run("scripts/train.py", "--data", str(sample_dir), "--num-workers", "1", "--start-method", "spawn",
                "--image-size", "64", "--batch-size", "8", "--max-batches", "3", "--checkpoint", str(ckpt),
                "--epochs", "1", "--plot", str(tmp_path / "curves.png"))  # progress bars asked for, output a pipe
    assert first.returncode == 0, first.stderr
    assert "Epoch 1/1" in first.stdout and "val loss" in first.stdout
    assert "\r" not in first.stdout + first.stderr and "batch/s" not in first.stderr
    assert "RANDOM backbone weights" in first.stderr  # offline here: the fallback must say so
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and state["config"]["start_method"] == "spawn"
    assert (tmp_path / "curves.png").stat().st_size > 10_000


@pytest.mark.parametrize("layout", ["empty", "flat"])  # a missing folder: test_options.py, in this process
def test_unusable_data_fails_at_once_with_a_message_not_a_traceback(tmp_path, layout):
    data = tmp_path / "data"
    data.mkdir()
    if layout == "flat":
        (data / "cat.1.jpg").write_bytes(b"\xff\xd8 not really")
    result = run("scripts/train.py", "--data", str(data), "--epochs", "1", "--checkpoint", "")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "<class name>/<image files>" in result.stderr and "data/README.md" in result.stderr


@pytest.mark.slow
def test_bench_command_prints_a_table_and_writes_csv_and_plot(sample_dir, tmp_path, capsys):
    code, out, err = run_command(["bench", "--data", str(sample_dir), "--workers", "0", "1", "--pipeline", "fast",
                                  "--image-size", "64", "--batch-size", "4", "--batches", "2", "--repeats", "2",
                                  "--no-progress", "--csv", str(tmp_path / "b.csv"), "--plot", str(tmp_path / "b.png")],
                                 capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert "CPU cores" in lines[0] and lines[1].split()[:3] == ["pipeline", "mode", "workers"]
    assert "PSS MB" in lines[1] and all(r["pss_mb"] > 0 for r in read_csv(tmp_path / "b.csv"))
    rows = [l.split() for l in lines[3:5]]
    assert [r[2] for r in rows] == ["0", "1"]
    for r in rows:
        median, low, high = map(float, r[4:7])
        assert 0 < low <= median <= high
    assert "Recommended for fast, loader: num_workers=" in out
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 3 and (tmp_path / "b.png").stat().st_size > 5000
    assert "Where the time goes" not in out


def test_memory_command_prints_a_row_per_kind_of_index_and_writes_csv_and_plot(tmp_path, capsys):
    code, out, err = run_command(["memory", "--entries", "20000", "--workers", "1", "--no-progress",
                                  "--csv", str(tmp_path / "m.csv"), "--plot", str(tmp_path / "m.png")], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["index", "start"] and [line.split()[0] for line in lines[3:6]] == [
        "python-list", "numpy", "helpers"]
    assert [r["index"] for r in read_csv(tmp_path / "m.csv")] == ["python-list", "numpy", "helpers"]
    assert all(r["uss_growth_mb_per_worker"] is not None for r in read_csv(tmp_path / "m.csv"))
    assert (tmp_path / "m.png").stat().st_size > 5000


@pytest.mark.slow
def test_bench_breakdown_adds_the_parts_and_the_trip_by_dtype(sample_dir, capsys):
    code, out, err = run_command(["bench", "--data", str(sample_dir), "--workers", "0", "--pipeline", "fast",
                                  "--image-size", "32", "--batch-size", "4", "--batches", "2", "--repeats", "1",
                                  "--no-progress", "--breakdown"], capsys)
    assert code == 0, err
    after = out.split("Where the time goes", 1)[1]
    assert "fast (batch 4): read + decode" in after and "the trip to the main process" in after
    assert [l.split()[0] for l in after.splitlines() if l.strip().startswith(("float32", "uint8"))] == \
        ["float32", "float32", "float32", "uint8", "uint8", "uint8"]


@pytest.mark.slow
def test_cached_command_compares_loader_fed_and_cached_epochs(sample_dir, tmp_path, capsys):
    code, out, err = run_command(["cached", "--data", str(sample_dir), "--compare", "--no-pretrained", "--epochs", "1",
                                  "--image-size", "32", "--num-workers", "0", "--no-progress",
                                  "--cache", str(tmp_path / "f.pt")], capsys)
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["loader-fed"][1] == rows["cached"][2] == "1" and (tmp_path / "f.pt").exists()
    assert float(rows["speed-up"][5]) > 0  # "speed-up per epoch - - RATIO ..."

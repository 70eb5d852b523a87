"""`python -m helpers profile`: a user's own loader measured, the copy-on-read culprit named, a stuck worker shown.

The loaders live in tests/profile_loaders.py, a module of its own as a user's would be. No timing is asserted: the
rows must exist and hold numbers; the sweep's own numbers live in results/profile_cpu2_*.txt.
"""
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from helpers.app.commands import main
from helpers.machine import rank_cores, usable_cores
from helpers.processes import kill_group
from helpers.timing.culprits import culprits
from helpers.timing.profile import rank_note, samples_in
from helpers.timing.tables import read_csv

import profile_loaders as loaders

HERE = str(Path(__file__).parent)
ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="USS, PSS and signals as Linux has them")


def test_a_list_of_tuples_is_named_and_the_course_dataset_is_not():
    found = culprits(loaders.TupleList())
    assert [c.attribute for c in found] == ["dataset.entries"]
    assert found[0].length == loaders.ENTRIES and found[0].objects > 2 * loaders.ENTRIES and found[0].mb > 10
    assert "SampleTable" in found[0].fix
    assert culprits(loaders.course(0).dataset) == []


def test_one_list_reached_by_two_names_is_named_once_with_both():
    class LikeImageFolder:  # torchvision's ImageFolder sets self.imgs = self.samples
        def __init__(self):
            self.samples = [(f"{i}.jpg", i % 2) for i in range(20_000)]
            self.imgs, self.targets = self.samples, [label for _, label in self.samples]

    # targets holds 20,000 references to the two small ints 0 and 1: reading it writes only their counts
    assert [c.attribute for c in culprits(LikeImageFolder())] == ["dataset.samples (also dataset.imgs)"]


def test_a_culprit_held_deeper_is_named_by_its_whole_path():
    class Index:
        def __init__(self):
            self.by_split = {"train": [(str(i), i) for i in range(20_000)], "val": []}

    class Wrapper:
        def __init__(self):
            self.index, self.small = Index(), list(range(10))

    assert [c.attribute for c in culprits(Wrapper())] == ["dataset.index.by_split"]


@pytest.mark.parametrize("batch, n", [((torch.zeros(5, 3), [0] * 5), 5), ({"x": torch.zeros(7, 2)}, 7),
                                      (torch.zeros(3), 3), ([[1, 2], [3, 4]], 2)])
def test_samples_are_counted_whatever_the_batch_is_wrapped_in(batch, n):
    assert samples_in(batch) == n


def test_the_cores_a_rank_may_use_are_the_usable_cores_shared_by_the_local_ranks():
    assert rank_cores({}) == (usable_cores(), 1)
    assert rank_cores({"LOCAL_WORLD_SIZE": "2"}) == (max(1, usable_cores() // 2), 2)
    assert rank_cores({"LOCAL_WORLD_SIZE": str(10 * usable_cores())})[0] == 1
    assert rank_cores({"LOCAL_WORLD_SIZE": "junk"}) == (usable_cores(), 1)


def test_profile_says_so_when_it_counts_a_ranks_share_of_the_cores(monkeypatch):
    assert rank_note() is None
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert f"share {max(1, usable_cores() // 2)} of the usable cores" in rank_note()


@linux_only
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_profile_measures_a_users_loader_names_its_culprit_and_writes_csv_and_plot(start_method, tmp_path, capsys):
    csv, png = tmp_path / "p.csv", tmp_path / "p.png"
    status = main(["profile", "profile_loaders:tuples", "--path", HERE, "--workers", "0", "2", "--batches", "4",
                   "--repeats", "1", "--step", "profile_loaders:step", "--start-method", start_method,
                   "--csv", str(csv), "--plot", str(png)])
    out = capsys.readouterr().out
    assert status == 0
    assert f"TupleList (map-style), start method {start_method}" in out
    assert "dataset.entries: a list of 300,000 entries" in out and "walked in worker 0" in out
    assert "Recommended: num_workers=" in out
    rows = read_csv(csv)
    assert [r["num_workers"] for r in rows] == [0, 2]
    assert all(r["samples_per_s"] > 0 and 0 <= r["data_wait_fraction"] <= 1 and r["first_batch_s"] > 0 for r in rows)
    assert rows[0]["uss_growth_mb_workers"] is None and len(str(rows[1]["uss_growth_mb_workers"]).split()) == 2
    assert png.stat().st_size > 0


@linux_only
def test_profile_names_no_culprit_in_the_course_dataset_and_takes_iterable_datasets(capsys):
    assert main(["profile", "profile_loaders:course", "--path", HERE, "--workers", "2", "--batches", "2",
                 "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "No attribute of the dataset holds many Python objects (walked in worker 0)" in out
    assert main(["profile", "profile_loaders:iterable", "--path", HERE, "--workers", "0", "2", "--batches", "2",
                 "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "Counting (iterable)" in out and "Recommended: num_workers=" in out


@pytest.mark.parametrize("spec, says", [
    ("no_such_module:make", "cannot import no_such_module"),
    ("profile_loaders", "expected MODULE:FUNCTION"),
    ("profile_loaders:nothing_here", "has no nothing_here"),
    ("profile_loaders:NOT_CALLABLE", "is a int, not a function"),
    ("profile_loaders:no_parameter", "cannot be called as no_parameter(num_workers=n)"),
    ("profile_loaders:not_a_loader", "returned a list, not a torch.utils.data.DataLoader"),
    ("profile_loaders:ignores_num_workers", "pass the factory's num_workers on"),
])
def test_bad_input_is_one_line_and_exit_status_2(spec, says, capsys):
    assert main(["profile", spec, "--path", HERE, "--workers", "1", "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, what, frame", [
    (["profile_broken:make"], "error: importing profile_broken (MODULE:FACTORY profile_broken:make) raised KeyError",
     'profile_broken.py", line 3, in <module>'),
    (["profile_loaders:factory_raises"], "error: your factory profile_loaders:factory_raises(num_workers=",
     "in factory_raises"),
    (["profile_loaders:course", "--step", "profile_loaders:step_raises"],
     "error: your step profile_loaders:step_raises raised RuntimeError: mat1 and mat2", "in step_raises"),
    (["profile_loaders:corrupt", "--workers", "2"],
     "error: dataset index 37, read in worker 1 raised ValueError: record 37 is corrupt", "in __getitem__"),
    (["profile_loaders:corrupt", "--workers", "0"],
     "error: dataset index 37, read in the main process raised ValueError: record 37 is corrupt", "in __getitem__"),
])
def test_an_error_in_the_users_code_shows_their_frames_then_one_line_and_exit_status_2(argv, what, frame, capsys):
    assert main(["profile", *argv, "--path", HERE, "--repeats", "1", "--batches", "12"] +
                ([] if "--workers" in argv else ["--workers", "0"])) == 2
    err = capsys.readouterr().err
    frames, last = err.rstrip().rsplit("\n", 1)
    assert last.startswith(what) and "; " in last and " fix " in last, err
    assert frames.startswith("Your code, most recent call last:") and frame in frames, err
    assert "Traceback" not in err and "torch/" not in frames and "helpers/" not in frames, err


@linux_only
@pytest.mark.parametrize("factory, workers, where, holding", [
    ("stuck", "2", "in stuck_in_user_code", "fetching dataset indices [36, 37, 38, 39]"),
    ("slow", "0", "in read_a_very_slow_file", "with num_workers=0 its main thread loads the batches"),
])
def test_a_stall_is_shown_in_the_users_own_function_and_nothing_is_left_behind(factory, workers, where, holding,
                                                                                tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), HERE]), "PROFILE_TEST_PIDS": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "helpers", "profile", f"profile_loaders:{factory}", "--workers",
                             workers, "--repeats", "1", "--stall-s", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
        pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
        left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    finally:
        kill_group(proc)
        proc.communicate()
    assert proc.returncode == 2, err
    assert where in out and holding in out
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: no batch arrived for 2 s")
    assert len(pids) == int(workers) and left == []


def test_the_figure_is_drawn_from_rows_read_back_from_the_csv(tmp_path):
    from helpers.lessons.plots import plot_profile
    from helpers.timing.profile import CSV_COLUMNS
    from helpers.timing.tables import write_rows

    rows = [dict(num_workers=n, samples_per_s=10.0, samples_per_s_min=9.0, samples_per_s_max=11.0, verdict="",
                 uss_growth_mb_workers=grown) for n, grown in ((0, ""), (1, "2.4"), (2, "1.0 2.0"))]
    write_rows(rows, tmp_path / "p.csv", CSV_COLUMNS)
    fig = plot_profile(read_csv(tmp_path / "p.csv"), "Your loader")
    rate, memory = fig.axes
    assert rate.get_title() == "Your loader" and rate.get_xlabel() and memory.get_ylabel()
    assert rate.get_ylim()[0] == 0, "the rate axis starts at zero, so a gain reads at its true size"
    assert len(memory.collections[0].get_offsets()) == 3  # one worker's growth, then two workers'

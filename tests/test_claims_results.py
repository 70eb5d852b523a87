"""What the notebooks say about committed results files, asserted on those files (claims, not lessons).

A notebook that reads a committed CSV (the H200 epochs, the peers' run) teaches from it; the sentence holds only while
the file says so. These checks read the files, not a notebook: a lesson test asserts what the notebook ran
(tests/test_lessons.py). Each check is shown to reject the opposite finding, so none passes whatever the file holds.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

from helpers.timing.tables import read_csv
from helpers.verdict import FASTER, SAME, replicated, verdict

RESULTS = Path(__file__).resolve().parents[1] / "results"


def setup_rows(rows: list[dict], setup: str) -> list[dict]:
    """The rows of one setup of results/h200_epochs.csv, by num_workers."""
    found = sorted((r for r in rows if r["setup"] == setup), key=lambda r: r["num_workers"])
    assert found, f"results/h200_epochs.csv has no rows for {setup!r}"
    return found


def fastest(rows: list[dict]) -> dict:
    return min(rows, key=lambda r: r["epoch_s"])


def blog_epochs(rows: list[dict]) -> None:
    """Notebooks 00 and 05: the blog's setup with no workers waits most of the epoch, at its fastest almost none."""
    blog = setup_rows(rows, "blog 512px b4")
    none, best = blog[0], fastest(blog)
    assert none["num_workers"] == 0 and none["data_wait_fraction"] > 0.5, "no workers: most of the epoch waiting"
    assert best["data_wait_fraction"] < 0.1 < 0.5 < none["data_wait_fraction"], "the fastest setting waits under 10 %"
    assert 0 < best["num_workers"] < blog[-1]["num_workers"], "the fastest setting is neither none nor the most"


def wait_is_not_speed(rows: list[dict]) -> None:
    """README point 1, notebooks 04, 05: the least data wait is not the fastest epoch; throughput decides."""
    gpu = setup_rows(rows, "gpu 224px b256")
    assert fastest(gpu)["num_workers"] == 0 and fastest(gpu)["data_wait_fraction"] > 0.4, \
        "the gpu pipeline at batch 256: 0 workers is the fastest row, waiting about half the epoch"
    fast = setup_rows(rows, "fast 224px b256")
    least_wait = min(fast, key=lambda r: r["data_wait_fraction"])
    assert least_wait is not fastest(fast) and least_wait["epoch_s"] > fastest(fast)["epoch_s"], \
        "the fast pipeline at batch 256: the setting that waited least was not the fastest"


def peers(rows: list[dict]) -> None:
    """Notebook 11: in the committed run nodes and the DataLoader within 10 %, SPDL slower, DALI slowest."""
    best = {name: max(r["images_per_s"] for r in rows if r["loader"] == name)
            for name in dict.fromkeys(r["loader"] for r in rows)}
    assert abs(best["dataloader"] / best["nodes"] - 1) <= 0.10, "nodes and the DataLoader within 10 %"
    assert best["spdl"] < best["dataloader"] and best["dali"] < best["spdl"], "SPDL slower, DALI slowest"


def storage_runs() -> list[dict]:
    """The repeats of results/storage_cpu2_run4..7.txt (the runs notebook 12 draws), one dict per run, by setting."""
    pattern = re.compile(r"^Repeats, blog loader (\d+ ms per file \d+ workers): ([\d. ]+) images/s", re.M)
    return [{setting: [float(x) for x in repeats.split()]
             for setting, repeats in pattern.findall((RESULTS / f"storage_cpu2_run{k}.txt").read_text())}
            for k in (4, 5, 6, 7)]


def storage(runs: list[dict]) -> None:
    """Notebook 12's figure and verdicts: at 20 ms per file 8 workers beat 2 in every run; with no wait, no difference."""
    def eight_against_two(ms: int) -> str:
        return replicated(verdict(run[f"{ms} ms per file 8 workers"], run[f"{ms} ms per file 2 workers"]) for run in runs)
    assert len(runs) >= 3, "the claim rests on at least three runs"
    assert eight_against_two(20) == FASTER, "at 20 ms per file, 8 workers faster than 2 in every run"
    assert eight_against_two(0) == SAME, "with no wait, 8 workers no measurable difference from 2"


def preload_rows() -> list[dict]:
    """Every repeat of results/forkserver_preload_cpu2_run1..3.csv (notebook 08's figure)."""
    return [r for k in (1, 2, 3) for r in read_csv(RESULTS / f"forkserver_preload_cpu2_run{k}.csv")]


def preload(rows: list[dict]) -> None:
    """Notebook 08: in every repeat, preloading torch shrinks a forkserver worker, and the dataset's modules too more."""
    uss = {v: [r["worker_uss_mb"] for r in rows if r["variant"] == v] for v in ("default", "torch", "all")}
    assert len(uss["default"]) >= 3, "at least three repeats"
    assert max(uss["all"]) < min(uss["torch"]) and max(uss["torch"]) < min(uss["default"]), \
        "every repeat: nothing preloaded > torch preloaded > torch, torchvision and the dataset's module preloaded"


def changed(rows: list[dict], where: Callable[[dict], bool], **values) -> list[dict]:
    """ROWS with VALUES set in every row WHERE holds: the file as if it had said the opposite."""
    return [{**r, **values} if where(r) else r for r in rows]


def is_row(setup: str, workers: int) -> Callable[[dict], bool]:
    return lambda r: r["setup"] == setup and r["num_workers"] == workers


def csv(name: str) -> Callable[[], list[dict]]:
    return lambda: read_csv(RESULTS / name)


def scaled(runs: list[dict], setting: str, by: float) -> list[dict]:
    """RUNS with SETTING's repeats times BY: the runs as if that setting had gone another speed."""
    return [{**run, setting: [x * by for x in run[setting]]} for run in runs]


CLAIMS = {
    "blog_epochs": (blog_epochs, csv("h200_epochs.csv"), (
        lambda rows: changed(rows, is_row("blog 512px b4", 0), data_wait_fraction=0.3),
        lambda rows: changed(rows, is_row("blog 512px b4", 8), data_wait_fraction=0.6),
        lambda rows: changed(rows, is_row("blog 512px b4", 16), epoch_s=1.0),
    )),
    "wait_is_not_speed": (wait_is_not_speed, csv("h200_epochs.csv"), (
        lambda rows: changed(rows, is_row("gpu 224px b256", 0), epoch_s=9.0),
        lambda rows: changed(rows, is_row("gpu 224px b256", 0), data_wait_fraction=0.01),
        lambda rows: changed(rows, lambda r: r["setup"] == "fast 224px b256" and r["num_workers"] == 12,
                             data_wait_fraction=0.01),
    )),
    "peers": (peers, csv("peers_cpu2_224px.csv"), (
        lambda rows: changed(rows, lambda r: r["loader"] == "nodes", images_per_s=700.0),
        lambda rows: changed(rows, lambda r: r["loader"] == "spdl", images_per_s=2000.0),
        lambda rows: changed(rows, lambda r: r["loader"] == "dali", images_per_s=900.0),
    )),
    "storage": (storage, storage_runs, (
        lambda runs: scaled(runs, "20 ms per file 8 workers", 0.3),
        lambda runs: scaled(runs, "0 ms per file 8 workers", 1.5),
        lambda runs: runs[:2],
    )),
    "preload": (preload, preload_rows, (
        lambda rows: changed(rows, lambda r: r["variant"] == "all" and r["repeat"] == 2, worker_uss_mb=200.0),
        lambda rows: changed(rows, lambda r: r["variant"] == "torch", worker_uss_mb=400.0),
        lambda rows: changed(rows, lambda r: r["variant"] == "default" and r["repeat"] == 3, worker_uss_mb=100.0),
    )),
}


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_the_committed_file_holds_the_claim(name):
    check, load, _ = CLAIMS[name]
    check(load())


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_the_claim_check_rejects_the_opposite_file(name):
    check, load, opposites = CLAIMS[name]
    rows = load()
    for opposite in opposites:
        with pytest.raises(AssertionError):
            check(opposite(rows))

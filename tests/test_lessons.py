"""What each notebook teaches, asserted on its executed kernel (tests/lessons.py says how the facts are read).

A lesson is registered with @lesson(stem, probe, reversed=...): PROBE is an expression evaluated in the notebook's
namespace after its last cell, giving a dict of facts; the check asserts the lesson on them; each entry of REVERSED
overrides some facts with the opposite result, and the check must then fail, so no check passes whatever happens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

import lessons


@dataclass
class Lesson:
    stem: str
    probe: str
    check: Callable[[dict], None]
    reversed: tuple[dict, ...]


LESSONS: dict[str, Lesson] = {}


def lesson(stem: str, probe: str, reversed: tuple[dict, ...]) -> Callable:
    """Register CHECK as the lesson of notebooks/STEM.ipynb."""
    def register(check: Callable[[dict], None]) -> Callable[[dict], None]:
        assert reversed, f"{stem}: give at least one reversed result the check must reject"
        LESSONS[stem] = Lesson(stem, probe, check, tuple(reversed))
        return check
    return register


def found(stem: str) -> lessons.Found:
    """The notebook's facts from this session's nbval run, or from executing it now."""
    if stem not in lessons.FOUND:
        try:
            lessons.FOUND[stem] = lessons.execute_and_probe(stem, LESSONS[stem].probe)
        except Exception as exc:
            lessons.FOUND[stem] = exc
    got = lessons.FOUND[stem]
    if isinstance(got, Exception):
        raise got
    return got


# ---------------------------------------------------------------------------------------------------------------
# The lessons, one per notebook.

@lesson("02_splitting",
        probe="dict(shared_transform=val_part.dataset.transform is train_pipe.transform, "
              "overlap=len(train_files & val_files), val_own_transform=val_set.transform is val_pipe.transform, "
              "same_seed_same_split={s.path for s in again_val.samples} == val_files, "
              "fresh_seeds_equal=seeds[0] == seeds[1])",
        reversed=(dict(overlap=3), dict(shared_transform=False), dict(same_seed_same_split=False),
                  dict(fresh_seeds_equal=True)))
def _splitting(f: dict) -> None:
    assert f["shared_transform"], "random_split's halves share one dataset, so validation is augmented"
    assert not f["fresh_seeds_equal"], "two fresh processes seed torch's global generator differently"
    assert f["overlap"] == 0 and f["val_own_transform"], "index split: disjoint files, validation's own transform"
    assert f["same_seed_same_split"], "the same seed gives the same validation images"


# --- lessons 07 ---

@lesson("07_beyond_the_loader",
        probe="dict(epoch_s={r['method']: r['epoch_s'] for r in rows[:2]}, moved=[r['change'] for r in moves], "
              "in_view=dict(common=len(common), covered=sorted(x for s in seen.values() for x in s) == list(split)), "
              "ddp_returncode=result.returncode, "
              "ddp_shards=[dict(shared=r['shared'], distinct=r['distinct'], "
              "dealt=sum(v for k, v in r.items() if k.startswith('rank '))) for r in shards], "
              "encoded_kb=encoded_kb, decoded_kb=decoded_kb)",
        reversed=(dict(epoch_s={"loader-fed": 0.01, "cached features": 2.0}), dict(moved=[0.1, 0.14, 0.23]),
                  dict(moved=[0.0, 0.0, 0.23]), dict(in_view=dict(common=4, covered=True)),
                  dict(ddp_shards=[dict(shared=3, distinct=157, dealt=160)]), dict(ddp_returncode=1),
                  dict(encoded_kb=60.0, decoded_kb=49.0)))
def _beyond_the_loader(f: dict) -> None:
    e = f["epoch_s"]
    assert e["cached features"] < e["loader-fed"] / 10, "an epoch from cached features is a small part of one from images"
    frozen, augmented, unfrozen = f["moved"]
    assert frozen == 0.0 and augmented > 0 and unfrozen > 0, "only a fixed transform and a frozen backbone repeat"
    assert f["in_view"] == dict(common=0, covered=True), "DistributedSampler deals each rank a disjoint share"
    assert f["ddp_returncode"] == 0 and f["ddp_shards"], "the torchrun job trained"
    assert all(r["shared"] == 0 and r["distinct"] == r["dealt"] for r in f["ddp_shards"]), "torchrun's shards disjoint"
    assert f["encoded_kb"] < f["decoded_kb"], "JPEG bytes are less to move than decoded pixels"

# --- end lessons 07 ---

# --- lessons 08 ---

@lesson("08_worker_memory",
        probe="dict(pss_none=pss[min(pss)], pss_most=pss[most], grew=grew, index_mb=rows[0]['index_mb'], "
              "started={f\"{r['start_method']} {r['index']}\": r['uss_before_mb_per_worker'] for r in rows + others}, "
              "other_methods=list(other_start_methods), "
              "float32_over_uint8=size[torch.float32] / size[torch.uint8])",
        reversed=(dict(pss_most=0.0), dict(grew={"python-list": 4.0, "numpy": 3.9, "helpers": 3.6}),
                  dict(index_mb=100.0), dict(started={"fork python-list": 5.2, "fork numpy": 5.3, "fork helpers": 5.2,
                                                      "forkserver python-list": 5.0, "forkserver helpers": 5.0}),
                  dict(float32_over_uint8=1.0)))
def _worker_memory(f: dict) -> None:
    assert f["pss_most"] > f["pss_none"], "each worker adds memory: PSS grows with num_workers"
    g = f["grew"]
    assert g["python-list"] > 3 * max(g["numpy"], g["helpers"]), "under fork the list is copied, the arrays are not"
    assert g["python-list"] > 0.5 * f["index_mb"], "each worker's copy is about as large as the list"
    for method in f["other_methods"]:
        for kind in ("python-list", "helpers"):
            assert f["started"][f"{method} {kind}"] > f["started"][f"fork {kind}"], f"{method} workers start larger"
    assert f["float32_over_uint8"] == 4, "a float32 batch in flight is four times the uint8 one"

# --- end lessons 08 ---

# --- lessons 10 ---

@lesson("10_see_the_workers",
        probe="dict(workers=workers, batches=batches, dealt=dealt, "
              "burst={str(f): n for f, n in burst.items()}, "
              "same_pids={str(p): len({frozenset(r['pid'] for r in rows if r['epoch'] == e) for e in (0, 1)}) == 1 "
              "for p, rows in passes.items()}, "
              "fast_wait=wait[0]['main_wait_fraction'], slow_wait=wait[consumer_ms]['main_wait_fraction'], "
              "process_pids=len({r['pid'] for r in mine}), thread_pids=len({r['pid'] for r in threaded}))",
        reversed=(dict(dealt={"worker 0": [0, 1, 2, 3], "worker 1": [4, 5, 6, 7]}), dict(burst={"2": 3, "4": 8}),
                  dict(same_pids={"False": True, "True": True}), dict(same_pids={"False": False, "True": False}),
                  dict(fast_wait=0.05, slow_wait=0.4), dict(thread_pids=3), dict(process_pids=1)))
def _see_the_workers(f: dict) -> None:
    n = f["workers"]
    assert f["dealt"] == {f"worker {k}": list(range(k, f["batches"], n)) for k in range(n)}, \
        "batch k is made by worker k mod num_workers"
    assert all(sent == int(factor) * n for factor, sent in f["burst"].items()), \
        "a pass starts by sending prefetch_factor x num_workers batches"
    assert f["same_pids"] == {"False": False, "True": True}, "only persistent workers serve both passes"
    assert f["fast_wait"] > f["slow_wait"], "the fast consumer waited a larger share of its pass than the slow one"
    assert f["process_pids"] == n and f["thread_pids"] == 1, "worker processes are N processes; threads live in one"

# --- end lessons 10 ---


# --- lessons 11 ---

@lesson("11_specialised_loaders",
        probe="dict(best={name: max(r['images_per_s'] for r in committed if r['loader'] == name) "
              "for name in dict.fromkeys(r['loader'] for r in committed)}, "
              "live_loaders=sorted({r['loader'] for r in live.rows}), "
              "live_dataloader_workers=[r['num_workers'] for r in live.rows if r['loader'] == 'dataloader'], "
              "workers=list(workers), installed=[n for n in LOADERS if n == 'dataloader' or not missing(n)])",
        reversed=(dict(best={"dataloader": 960.3, "nodes": 700.0, "spdl": 644.2, "dali": 449.9}),
                  dict(best={"dataloader": 960.3, "nodes": 977.6, "spdl": 990.0, "dali": 449.9}),
                  dict(best={"dataloader": 960.3, "nodes": 977.6, "spdl": 644.2, "dali": 700.0}),
                  dict(live_dataloader_workers=[1]), dict(live_loaders=["dataloader", "made-up"])))
def _specialised_loaders(f: dict) -> None:
    b = f["best"]
    assert abs(b["dataloader"] / b["nodes"] - 1) <= 0.10, "the committed run: nodes and the DataLoader within 10 %"
    assert b["spdl"] < b["dataloader"] and b["dali"] < b["spdl"], "the committed run: SPDL slower, DALI slowest"
    assert f["live_dataloader_workers"] == f["workers"], "the live run timed the DataLoader at every setting"
    assert f["live_loaders"] == sorted(f["installed"]), "the live run timed every installed loader and nothing else"

# --- end lessons 11 ---


# ---------------------------------------------------------------------------------------------------------------

STEMS = sorted(LESSONS)


@pytest.mark.parametrize("stem", STEMS)
def test_the_lesson_holds_in_the_executed_notebook(stem):
    LESSONS[stem].check(found(stem).facts)


@pytest.mark.parametrize("stem", STEMS)
def test_the_lesson_check_rejects_the_reversed_result(stem):
    facts = found(stem).facts
    for override in LESSONS[stem].reversed:
        assert set(override) <= set(facts), f"{stem}: reversed names a fact the probe does not give"
        with pytest.raises(AssertionError):
            LESSONS[stem].check({**facts, **override})


@pytest.mark.parametrize("stem", STEMS)
def test_every_figure_shown_is_titled_and_labelled(stem):
    for number, figure in enumerate(found(stem).figures, 1):
        plots = [ax for ax in figure["axes"] if not ax["colorbar"]]
        assert figure["suptitle"] or all(ax["title"] for ax in plots), f"{stem}: figure {number} has no title"
        for ax in plots:
            if ax["axis_on"] and not ax["images"]:
                assert ax["xlabel"] and ax["ylabel"], f"{stem}: figure {number}, '{ax['title']}': label both axes"


def test_every_notebook_has_a_lesson():
    from helpers.app.notebooks import notebook_paths

    missing = [p.stem for p in notebook_paths() if p.stem not in LESSONS]
    assert not missing, f"notebooks without a lesson in tests/test_lessons.py: {missing}"

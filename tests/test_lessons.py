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


# --- lessons 04 ---
@lesson("04_training",
        probe="dict(eval_same=in_eval[0] == in_eval[1], train_same=in_train[0] == in_train[1], "
              "wait_apart=all(0 < w < s for w, s in zip(history['waited'], history['seconds'])), "
              "epochs_timed=len(history['waited']), epochs=epochs, profile_steps=profile_steps, "
              "profiled_waits=[e.count for e in prof.key_averages() if e.key.startswith('enumerate(DataLoader)')], "
              "profiled_steps=[e.count for e in prof.key_averages() if e.key == 'train_step'], "
              "stopped_epochs=stopped['epoch'], resumed_epochs=resumed['epoch'])",
        reversed=(dict(eval_same=False), dict(train_same=True), dict(wait_apart=False), dict(profiled_waits=[]),
                  dict(resumed_epochs=[1])))
def _training(f: dict) -> None:
    assert f["eval_same"], "in eval mode two evaluations of the same model give the same validation loss"
    assert not f["train_same"], "in train mode (the blog's validation) dropout makes each evaluation a new draw"
    assert f["wait_apart"] and f["epochs_timed"] == f["epochs"], \
        "every epoch's wait for next(batches) is measured apart from compute: above 0 and below the pass's time"
    assert f["profiled_waits"] == [f["profile_steps"]] and f["profiled_steps"] == [f["profile_steps"]], \
        "torch.profiler sees one enumerate(DataLoader) wait beside each profiled training step"
    assert f["stopped_epochs"] == [1] and f["resumed_epochs"] == list(range(1, f["epochs"] + 1)), \
        "fit resumed after the checkpoint's epoch and finished the run"


# --- lessons 05 ---
@lesson("05_timing_workers",
        probe="dict(first_slower={n: first_batch[n] > steady_batch[n] for n in workers if n > 0}, "
              "settings=sorted(first_batch), workers=sorted(workers), "
              "e2e_waits=[r['data_wait_fraction'] for r in end_to_end.rows], "
              "e2e_settings=len(e2e_workers) * 2, "
              "blog_wait_none=[r['data_wait_fraction'] for r in blog_table if r['setup'] == 'blog 512px b4'][0], "
              "blog_wait_fastest=min((r for r in blog_table if r['setup'] == 'blog 512px b4'), "
              "key=lambda r: r['epoch_s'])['data_wait_fraction'])",
        reversed=(dict(first_slower={"1": True, "2": False}), dict(settings=[0]), dict(e2e_waits=[None, 0.1]),
                  dict(blog_wait_none=0.05)))
def _timing_workers(f: dict) -> None:
    assert f["first_slower"] and all(f["first_slower"].values()), \
        "with workers, the first batch (start-up) takes longer than a steady batch"
    assert f["settings"] == f["workers"], "every num_workers setting of the sweep was timed"
    assert len(f["e2e_waits"]) == f["e2e_settings"] and all(w is not None and 0 <= w < 1 for w in f["e2e_waits"]), \
        "end to end, the data wait is measured for every row, as a share of each step"
    assert f["blog_wait_none"] > 0.5 > 0.1 > f["blog_wait_fastest"], \
        "the blog's table: most of the epoch waiting with no workers, almost none at its fastest setting"


# --- lessons 06 ---
@lesson("06_cheaper_workers",
        probe="dict(bytes_ratio=bytes_ratio, "
              "batch_ratio=trip['float32', one]['mb_per_batch'] / trip['uint8', one]['mb_per_batch'], "
              "rungs=[r['part'] for r in ladder_rows], rung_workers=sorted({r['num_workers'] for r in ladder_rows}), "
              "ladder_workers=ladder_workers, total=ladder_rows[-1]['total_gain'], "
              "product=__import__('math').prod(r['gain'] for r in ladder_rows))",
        reversed=(dict(bytes_ratio=1.0), dict(batch_ratio=2.0), dict(rungs=["blog", "batch size"]),
                  dict(rung_workers=[0, 2]), dict(product=7.0)))
def _cheaper_workers(f: dict) -> None:
    assert f["bytes_ratio"] == 4 and f["batch_ratio"] == 4, "a float32 image and batch are 4 times their uint8 bytes"
    assert f["rungs"] == ["blog", "dtype", "resize", "decode", "batch size"], "the ladder changes one thing per rung"
    assert f["rung_workers"] == [f["ladder_workers"]], "every rung is timed at the same num_workers"
    assert abs(f["product"] - f["total"]) < 1e-6 * f["total"], "the rungs' gains multiply to the whole gain"


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

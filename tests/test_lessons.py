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

# --- lessons 00 ---
@lesson("00_setup_and_data",
        probe="dict(wait_none=no_workers['data_wait_fraction'], wait_best=best['data_wait_fraction'], "
              "best_workers=best['num_workers'], most_workers=blog[-1]['num_workers'], "
              "blog_lines_fail=sum(compiles(line) != 'compiles' for line in blog_lines), "
              "fixed_lines_compile=all(compiles(line) == 'compiles' for line in fixed_lines), "
              "smaller=smaller, sized=len(sizes), kept=kept, images=len(dataset), "
              "left_out=[name.split(':')[0] for name in left_out])",
        reversed=(dict(wait_none=0.3), dict(wait_best=0.8), dict(best_workers=16), dict(blog_lines_fail=1),
                  dict(fixed_lines_compile=False), dict(smaller=10), dict(kept=3), dict(left_out=[])))
def _setup_and_data(f: dict) -> None:
    assert f["wait_none"] > 0.5, "with no workers the blog's epoch waits for data most of the time"
    assert f["wait_best"] < f["wait_none"] / 2, "workers cut the wait"
    assert 0 < f["best_workers"] < f["most_workers"], "past the fastest setting more workers were slower"
    assert f["blog_lines_fail"] == 2 and f["fixed_lines_compile"], "defect 1: both blog lines fail, both fixes compile"
    assert f["smaller"] > f["sized"] / 2, "the blog's 512 px resize enlarges most images"
    assert f["kept"] == f["images"] - 1 and f["left_out"] == ["cut_short.jpg"], "the loader leaves out the bad file"


# --- lessons 01 ---
@lesson("01_transforms",
        probe="dict(pixel_ratio=pixel_ratio, cost_big=big, cost_small=small, max_levels=float(levels.max()), "
              "distinct_draws=distinct_draws, val_identical=val_identical, "
              "bytes_ratio=batch_bytes['blog'] / batch_bytes['fast'])",
        reversed=(dict(pixel_ratio=1.0), dict(cost_big=1.0, cost_small=2.0), dict(max_levels=5.0),
                  dict(distinct_draws=1), dict(val_identical=False), dict(bytes_ratio=1.0)))
def _transforms(f: dict) -> None:
    assert f["pixel_ratio"] > 5, "512 px is more than five times the pixels of 224 px"
    assert f["cost_big"] > f["cost_small"], "the blog pipeline costs more per image at 512 px than at 224"
    assert f["max_levels"] <= 1, "the uint8 v2 pipeline gives the model the blog pipeline's numbers"
    assert f["distinct_draws"] > 1 and f["val_identical"], "training draws differ, validation calls do not"
    assert f["bytes_ratio"] == 4, "a uint8 batch is a quarter of the float32 one"


# --- lessons 02 ---
@lesson("02_splitting",
        probe="dict(shared_transform=val_part.dataset.transform is train_pipe.transform, "
              "overlap=len(train_files & val_files), val_own_transform=val_set.transform is val_pipe.transform, "
              "same_seed_same_split={s.path for s in again_val.samples} == val_files, "
              "fresh_seeds_equal=seeds[0] == seeds[1], same_seed_same_order=same_seed_same_order, "
              "reshuffled=reshuffled, val_in_order=val_in_order)",
        reversed=(dict(overlap=3), dict(shared_transform=False), dict(same_seed_same_split=False),
                  dict(fresh_seeds_equal=True), dict(same_seed_same_order=False), dict(reshuffled=False),
                  dict(val_in_order=False)))
def _splitting(f: dict) -> None:
    assert f["shared_transform"], "random_split's halves share one dataset, so validation is augmented"
    assert not f["fresh_seeds_equal"], "two fresh processes seed torch's global generator differently"
    assert f["overlap"] == 0 and f["val_own_transform"], "index split: disjoint files, validation's own transform"
    assert f["same_seed_same_split"], "the same seed gives the same validation images"
    assert f["same_seed_same_order"] and f["reshuffled"], "a seeded generator: the same order per run, new per epoch"
    assert f["val_in_order"], "validation unshuffled: the same order every pass"


# --- lessons 12 ---
@lesson("12_far_away_storage",
        probe="dict(samples=len(index.samples), wrapped=wrapped, fixed=fixed, cores=cores, far_ms=max(latencies_ms), "
              "best_far=best[max(latencies_ms)]['num_workers'], need_far=need[max(latencies_ms)], "
              "cold_cached=before, warm_cached=resident_fraction(copies))",
        reversed=(dict(wrapped=200), dict(fixed=400), dict(best_far=2), dict(need_far=2.0), dict(cold_cached=1.0),
                  dict(warm_cached=0.0)))
def _far_away(f: dict) -> None:
    assert f["wrapped"] == 2 * f["samples"], "2 shards, 4 workers, the wrap-around shortcut: every sample twice"
    assert f["fixed"] == f["samples"], "split by shard and by sample: every sample once"
    assert f["far_ms"] > 0 and f["need_far"] > f["cores"], "Little's law asks for more workers than cores"
    assert f["best_far"] > f["cores"], "when files wait on storage the fastest pass used more workers than cores"
    assert f["cold_cached"] == 0 and f["warm_cached"] == 1, "evict empties the page cache of the files; a read fills it"
# --- lessons 12 end ---


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

"""helpers.timing.sweep with a fake measurement: the order settings are timed in, what is skipped, the summary and
the verdicts; no clock is read."""
from helpers.timing.sweep import SKIP, sweep
from helpers.verdict import FASTER, SAME, SLOWER, TOO_FEW


def fake(values: dict):
    """A measure_once that hands out VALUES[setting] one by one and records the order it was called in."""
    calls, left = [], {k: list(v) for k, v in values.items()}

    def once(setting):
        calls.append(setting)
        return left[setting].pop(0) if left.get(setting) else SKIP
    return once, calls


def test_settings_take_turns_within_each_repeat():
    once, calls = fake({"a": [1] * 3, "b": [2] * 3, "c": [3] * 3})
    seen = []
    sweep(["a", "b", "c"], once, 3, on_repeat=lambda s, run: seen.append((s, run)))
    assert calls == ["a", "b", "c"] * 3
    assert seen == [("a", 1), ("b", 2), ("c", 3)] * 3


def test_median_min_max_and_the_repeats_in_order():
    once, _ = fake({"a": [5, 1, 3]})
    row, = sweep(["a"], once, 3)
    assert (row.values, row.median, row.min, row.max) == ([5.0, 1.0, 3.0], 3.0, 1.0, 5.0)
    assert row.runs == [5, 1, 3] and row.verdict is None


def test_each_row_is_judged_against_its_neighbour():
    once, _ = fake({1: [10, 11, 12, 13, 14], 2: [20, 21, 22, 23, 24], 4: [19, 25, 21, 22, 23], 8: [1, 2, 3, 4, 5]})
    rows = sweep([1, 2, 4, 8], once, 5)
    assert [r.verdict for r in rows] == [None, FASTER, SAME, SLOWER]
    assert [r.against for r in rows] == [None, 1, 2, 4]


def test_a_reference_setting_and_lower_is_better():
    once, _ = fake({"ms": [5] * 5, "fast": [1] * 5, "slow": [9] * 5})
    rows = sweep(["ms", "fast", "slow"], once, 5, reference="ms", higher_is_better=False)
    assert [r.verdict for r in rows] == [None, FASTER, SLOWER]
    assert {r.against for r in rows[1:]} == {"ms"}


def test_groups_are_judged_apart_and_skipped_settings_get_no_row():
    settings = [(0, "x"), (0, "y"), (1, "x"), (1, "y")]
    once, calls = fake({(0, "x"): [1] * 5, (1, "x"): [9] * 5, (1, "y"): [2] * 5})  # (0, "y") is skipped
    steps = []
    rows = sweep(settings, once, 5, group=lambda s: s[1], on_repeat=lambda s, run: steps.append(s))
    assert len(calls) == len(steps) == 20  # a skipped setting still moves the progress bar
    assert [r.setting for r in rows] == [(0, "x"), (1, "x"), (1, "y")]
    assert [r.verdict for r in rows] == [None, FASTER, None]  # (1, "y") has no neighbour in its group


def test_too_few_repeats_say_so():
    once, _ = fake({"a": [1, 1], "b": [2, 2]})
    assert [r.verdict for r in sweep(["a", "b"], once, 2)] == [None, TOO_FEW]


def test_median_of_leaves_out_missing_values():
    once, _ = fake({"a": [dict(v=1.0, w=None), dict(v=3.0, w=None), dict(v=2.0, w=None)]})
    row, = sweep(["a"], once, 3, value=lambda r: r["v"])
    assert row.median_of(lambda r: r["v"]) == 2.0 and row.median_of(lambda r: r["w"]) is None


def test_loader_sweep_gives_one_row_per_setting_judged_against_the_reference(sample_dir):
    from helpers.loading.data import index_image_folder
    from measure_knobs import fast_dataset, loader_sweep  # scripts/: the knobs' sweep is that script's own

    rows = loader_sweep(fast_dataset(index_image_folder(sample_dir), 32), [dict(in_order=True), dict(in_order=False)],
                        workers=0, batch_size=4, batches=2, repeats=2, reference=0)
    assert [r["in_order"] for r in rows] == [True, False]
    assert [len(r["repeats"]) for r in rows] == [2, 2]
    assert rows[0]["verdict"] is None and rows[1]["verdict"] == TOO_FEW

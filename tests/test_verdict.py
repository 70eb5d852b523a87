"""The verdict (helpers/verdict.py) on fixed numbers: paired by round, round 1 left out, a t-interval and a margin."""
from helpers.verdict import FASTER, SAME, SLOWER, TOO_FEW, ratio_interval, replicated, verdict

# results/autotune_cpu2_run1.txt: the settled setting and 0 workers, repeats in turns (round 1 first)
SETTLED = [31.4, 67.9, 68.5, 66.4, 73.4]
ZERO_WORKERS = [41.4, 44.4, 45.5, 44.9, 45.9]


def test_the_settled_setting_beats_zero_workers_though_the_ranges_overlap():
    assert min(SETTLED) < max(ZERO_WORKERS)  # the old rule (ranges that do not overlap) said no difference
    assert verdict(SETTLED, ZERO_WORKERS) == FASTER
    assert verdict(ZERO_WORKERS, SETTLED) == SLOWER


def test_round_one_is_a_warm_up():
    a, b = [100.0, 110.0, 121.0, 108.0, 115.0], [100.0, 100.0, 110.0, 98.0, 104.0]
    assert verdict(a, b) == FASTER
    assert verdict([1.0] + a[1:], b) == verdict([1000.0] + a[1:], b) == FASTER


def test_rounds_are_paired_so_a_drifting_machine_does_not_hide_a_difference():
    slow = [100.0, 90.0, 80.0, 70.0, 60.0]              # the machine slows down round by round
    fast = [x * r for x, r in zip(slow, (1.0, 1.12, 1.1, 1.13, 1.11))]
    assert verdict(fast, slow) == FASTER
    assert verdict([fast[0], fast[4], fast[1], fast[3], fast[2]], slow) == SAME  # the same numbers, pairs broken


def test_a_sure_difference_inside_the_margin_is_no_difference():
    base = [100.0, 100.0, 90.0, 110.0, 95.0]
    assert verdict([x * 1.03 for x in base], base) == SAME
    assert verdict([x * 1.08 for x in base], base) == FASTER


def test_noisy_ratios_around_one_are_no_difference():
    assert verdict([100, 96, 108, 99, 103], [100, 104, 97, 101, 98]) == SAME


def test_times_are_read_lower_is_better():
    assert verdict([1.0, 1.1, 1.2, 1.0, 1.1], [2.0, 2.1, 2.2, 2.0, 2.1], higher_is_better=False) == FASTER


def test_the_ratio_comes_with_its_interval():
    ratio, low, high = ratio_interval(SETTLED, ZERO_WORKERS)
    assert 1 < low < ratio < high and abs(ratio - 1.53) < 0.01


def test_fewer_than_five_repeats_are_not_compared():
    assert verdict([10, 11, 12], [1, 2, 3]) == TOO_FEW
    assert ratio_interval([10, 11, 12], [1, 2, 3]) is None


def test_runs_that_disagree_give_no_difference():
    assert replicated([FASTER, FASTER, FASTER]) == FASTER
    assert replicated([FASTER, SAME, FASTER]) == SAME
    assert replicated([FASTER, SLOWER]) == SAME
    assert replicated([FASTER, TOO_FEW]) == TOO_FEW

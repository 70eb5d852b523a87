from helpers.timing.verdict import FASTER, SAME, SLOWER, TOO_FEW, replicated, verdict


def test_ranges_clear_of_each_other_give_a_direction():
    fast, slow = [10, 11, 12, 11, 10.5], [8, 9, 9.5, 8.5, 9]
    assert verdict(fast, slow) == FASTER
    assert verdict(slow, fast) == SLOWER


def test_one_overlapping_repeat_is_no_difference():
    assert verdict([10, 11, 12, 11, 9.2], [8, 9, 9.5, 8.5, 9]) == SAME


def test_times_are_read_lower_is_better():
    assert verdict([1.0, 1.1, 1.2, 1.0, 1.1], [2.0, 2.1, 2.2, 2.0, 2.1], higher_is_better=False) == FASTER


def test_fewer_than_five_repeats_are_not_compared():
    assert verdict([10, 11, 12], [1, 2, 3]) == TOO_FEW


def test_runs_that_disagree_give_no_difference():
    assert replicated([FASTER, FASTER, FASTER]) == FASTER
    assert replicated([FASTER, SAME, FASTER]) == SAME
    assert replicated([FASTER, SLOWER]) == SAME
    assert replicated([FASTER, TOO_FEW]) == TOO_FEW

"""--num-workers auto: the decision rule on fake epochs (no timing), the tuner's record and resume, and the options."""
import pytest

from helpers.errors import OptionError
from helpers.training.autotune import AutoWorkers, Limits, Tried, decide
from helpers.training.config import TrainConfig, refuse_auto_workers

LIMITS = Limits(cores=4, memory_mb=4000)


def epoch(n, p=2, wait=0.0, seconds=10.0, memory=1000.0):
    return Tried(n, p, wait, seconds, memory)


def test_a_training_that_waits_for_data_gets_one_more_worker_up_to_the_cores():
    assert decide([epoch(2, wait=0.30)], LIMITS).setting == (3, 2)
    at_limit = decide([epoch(3, wait=0.3), epoch(4, wait=0.20)], LIMITS)
    assert at_limit.setting == (4, 4) and "deeper prefetch" in at_limit.reason and not at_limit.settled


def test_a_training_that_keeps_up_tries_one_worker_fewer_and_settles_on_the_fewest_that_keep_up():
    assert decide([epoch(4, wait=0.01)], LIMITS).setting == (3, 2)
    back = decide([epoch(4, wait=0.01, seconds=10), epoch(3, wait=0.12, seconds=12)], LIMITS)
    assert back.setting == (4, 2) and back.settled
    fewer = decide([epoch(4, wait=0.01, seconds=10), epoch(3, wait=0.02, seconds=10.2), epoch(2, wait=0.03,
                                                                                              seconds=10.3)], LIMITS)
    assert fewer.setting == (1, 2)  # 2 workers within 5 % of the fastest and still under 5 % data wait: one fewer again


def test_memory_over_the_budget_takes_a_worker_away_and_stops_the_climb():
    assert decide([epoch(4, wait=0.3, memory=5000)], LIMITS).setting == (3, 2)
    assert decide([epoch(2, wait=0.3, memory=3500)], LIMITS).setting == (2, 4)  # a third worker would not fit


def test_a_loader_that_cannot_keep_up_settles_on_the_fastest_setting_tried_and_says_why():
    tried = [epoch(4, 2, 0.4, 20), epoch(4, 4, 0.38, 19.5), epoch(4, 8, 0.39, 19.8)]  # all within 5 %: the shallowest
    last = decide(tried, LIMITS)
    assert last.settled and last.setting == (4, 2) and "make each sample cheaper" in last.reason


def test_the_tuner_records_each_epoch_in_the_history_and_a_resumed_one_goes_on_from_there():
    history: dict = {}
    tuner = AutoWorkers(history, None, LIMITS)
    assert (tuner.num_workers, tuner.prefetch_factor) == (4, 2)
    tuner.after_epoch(1, seconds=10, data_seconds=0.1, memory_mb=900)
    assert (tuner.num_workers, tuner.note.count("->")) == (3, 1) and "trying one worker fewer" in tuner.note
    tuner.after_epoch(2, seconds=14, data_seconds=2.0, memory_mb=800)
    assert tuner.settled and tuner.num_workers == 4
    resumed = AutoWorkers(history, None, LIMITS)
    assert (resumed.num_workers, resumed.settled) == (4, True) and "resumed at 4 workers" in resumed.start_line()
    resumed.after_epoch(3, seconds=10, data_seconds=0.1, memory_mb=900)
    assert [r["epoch"] for r in history["workers"]] == [1, 2, 3] and history["workers"][-1]["next_workers"] == 4


def test_auto_is_accepted_by_train_and_refused_where_nothing_tunes_it():
    assert TrainConfig(num_workers="auto").num_workers == "auto"
    with pytest.raises(OptionError, match="--num-workers: got 'many'; accepted: .* or auto"):
        TrainConfig(num_workers="many")
    with pytest.raises(OptionError, match="cached does not tune the workers"):
        refuse_auto_workers(TrainConfig(num_workers="auto"), "cached")

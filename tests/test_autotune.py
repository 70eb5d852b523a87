"""--num-workers auto: the decision rule on fake epochs (no timing), the tuner's record and resume, and the options."""
import pytest

from helpers.errors import OptionError
from helpers.training.autotune import AutoWorkers, Limits, Tried, decide, start, window_rates
from helpers.training.config import TrainConfig
from helpers.which_workers import Costs

LIMITS = Limits(cores=2, memory_mb=4000, cap=8)
LOCAL = Costs(cpu_s=0.010, wait_s=0.0, cores=2)      # files do not wait: the cores bind
FAR = Costs(cpu_s=0.010, wait_s=0.025, cores=2)      # 25 ms per file: Little's law asks for 7 workers
BASE = [100.0, 104.0, 97.0, 101.0, 99.0]             # a window pattern; rates scale it


def epoch(n, rate, wait=0.0, memory=1000.0, p=2):
    """One fake epoch at N workers whose windows ran at RATE x BASE / 100 images/s."""
    rates = tuple(rate * b / 100 for b in BASE)
    return Tried(n, p, wait, 1000 / rate, memory, rates)


def test_auto_starts_at_the_cores_when_files_do_not_wait_and_past_them_when_they_do():
    assert start(LOCAL, LIMITS) == 2
    assert start(FAR, LIMITS) == 7  # 2 x (25 + 10) / 10
    assert start(Costs(cpu_s=0.010, wait_s=0.100, cores=2), LIMITS) == 8  # 22 asked for, the front door's cap
    assert start(None, LIMITS) == 2


def test_files_that_wait_settle_past_the_cores_when_fewer_workers_are_measurably_slower():
    tried = [epoch(7, 190.0, wait=0.30)]
    d = decide(tried, LIMITS, FAR)
    assert d.num_workers == 8 and not d.settled and "more workers" in d.reason  # the waiting binds at 7
    tried.append(epoch(8, 200.0, wait=0.25))
    d = decide(tried, LIMITS, FAR)
    assert d.num_workers == 4 and "trying fewer" in d.reason  # at the cap: is it worth it?
    tried.append(epoch(4, 110.0, wait=0.6))
    d = decide(tried, LIMITS, FAR)
    assert d.settled and d.num_workers == 8 and d.num_workers > LIMITS.cores


def test_a_loader_the_cores_limit_steps_down_while_fewer_workers_are_tied_with_the_best():
    tried = [epoch(2, 100.0, wait=0.30)]
    d = decide(tried, LIMITS, LOCAL)
    assert d.num_workers == 1 and "the cores" in d.reason  # data waits, but more workers cannot help: the cores bind
    tried.append(epoch(1, 99.0, wait=0.35))
    d = decide(tried, LIMITS, LOCAL)
    assert d.settled and d.num_workers == 1  # tied with 2 by the verdict: the fewer


def test_without_the_model_it_climbs_while_the_step_waits_and_each_step_up_was_worth_it():
    tried = [epoch(2, 100.0, wait=0.3)]
    assert decide(tried, LIMITS).num_workers == 3
    tried.append(epoch(3, 130.0, wait=0.2))
    assert decide(tried, LIMITS).num_workers == 4  # 3 was measurably faster than 2
    tried.append(epoch(4, 131.0, wait=0.1))
    d = decide(tried, LIMITS)
    assert d.settled and d.num_workers == 3  # 4 tied with 3; 2 (3's fewer) was tried and slower


def test_memory_over_the_budget_takes_a_worker_away_and_is_never_picked():
    assert decide([epoch(4, 100.0, memory=5000)], LIMITS).num_workers == 3
    tried = [epoch(2, 100.0), epoch(1, 60.0), epoch(3, 150.0, memory=5000)]
    assert decide(tried, LIMITS).num_workers == 2


def test_window_rates_split_the_pass_into_equal_runs_of_whole_rounds_of_batches():
    marks = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 19.0]  # the last batch took 10 s
    rates = window_rates(marks, images=160)
    assert len(rates) == 5 and rates[0] == pytest.approx(16.0) and rates[-1] == pytest.approx(32 / 11)
    bursts = [0.0, 1.0, 1.001, 2.0, 2.001, 3.0, 3.001, 4.0, 4.001, 5.0, 5.001]  # 2 workers, a batch each at once
    assert window_rates(bursts, images=160, workers=2) == pytest.approx([32 / 1.001, 32 / 1.0, 32 / 1.0, 32 / 1.0,
                                                                         32 / 1.0], rel=1e-3)
    assert window_rates(marks[:4], images=48, workers=8) == ()  # 3 batches, rounds of 8: no whole window


def test_the_tuner_records_each_epoch_in_the_history_and_a_resumed_one_goes_on_from_there():
    history: dict = {}
    tuner = AutoWorkers(history, None, LIMITS, FAR)
    assert tuner.num_workers == 7 and "Little's law" in tuner.start_line()
    tuner.after_epoch(1, seconds=5, data_seconds=2, memory_mb=900, rates=[190 * b / 100 for b in BASE])
    assert tuner.num_workers == 8 and tuner.note.count("->") == 1 and tuner.note.endswith("more workers]")
    resumed = AutoWorkers(history, None, LIMITS)  # no costs given: the history's are used
    assert (resumed.num_workers, resumed.costs) == (8, FAR) and "resumed at 8 workers" in resumed.start_line()
    resumed.after_epoch(2, seconds=5, data_seconds=1, memory_mb=900, rates=[200 * b / 100 for b in BASE])
    assert resumed.num_workers == 4 and [r["epoch"] for r in history["workers"]] == [1, 2]
    again = AutoWorkers(history, None, LIMITS)
    again.after_epoch(3, seconds=9, data_seconds=5, memory_mb=900, rates=[110 * b / 100 for b in BASE])
    assert again.settled and again.num_workers == 8 and "settled on 8" in again.note


def test_auto_is_accepted_by_train_and_refused_where_nothing_tunes_it():
    assert TrainConfig(num_workers="auto").num_workers == "auto"
    with pytest.raises(OptionError, match="--num-workers: got 'many'; accepted: .* or auto"):
        TrainConfig(num_workers="many")
    assert TrainConfig(read_latency_ms=25).read_latency_ms == 25
    with pytest.raises(OptionError, match="--read-latency-ms"):
        TrainConfig(read_latency_ms=-1)

"""Which num_workers, and why: one model of the loader, and the one pick that bench, profile, storage and auto share.

The model (predict) takes what one item costs, measured: a worker's CPU time per item, its waiting time (storage,
network: time that uses no core), the main process's time per item to receive a worker's batch (the trip), and the
consumer's step per item with the data already in memory (its headspace); and the usable cores, the main process's
own share included. At n workers the rate is the least of three limits:
  - the step: the main process receives and steps each item in turn, 1 / (trip + step);
  - the cores: every item's CPU time, the workers' and the main process's, shared by the cores;
  - the waiting: n workers each hold an item for its CPU time plus its wait (Little's law), n / (cpu + wait).
At 0 workers the main process does all of it in turn: 1 / (cpu + wait + step). The limit that gives the least is the
one that binds, and the fewest workers that reach the other two (workers_for) is Little's law's answer.

The pick (pick) is measured, not modelled: the fewest workers whose repeats the verdict (helpers/verdict.py) cannot
tell from (or finds faster than) the setting with the best median. The model's prediction is where a tuner starts and
what explains a pick; a measurement decides.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Sequence, TypeVar

from .verdict import SLOWER, TOO_FEW, verdict

K = TypeVar("K", bound=Hashable)
STEP, CORES, WAITING, MAIN = "the step", "the cores", "the waiting", "the main process alone"


@dataclass(frozen=True)
class Costs:
    """What one item costs, in seconds, and the usable cores: the model's inputs, each measured."""

    cpu_s: float              # a worker's CPU time per item: read, decode, transform, its share of collate
    wait_s: float = 0.0       # per item, waiting that uses no core (storage, network)
    trip_s: float = 0.0       # per item, the main process receiving a worker's batch (0 at num_workers=0)
    step_s: float = 0.0       # per item, the consumer's step on data already in memory (0: the loader alone)
    cores: float = 1.0        # usable cores, the main process's included
    step_on_cores: bool = True  # the step computes on the CPU (False: an accelerator does, the main process waits)

    def __post_init__(self) -> None:
        if self.cpu_s <= 0 or self.cores <= 0 or min(self.wait_s, self.trip_s, self.step_s) < 0:
            raise ValueError(f"the CPU time per item and the cores must be above 0, the rest 0 or more; got {self}")


@dataclass(frozen=True)
class Prediction:
    num_workers: int
    images_per_s: float
    limit: str  # which limit binds: STEP, CORES, WAITING, or MAIN at 0 workers


def limits(costs: Costs, n: int) -> dict[str, float]:
    """Items per second each limit allows at N >= 1 workers."""
    main = costs.trip_s + costs.step_s
    core_s = costs.cpu_s + costs.trip_s + (costs.step_s if costs.step_on_cores else 0.0)
    return {STEP: 1 / main if main > 0 else math.inf, CORES: costs.cores / core_s,
            WAITING: n / (costs.cpu_s + costs.wait_s)}


def predict(costs: Costs, n: int) -> Prediction:
    """The rate the model predicts at N workers, and the limit that binds there."""
    if n == 0:
        return Prediction(0, 1 / (costs.cpu_s + costs.wait_s + costs.step_s), MAIN)
    found = limits(costs, n)
    limit = min(found, key=found.get)
    return Prediction(n, found[limit], limit)


def workers_for(costs: Costs) -> float:
    """Little's law: how many workers in flight reach the step's and the cores' limits, each holding an item for its
    CPU time plus its wait (with neither a step nor a trip: cores x (1 + wait / CPU time)); round it up to use it."""
    found = limits(costs, 1)
    return min(found[STEP], found[CORES]) * (costs.cpu_s + costs.wait_s)


def explain(costs: Costs, n: int) -> str:
    """One sentence: what the model predicts at N workers and which limit binds there."""
    p = predict(costs, n)
    return (f"model: {p.images_per_s:.1f} images/s at {n} workers, limited by {p.limit} (per item: "
            f"{1000 * costs.cpu_s:.1f} ms CPU, {1000 * costs.wait_s:.1f} ms wait, {1000 * costs.trip_s:.1f} ms trip, "
            f"{1000 * costs.step_s:.1f} ms step, on {costs.cores:g} cores)")


def pick(timed: Mapping[K, Sequence[float]], higher_is_better: bool = True) -> tuple[K, str]:
    """The fewest workers (the smallest key) tied with the best median by the verdict, and how it was chosen.

    TIMED maps a setting (num_workers, or a tuple that starts with it) to its repeats taken in turns. With too few
    repeats for a verdict it is the best median, and the reason says so.
    """
    middle = {k: statistics.median(v) for k, v in timed.items()}
    best = (max if higher_is_better else min)(middle, key=middle.get)
    said = {k: verdict(v, timed[best], higher_is_better) for k, v in timed.items() if k != best}
    if TOO_FEW in said.values():
        return best, "the best median (too few repeats for a verdict)"
    chosen = min([best] + [k for k, v in said.items() if v != SLOWER])
    return chosen, ("the best median; fewer workers are measurably slower" if chosen == best else
                    f"the fewest workers with no measurable difference from the best median ({best})")


def trip_seconds(batch: Any, images: int, tries: int = 5) -> float:
    """Per item, pickling BATCH the way a worker sends it and unpickling it the way the main process receives it."""
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401  (registers the tensor reductions with ForkingPickler)
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        ForkingPickler.loads(ForkingPickler.dumps(batch))
        times.append(time.perf_counter() - start)
    return statistics.median(times) / max(images, 1)


def measured_costs(dataset: Any, collate: Callable[[list], Any], batch_size: int, cores: float,
                   step: Callable[[Any], Any] | None = None, items: int = 8, on_cores: bool = True) -> Costs:
    """The model's inputs, measured here on a map-style DATASET: CPU and waiting time per item (in this thread: wall
    time less CPU time waits), the trip of one collated batch, and STEP's headspace (timed on that batch, in memory)."""
    count = min(items, len(dataset))
    dataset[0]  # warm-up, not counted
    start, cpu = time.perf_counter(), time.thread_time()
    for i in range(count):
        dataset[i]
    wall, used = time.perf_counter() - start, time.thread_time() - cpu
    batch, step_s = collate([dataset[i % len(dataset)] for i in range(batch_size)]), 0.0
    if step is not None:
        step(batch)  # warm-up
        start = time.perf_counter()
        for _ in range(3):
            step(batch)
        step_s = (time.perf_counter() - start) / (3 * batch_size)
    return Costs(max(used / count, 1e-6), max(wall - used, 0.0) / count, trip_seconds(batch, batch_size), step_s,
                 cores, on_cores)

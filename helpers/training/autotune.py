"""`--num-workers auto`: num_workers chosen between epochs by the loader model and the one pick (helpers/which_workers.py).

PyTorch has no counterpart of tf.data's AUTOTUNE (pytorch/pytorch#23048): this is one, at epoch granularity. Before
the first epoch it measures what one item costs in this process (its CPU time, and the wait that uses no core) and
starts at Little's law's count: the usable cores (this rank's share) when items do not wait, past them when they do,
up to the front door's cap and the memory budget. Each epoch's training pass gives WINDOWS windows' rates, the repeats
the verdict compares. Then it tries a neighbour: more workers while the step waited for data and the model says the
waiting binds, else fewer; it goes on past a neighbour only while that one was tied with the best or measurably
faster, and settles on the one pick over every setting tried: the fewest workers tied with the best by the verdict.
prefetch_factor stays as given (2 by default). The decisions are kept in the history, so a resumed run goes on from
the same setting, and the model's results do not depend on them: the training order and each image's augmentation
follow from seeds alone (resumable loaders).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import psutil

from ..machine import memory_budget_mb, rank_cores
from ..options import max_workers
from ..verdict import FASTER, verdict
from ..which_workers import WAITING, Costs, pick, predict, workers_for

TARGET = 0.05        # a data-wait share under which the step does not wait for the loader
WINDOWS = 5          # rates per epoch's training pass (the first, with the workers' start-up, the verdict's warm-up)
MB = 2**20


@dataclass(frozen=True)
class Tried:
    """One epoch at one setting: what it measured."""

    num_workers: int
    prefetch_factor: int
    data_wait: float   # share of the epoch spent waiting for the loader
    seconds: float     # the epoch's time (the same images every epoch, so lower is faster)
    memory_mb: float   # PSS of this process and its workers at the epoch's end
    rates: tuple[float, ...] = ()  # images/s of each window of the training pass, in order

    @property
    def setting(self) -> tuple[int, int]:
        return self.num_workers, self.prefetch_factor


@dataclass(frozen=True)
class Limits:
    cores: int
    memory_mb: float
    cap: int = 0  # the most workers the front door allows (0: the cores)


@dataclass(frozen=True)
class Decision:
    num_workers: int
    prefetch_factor: int
    reason: str
    settled: bool = False


def start(costs: Costs | None, limits: Limits) -> int:
    """The first epoch's workers: Little's law's count from the measured costs (the cores without them), capped."""
    if costs is None:
        return limits.cores
    return min(max(1, math.ceil(workers_for(costs) - 1e-9)), max(limits.cap, limits.cores))


def decide(tried: list[Tried], limits: Limits, costs: Costs | None = None) -> Decision:
    """The setting for the next epoch, from every epoch so far (the last one's setting is the current one)."""
    last, before = tried[-1], (tried[-2] if len(tried) > 1 else None)
    (n, p), seen = last.setting, {t.num_workers: t for t in tried}  # the latest epoch of each worker count
    if last.memory_mb > limits.memory_mb and n > 1:
        return Decision(n - 1, p, f"memory {last.memory_mb:.0f} MB over the {limits.memory_mb:.0f} MB budget: "
                                  "one worker fewer")
    fits = {k: t for k, t in seen.items() if t.memory_mb <= limits.memory_mb} or {min(seen): seen[min(seen)]}
    chosen, why = pick({k: list(t.rates) or [1 / t.seconds] for k, t in fits.items()})
    binds = predict(costs, n).limit if costs else None
    wait = f"data wait {last.data_wait:.0%}" + (f", the model's limit at {n}: {binds}" if binds else "")
    up = min(max(limits.cap, limits.cores), n + max(1, n // 2))
    climbing = before is None or before.num_workers < n
    worth = before is None or verdict(list(last.rates), list(before.rates)) == FASTER
    if (last.data_wait >= TARGET and binds in (None, WAITING) and climbing and worth and up > n and up not in seen
            and last.memory_mb * (up + 1) / (n + 1) <= limits.memory_mb):
        return Decision(up, p, f"{wait}: more workers")
    below = max(1, chosen - max(1, chosen // 2))
    if below < chosen and below not in seen:
        return Decision(below, p, f"{wait}: trying fewer workers")
    return Decision(chosen, fits[chosen].prefetch_factor, f"settled on {chosen}: {why}", settled=True)


def limits_here() -> Limits:
    """The cores this process's workers may use (its share under torchrun), the memory budget, and the front door's cap."""
    return Limits(rank_cores()[0], memory_budget_mb(), max_workers())


def memory_now_mb() -> float:
    """PSS of this process and its children (the loaders' workers), in MB."""
    total = 0.0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += getattr(info, "pss", info.rss) / MB
    return total


def window_rates(marks: Sequence[float], images: int, workers: int = 1, windows: int = WINDOWS) -> tuple[float, ...]:
    """Images/s in up to WINDOWS equal runs of batches, from MARKS (the pass's start, then each batch's arrival).

    A run holds whole rounds of the WORKERS (a multiple of num_workers batches): they deliver in bursts of about one
    batch each, and a window that ends inside a burst would read its rate from a few milliseconds."""
    batches, rounds = len(marks) - 1, max(workers, 1)
    size = rounds * max(1, math.ceil(batches / windows / rounds))
    if batches < 1 or size > batches:
        return ()
    per_batch = images / batches
    return tuple(size * per_batch / (marks[b + size] - marks[b]) for b in range(0, batches - size + 1, size))


class AutoWorkers:
    """The tuner of one run: its epochs so far (kept in the history under 'workers'), and the setting to use next."""

    def __init__(self, history: dict[str, list], start_prefetch: int | None, limits: Limits | None = None,
                 costs: Costs | None = None) -> None:
        self.records: list[dict] = history.setdefault("workers", [])
        self.limits, self.costs = limits or limits_here(), costs
        if self.records:  # resumed: go on from the setting the last epoch chose, with the costs it knew
            last = self.records[-1]
            self.costs = Costs(**last["costs"]) if last.get("costs") else costs
            self.num_workers, self.prefetch_factor = last["next_workers"], last["next_prefetch"]
            self.settled = last["settled"]
        else:
            self.num_workers, self.prefetch_factor = start(costs, self.limits), start_prefetch or 2
            self.settled = False
        self.note = ""

    def start_line(self) -> str:
        if self.records:
            return (f"--num-workers auto: resumed at {self.num_workers} workers, prefetch_factor {self.prefetch_factor}"
                    + (" (settled)" if self.settled else ""))
        why = (f"Little's law from one item's {1000 * self.costs.cpu_s:.1f} ms CPU and {1000 * self.costs.wait_s:.1f} "
               f"ms wait, on {self.limits.cores} usable cores" if self.costs else "the usable cores")
        return (f"--num-workers auto: starting at {self.num_workers} workers ({why}"
                f"{' of this rank' if rank_cores()[1] > 1 else ''}; at most {max(self.limits.cap, self.limits.cores)}), "
                f"prefetch_factor {self.prefetch_factor}; memory budget {self.limits.memory_mb:.0f} MB")

    def after_epoch(self, epoch: int, seconds: float, data_seconds: float, memory_mb: float | None = None,
                    rates: Sequence[float] = (), step_s: float | None = None) -> None:
        """Record EPOCH's measurement and choose the next setting; the epoch line's note says what and why.

        RATES: the training pass's window rates (the verdict's repeats); STEP_S: the step's time per item measured
        in this epoch, which refines the model."""
        memory = memory_now_mb() if memory_mb is None else memory_mb
        if self.costs is not None and step_s is not None:
            self.costs = replace(self.costs, step_s=step_s)
        now = Tried(self.num_workers, self.prefetch_factor, data_seconds / max(seconds, 1e-9), seconds, memory,
                    tuple(rates))
        tried = [Tried(r["num_workers"], r["prefetch_factor"], r["data_wait"], r["seconds"], r["memory_mb"],
                       tuple(r.get("rates", ()))) for r in self.records] + [now]
        decision = (Decision(now.num_workers, now.prefetch_factor, "settled", True) if self.settled
                    else decide(tried, self.limits, self.costs))
        self.records.append(dict(asdict(now), rates=list(now.rates), costs=self.costs and asdict(self.costs),
                                 epoch=epoch, next_workers=decision.num_workers,
                                 next_prefetch=decision.prefetch_factor, reason=decision.reason,
                                 settled=decision.settled))
        moved = (decision.num_workers, decision.prefetch_factor) != now.setting
        self.note = (f"  [workers {now.num_workers}, prefetch {now.prefetch_factor}, {memory:.0f} MB"
                     + (f" -> {decision.num_workers}, prefetch {decision.prefetch_factor}: {decision.reason}]" if moved
                        else f": {decision.reason}]" if not self.settled else "]"))
        self.num_workers, self.prefetch_factor, self.settled = (decision.num_workers, decision.prefetch_factor,
                                                                decision.settled)

    def state(self) -> dict[str, Any]:
        return dict(num_workers=self.num_workers, prefetch_factor=self.prefetch_factor, settled=self.settled)

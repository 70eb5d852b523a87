"""`--num-workers auto`: num_workers and prefetch_factor moved between epochs toward a data wait under 5 %.

PyTorch has no counterpart of tf.data's AUTOTUNE (pytorch/pytorch#23048): this is one, at epoch granularity. It starts
at the cores this process may use (under torchrun, its share), reads each epoch's data wait, time and memory, and
takes one step at a time: a worker more while the training waits for data (up to the cores and the memory budget),
then a deeper prefetch; a worker fewer while it does not (the fewest workers that keep up, the bench's rule). It
settles when the next step was already tried, on the fewest workers whose epoch is within 5 % of the fastest tried.
The decisions are kept in the history, so a resumed run goes on from the same setting, and the model's results do
not depend on them: the training order and each image's augmentation follow from seeds alone (resumable loaders).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..machine import rank_cores

TARGET = 0.05        # the data-wait share the tuner aims under
MAX_PREFETCH = 8     # batches per worker; deeper only smooths bursts, and each batch waits in shared memory
MEMORY_MARGIN = 0.8  # of the memory available at the start, as the bench's budget
MB = 2**20


@dataclass(frozen=True)
class Tried:
    """One epoch at one setting: what it measured."""

    num_workers: int
    prefetch_factor: int
    data_wait: float   # share of the epoch spent waiting for the loader
    seconds: float     # the epoch's time (the same images every epoch, so lower is faster)
    memory_mb: float   # PSS of this process and its workers at the epoch's end

    @property
    def setting(self) -> tuple[int, int]:
        return self.num_workers, self.prefetch_factor


@dataclass(frozen=True)
class Limits:
    cores: int
    memory_mb: float


@dataclass(frozen=True)
class Decision:
    num_workers: int
    prefetch_factor: int
    reason: str
    settled: bool = False

    @property
    def setting(self) -> tuple[int, int]:
        return self.num_workers, self.prefetch_factor


def fastest_few(tried: list[Tried]) -> Tried:
    """The fewest workers (then the shallowest prefetch) whose epoch is within 5 % of the fastest: the bench's rule."""
    best = min(t.seconds for t in tried)
    return min((t for t in tried if t.seconds <= best / 0.95), key=lambda t: t.setting)


def decide(tried: list[Tried], limits: Limits) -> Decision:
    """The setting for the next epoch, from every epoch so far (the last one's setting is the current one)."""
    last = tried[-1]
    n, p = last.setting
    seen = {t.setting: t for t in tried}  # the latest epoch of each setting
    good = [t for t in seen.values() if t.data_wait < TARGET and t.memory_mb <= limits.memory_mb]
    per_worker = (last.memory_mb / (n + 1)) if n else last.memory_mb / 2

    def settle(t: Tried, why: str) -> Decision:
        return Decision(t.num_workers, t.prefetch_factor, f"settled: {why}", settled=True)

    if last.memory_mb > limits.memory_mb and n > 1:
        return Decision(n - 1, p, f"memory {last.memory_mb:.0f} MB over the {limits.memory_mb:.0f} MB budget: "
                                  "one worker fewer")
    if last.data_wait >= TARGET:
        wait = f"data wait {last.data_wait:.0%} >= {TARGET:.0%}"
        if n < limits.cores and (n + 1, p) not in seen and last.memory_mb + per_worker <= limits.memory_mb:
            return Decision(n + 1, p, f"{wait}: one more worker")
        if good:
            return settle(fastest_few(good), f"{wait}; back to the fewest workers that kept up")
        if 2 * p <= MAX_PREFETCH and (n, 2 * p) not in seen:
            return Decision(n, 2 * p, f"{wait} at the {limits.cores}-core limit: a deeper prefetch")
        return settle(fastest_few(list(seen.values())),
                      f"{wait}: no setting within {limits.cores} cores keeps up; make each sample cheaper (notebook 06)")
    if n > 1 and (n - 1, p) not in seen:
        return Decision(n - 1, p, f"data wait {last.data_wait:.0%} < {TARGET:.0%}: trying one worker fewer")
    return settle(fastest_few(good or [last]), f"data wait {last.data_wait:.0%} < {TARGET:.0%} and the next step "
                                               "was tried")


def limits_here() -> Limits:
    """The cores this process's workers may use (its share under torchrun) and the memory budget, read now."""
    own = psutil.Process().memory_full_info()
    return Limits(rank_cores()[0], MEMORY_MARGIN * (psutil.virtual_memory().available + getattr(own, "pss", own.rss)) / MB)


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


class AutoWorkers:
    """The tuner of one run: its epochs so far (kept in the history under 'workers'), and the setting to use next."""

    def __init__(self, history: dict[str, list], start_prefetch: int | None, limits: Limits | None = None) -> None:
        self.records: list[dict] = history.setdefault("workers", [])
        self.limits = limits or limits_here()
        if self.records:  # resumed: go on from the setting the last epoch chose
            last = self.records[-1]
            self.num_workers, self.prefetch_factor = last["next_workers"], last["next_prefetch"]
            self.settled = last["settled"]
        else:
            self.num_workers, self.prefetch_factor, self.settled = self.limits.cores, start_prefetch or 2, False
        self.note = ""

    def start_line(self) -> str:
        if self.records:
            return (f"--num-workers auto: resumed at {self.num_workers} workers, prefetch_factor {self.prefetch_factor}"
                    + (" (settled)" if self.settled else ""))
        return (f"--num-workers auto: starting at {self.num_workers} workers (the usable cores"
                f"{' of this rank' if rank_cores()[1] > 1 else ''}), prefetch_factor {self.prefetch_factor}; "
                f"memory budget {self.limits.memory_mb:.0f} MB")

    def after_epoch(self, epoch: int, seconds: float, data_seconds: float, memory_mb: float | None = None) -> None:
        """Record EPOCH's measurement and choose the next setting; the epoch line's note says what and why."""
        memory = memory_now_mb() if memory_mb is None else memory_mb
        now = Tried(self.num_workers, self.prefetch_factor, data_seconds / max(seconds, 1e-9), seconds, memory)
        tried = [Tried(**{k: r[k] for k in ("num_workers", "prefetch_factor", "data_wait", "seconds", "memory_mb")})
                 for r in self.records] + [now]
        decision = (Decision(now.num_workers, now.prefetch_factor, "settled", True) if self.settled
                    else decide(tried, self.limits))
        self.records.append(dict(asdict(now), epoch=epoch, next_workers=decision.num_workers,
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

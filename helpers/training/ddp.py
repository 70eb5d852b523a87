"""The training of helpers.training.fit spread over processes started by torchrun, each training on its own shard of the data.

Every process builds the same seeded split; a DistributedSampler deals each one a disjoint share of the training images
and DistributedDataParallel averages the head's gradients, so all processes hold the same weights after every step.
Metrics are summed over the processes, so each reports the whole split. Rank 0 alone loads the ImageNet weights, reads
a checkpoint to resume from, logs and writes checkpoints; DDP copies its weights to the other ranks, and the checkpoints
load in the single-process scripts/train.py. Started without torchrun it runs as a world of one process.

    torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --epochs 2
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from .checkpoint import save_checkpoint
from .config import TrainConfig
from ..errors import CourseError
from ..loading.loaders import Loaders, make_loader, resolve_device
from .loop import EpochHooks, EpochResult, model_and_optimizer, resume_point, run_epochs
from ..processes import run_group
from ..loading.samples import data_or_sample
from .fit import loaders_for
from ..loading.verify import refuse_bad_files

T = TypeVar("T")


@dataclass(frozen=True)
class Rank:
    """Where this process sits: its global rank, its index on this machine, and how many processes there are."""

    rank: int = 0
    local: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def __str__(self) -> str:
        return f"[rank {self.rank}/{self.world}]"


def rank_from_env() -> Rank:
    """What torchrun set in the environment; a world of one when it did not start this process."""
    if "WORLD_SIZE" not in os.environ:
        return Rank()
    return Rank(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"]))


def _start(rank: Rank, device: torch.device) -> torch.device:
    """Join torchrun's process group (NCCL for CUDA, gloo otherwise), or form an in-memory group of one without it."""
    under_torchrun = "WORLD_SIZE" in os.environ
    if device.type == "cuda":
        device = torch.device("cuda", rank.local if under_torchrun or device.index is None else device.index)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if under_torchrun:
        dist.init_process_group(backend)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return device


@contextlib.contextmanager
def _local_rank0_first(rank: Rank) -> Iterator[None]:
    """Files one rank per machine must make (the sample set) are made once; the other ranks then find them there."""
    if rank.local != 0:
        dist.barrier()
    yield
    if rank.local == 0:
        dist.barrier()


class RankZeroFailed(CourseError, RuntimeError):
    """Rank 0 failed on work the other ranks wait for; they stop with one line, rank 0 shows the whole error."""


def from_rank0(make: Callable[[], T], rank: Rank) -> T:
    """Run MAKE on rank 0 only and hand its result, or its error, to every rank, so no rank waits on a failed one.

    The course's errors and OSError travel as they are; any other error stays on rank 0, which raises it with its
    traceback, and the other ranks get a RankZeroFailed naming it (it may not pickle, and is a bug to report).
    """
    box: list = [None]
    failure: BaseException | None = None
    if rank.main:
        try:
            box[0] = make()
        except (CourseError, OSError) as exc:
            box[0] = exc
        except Exception as exc:
            failure = exc
            box[0] = RankZeroFailed(f"rank 0 failed with {type(exc).__name__}: {exc} (its traceback is in rank 0's "
                                    "output)")
    dist.broadcast_object_list(box, src=0)
    if failure is not None:
        raise failure
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _shard_loaders(config: TrainConfig, device: torch.device, rank: Rank) -> Loaders:
    """fit()'s split and pipelines; training dealt out by a DistributedSampler, validation cut into unpadded
    shards so the summed validation metrics count every image exactly once."""
    # the plain dataset, for the DistributedSampler to deal out; strict_data is checked on rank 0 alone (_train)
    split = loaders_for(config, device, resumable=False, check=False)
    common = dict(num_workers=config.num_workers, device=device, seed=config.seed, batch_size=config.batch_size,
                  persistent_workers=config.persistent_workers, prefetch_factor=config.prefetch_factor,
                  start_method=config.start_method, timeout=config.timeout, collate_fn=split.pipeline.collate)
    train_set, val_set = split.train.dataset, split.val.dataset
    sampler = DistributedSampler(train_set, num_replicas=rank.world, rank=rank.rank, shuffle=True, seed=config.seed,
                                 drop_last=False)
    train = make_loader(train_set, sampler=sampler, **common)
    val = make_loader(val_set, sampler=range(rank.rank, len(val_set), rank.world), **common)
    return replace(split, train=train, val=val)


def _summed(result: EpochResult, device: torch.device) -> EpochResult:
    """One rank's pass made into the whole split's: loss, correct answers, images and skipped files summed over ranks."""
    totals = torch.tensor([result.loss * result.images, result.accuracy * result.images / 100, result.images,
                           result.skipped], dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    loss_sum, correct, images, skipped = totals.tolist()
    images = round(images)
    return replace(result, loss=loss_sum / max(1, images), accuracy=100.0 * correct / max(1, images), images=images,
                   skipped=round(skipped))


class _SampleLog:
    """The --record-samples diagnostic: the files this rank is dealt in each epoch, as JSON, to check the shards."""

    def __init__(self, prefix: str, rank: Rank) -> None:
        self.path, self.rank, self.epochs = Path(f"{prefix}.rank{rank.rank}.json"), rank, {}

    def add(self, epoch: int, loader: DataLoader, max_batches: int | None) -> None:
        indices = list(loader.sampler)
        if max_batches is not None:
            indices = indices[:max_batches * loader.batch_size]
        self.epochs[str(epoch)] = [loader.dataset.samples[i].path for i in indices]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"rank": self.rank.rank, "world_size": self.rank.world,
                                         "epochs": self.epochs}, indent=1))


def _describe(config: TrainConfig, loaders: Loaders, device: torch.device, rank: Rank) -> str:
    """The run's first log line: what is per rank, what is global, and how many images padding repeats."""
    sampler: DistributedSampler = loaders.train.sampler
    padding = sampler.total_size - len(loaders.train.dataset)
    repeated = f" ({padding} repeated so the shards are equal)" if padding else ""
    return (f"Training on {rank.world} process{'es' if rank.world > 1 else ''} ({dist.get_backend()}, {device.type}) "
            f"with {config.num_workers} workers and batch {config.batch_size} each (global batch "
            f"{config.batch_size * rank.world}), {len(loaders.train.dataset)} train images, {sampler.num_samples} per "
            f"process{repeated}, {len(loaders.val.dataset)} val, classes {', '.join(loaders.classes)}.")


def _train(config: TrainConfig, rank: Rank, device: torch.device, samples: _SampleLog | None) -> dict[str, list]:
    """fit() with a sharded training set, gradients averaged by DDP and metrics summed over ranks."""
    log = print if rank.main else (lambda *_: None)
    torch.manual_seed(config.seed)
    with _local_rank0_first(rank):
        config = replace(config, data=str(data_or_sample(config.data)))
    loaders = _shard_loaders(config, device, rank)
    if config.strict_data:
        from_rank0(lambda: refuse_bad_files([*loaders.train.dataset.samples, *loaders.val.dataset.samples],
                                             config.num_workers), rank)
    model, optimizer = model_and_optimizer(len(loaders.classes), device, config.lr, config.pretrained and rank.main)
    first_epoch, history, _ = resume_point(config.checkpoint, config.resume, model, optimizer, log,
                                        share=lambda read: from_rank0(read, rank))
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    log(_describe(config, loaders, device, rank))

    def start(epoch: int) -> None:
        loaders.train.sampler.set_epoch(epoch)
        if samples is not None:
            samples.add(epoch, loaders.train, config.max_batches)

    def end(epoch: int, history: dict[str, list]) -> None:  # step losses: rank 0's own steps, not a mean over ranks
        if rank.main and config.checkpoint:
            save_checkpoint(config.checkpoint, epoch=epoch, model=ddp.module, optimizer=optimizer, history=history,
                            config={**asdict(config), "world_size": rank.world})
        dist.barrier()

    hooks = EpochHooks(seed_of=lambda epoch: (config.seed + epoch) * rank.world + rank.rank,  # fit()'s in a world of 1
                       start=start, train_context=ddp.join,  # join: a rank with one step fewer does not hang the rest
                       combine=lambda result: _summed(result, device), end=end)
    return run_epochs(model, (loaders.train, loaders.val), nn.CrossEntropyLoss(), optimizer, device,
                      epochs=config.epochs, first_epoch=first_epoch, history=history, train_model=ddp,
                      to_input=loaders.pipeline.to_model_input, max_batches=config.max_batches,
                      progress=config.progress and rank.main, log=log, hooks=hooks)


def launch(nproc: int, argv: list[str], timeout: float = 600,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run this trainer under torchrun on this machine with NPROC ranks, as a notebook does; killed whole on TIMEOUT."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "helpers", "ddp", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    return run_group(command, env=env, timeout=timeout)


def shard_summary(prefix: str | Path) -> list[dict]:
    """Per epoch, what each rank was dealt (read back from --record-samples files) and how many samples more than one
    rank was dealt (DistributedSampler pads the last shards with repeats), at any number of ranks."""
    ranks = [json.loads(path.read_text()) for path in sorted(Path(prefix).parent.glob(Path(prefix).name + ".rank*.json"))]
    rows = []
    for epoch in ranks[0]["epochs"]:
        shards = [set(r["epochs"][epoch]) for r in ranks]
        rows.append(dict(epoch=int(epoch), **{f"rank {r['rank']}": len(r["epochs"][epoch]) for r in ranks},
                         shared=sum(sum(s in shard for shard in shards) > 1 for s in set.union(*shards)),
                         distinct=len(set.union(*shards))))
    return rows


def run(config: TrainConfig, rank: Rank, record_samples: str | None = None) -> dict[str, list]:
    """Train CONFIG as RANK of a torchrun job (or alone): join the process group, train, and always leave the group."""
    try:
        device = _start(rank, resolve_device(config.device))
        return _train(config, rank, device, _SampleLog(record_samples, rank) if record_samples else None)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()

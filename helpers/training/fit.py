"""Training the frozen ResNet18 in one process: fit() with checkpoints, resume and honest metrics, on the one loop."""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Callable

import torch
from torch import nn

from .autotune import AutoWorkers, window_rates
from .checkpoint import save_checkpoint
from .config import TrainConfig
from ..errors import CheckpointError
from ..loading.loaders import Loaders, build_loaders
from .loop import EpochHooks, model_and_optimizer, resume_point, run_epochs
from ..loading.resume import Partial
from ..loading.samples import data_or_sample
from ..loading.stalls import watching
from ..loading.verify import refuse_bad_files
from ..machine import rank_cores
from ..which_workers import measured_costs

__all__ = ["TrainConfig", "fit", "fit_once", "loaders_for"]


def loaders_for(config: TrainConfig, device: str | torch.device | None = None, resumable: bool = True,
                check: bool = True) -> Loaders:
    """The train and validation loaders CONFIG describes, on its data or the sample set (resumable: see
    build_loaders); with config.strict_data every file is decoded first, and a bad one stops the run here, before any
    training (check=False leaves that to the caller: ddp checks on rank 0 alone)."""
    if config.num_workers == "auto":
        raise ValueError("loaders_for needs a number of workers: fit() chooses one for --num-workers auto")
    loaders = build_loaders(data_or_sample(config.data), pipeline=config.pipeline, image_size=config.image_size,
                            batch_size=config.batch_size, num_workers=config.num_workers,
                            val_fraction=config.val_fraction, seed=config.seed,
                            device=config.device if device is None else device,
                            persistent_workers=config.persistent_workers, prefetch_factor=config.prefetch_factor,
                            start_method=config.start_method, timeout=config.timeout, resumable=resumable,
                            read_latency_ms=config.read_latency_ms)
    if check and config.strict_data:
        refuse_bad_files([*loaders.train.dataset.samples, *loaders.val.dataset.samples], config.num_workers)
    return loaders


def fit(config: TrainConfig, loaders: Loaders | None = None, log=print) -> dict[str, list]:
    """Train for config.epochs epochs in total on LOADERS (default: loaders_for(config)), checkpointing after each
    epoch and resuming after the last finished one when asked; returns the history."""
    torch.manual_seed(config.seed)
    auto = config.num_workers == "auto"
    loaders = loaders or loaders_for(replace(config, num_workers=rank_cores()[0]) if auto else config)
    model, optimizer = model_and_optimizer(len(loaders.classes), loaders.device, config.lr, config.pretrained)
    first_epoch, history, partial = resume_point(config.checkpoint, config.resume, model, optimizer, log)
    if partial and not config.checkpoint_every_steps:
        raise CheckpointError(f"{config.checkpoint} was saved mid-epoch (epoch {partial['epoch']}, step "
                              f"{partial['steps']}) by --checkpoint-every-steps; resume it with that option too, so "
                              f"the epoch goes on in the same order.")

    def save(epoch: int, history: dict[str, list], done: Partial | None = None) -> None:
        if config.checkpoint:
            save_checkpoint(config.checkpoint, epoch=epoch, model=model, optimizer=optimizer, history=history,
                            config=asdict(config), partial=done and done.state())

    def step(done: Partial) -> None:
        if config.checkpoint_every_steps and done.steps % config.checkpoint_every_steps == 0:
            save(done.epoch - 1, history, done)
            log(f"Checkpoint saved in epoch {done.epoch} after step {done.steps}.")

    hooks = EpochHooks(seed_of=seed_of(config), end=save, step=step)
    if auto:
        tune_workers(config, loaders, history, hooks, log)
    with watching(config.stall_s) as watch:  # --stall-s: each wait for a batch, watched
        hooks.watch = watch.watched
        return train_on(config, loaders, model, optimizer, log, hooks, first_epoch=first_epoch, history=history,
                        partial=partial)


def tune_workers(config: TrainConfig, loaders: Loaders, history: dict[str, list], hooks: EpochHooks, log) -> None:
    """--num-workers auto: HOOKS read each epoch's data wait, and give the next epoch new loaders when the tuner moves;
    each decision ends the epoch's line and is kept in HISTORY (so in the checkpoint, for --resume)."""
    costs = measured_costs(loaders.val.dataset, loaders.val.collate_fn, config.batch_size, rank_cores()[0],
                           on_cores=loaders.device.type == "cpu")
    tuner = AutoWorkers(history, config.prefetch_factor, costs=costs)
    in_use = {"setting": (loaders.train.num_workers, loaders.train.prefetch_factor or 2)}

    def swap(epoch: int, pair: tuple) -> tuple:
        if (tuner.num_workers, tuner.prefetch_factor) == in_use["setting"]:
            return pair
        in_use["setting"] = (tuner.num_workers, tuner.prefetch_factor)
        for old in pair:
            let_go(old)
        moved = loaders_for(replace(config, num_workers=tuner.num_workers, prefetch_factor=tuner.prefetch_factor),
                            loaders.device, check=False)
        return moved.train, moved.val

    log(tuner.start_line())
    hooks.swap = swap
    def measured(epoch: int, seconds: float, train: Any, val: Any) -> None:
        waited, images = train.data_seconds + val.data_seconds, train.images + val.images
        tuner.after_epoch(epoch, seconds, waited, rates=window_rates(train.marks, train.images, tuner.num_workers),
                          step_s=max(seconds - waited, 0.0) / max(images, 1))

    hooks.measured = measured
    hooks.note = lambda seconds: tuner.note


def let_go(loader: torch.utils.data.DataLoader) -> None:
    """End LOADER's persistent workers now, not when the loader is freed: torch keeps them in its `_iterator`
    (torch/utils/data/dataloader.py), and dropping it shuts them down."""
    if getattr(loader, "_iterator", None) is not None:
        loader._iterator = None


def fit_once(config: TrainConfig, loaders: Loaders, log=print) -> dict[str, list]:
    """fit() without checkpoints: a fresh model trained on LOADERS for config.epochs epochs (features.compare's
    loader-fed run)."""
    torch.manual_seed(config.seed)
    model, optimizer = model_and_optimizer(len(loaders.classes), loaders.device, config.lr, config.pretrained)
    return train_on(config, loaders, model, optimizer, log, EpochHooks(seed_of=seed_of(config)))


def seed_of(config: TrainConfig) -> Callable[[int], int]:
    """Each epoch's seed in one process: the run's seed plus the epoch, so a resumed run draws what an unbroken one did."""
    return lambda epoch: config.seed + epoch


def train_on(config: TrainConfig, loaders: Loaders, model: nn.Module, optimizer: torch.optim.Optimizer, log,
             hooks: EpochHooks, first_epoch: int = 1, history: dict[str, list] | None = None,
             partial: dict | None = None) -> dict[str, list]:
    """The run's first line, then the epochs on the loop every trainer shares (from FIRST_EPOCH, HISTORY and PARTIAL:
    where a checkpoint left off)."""
    log(f"Training on {loaders.device} with {config.num_workers} workers, {len(loaders.train.dataset)} train / "
        f"{len(loaders.val.dataset)} val images, classes {', '.join(loaders.classes)}.")
    return run_epochs(model, (loaders.train, loaders.val), nn.CrossEntropyLoss(), optimizer, loaders.device,
                      epochs=config.epochs, to_input=loaders.pipeline.to_model_input, max_batches=config.max_batches,
                      progress=config.progress, log=log, hooks=hooks, first_epoch=first_epoch, history=history,
                      partial=partial)

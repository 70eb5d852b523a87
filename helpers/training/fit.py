"""Training the frozen ResNet18 in one process: fit() with checkpoints, resume and honest metrics, on the one loop."""
from __future__ import annotations

from dataclasses import asdict, replace

import torch
from torch import nn

from .autotune import AutoWorkers
from .checkpoint import save_checkpoint
from .config import TrainConfig
from ..errors import CheckpointError
from ..loading.loaders import Loaders, build_loaders, resolve_device
from .loop import EpochHooks, model_and_optimizer, resume_point, run_epochs
from .model import imagenet_weights_path
from ..loading.resume import Partial
from ..loading.samples import data_or_sample
from ..loading.verify import refuse_bad_files
from ..machine import rank_cores

__all__ = ["TrainConfig", "fit", "loaders_for", "pretrained_against_random"]


def loaders_for(config: TrainConfig, device: torch.device, resumable: bool = True) -> Loaders:
    """The train and validation loaders CONFIG describes, on its data or the sample set; resumable: see build_loaders."""
    if config.num_workers == "auto":
        raise ValueError("loaders_for needs a number of workers: fit() chooses one for --num-workers auto")
    return build_loaders(data_or_sample(config.data), pipeline=config.pipeline, image_size=config.image_size,
                         batch_size=config.batch_size, num_workers=config.num_workers,
                         val_fraction=config.val_fraction, seed=config.seed, device=device,
                         persistent_workers=config.persistent_workers, prefetch_factor=config.prefetch_factor,
                         start_method=config.start_method, timeout=config.timeout,
                         resumable=resumable)


def fit(config: TrainConfig, loaders: Loaders | None = None, log=print) -> dict[str, list]:
    """Train for config.epochs epochs in total, resuming after the last finished one when asked; returns the history."""
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    auto = config.num_workers == "auto"
    start = replace(config, num_workers=rank_cores()[0]) if auto else config
    loaders = loaders or loaders_for(start, device)
    if config.strict_data:
        refuse_bad_files([*loaders.train.dataset.samples, *loaders.val.dataset.samples], start.num_workers)
    model, optimizer = model_and_optimizer(len(loaders.classes), device, config.lr, config.pretrained)
    first_epoch, history, partial = resume_point(config.checkpoint, config.resume, model, optimizer, log)
    if partial and not config.checkpoint_every_steps:
        raise CheckpointError(f"{config.checkpoint} was saved mid-epoch (epoch {partial['epoch']}, step "
                              f"{partial['steps']}) by --checkpoint-every-steps; resume it with that option too, so "
                              f"the epoch goes on in the same order.")
    log(f"Training on {device} with {config.num_workers} workers, {len(loaders.train.dataset)} train / "
        f"{len(loaders.val.dataset)} val images, classes {', '.join(loaders.classes)}.")
    tuner = AutoWorkers(history, config.prefetch_factor) if auto else None
    in_use = {"setting": (start.num_workers, start.prefetch_factor or 2)}

    def swap(epoch: int, pair: tuple) -> tuple:
        """--num-workers auto: new loaders when the tuner moved (the old ones' workers end as they are let go)."""
        if tuner is None or (tuner.num_workers, tuner.prefetch_factor) == in_use["setting"]:
            return pair
        in_use["setting"] = (tuner.num_workers, tuner.prefetch_factor)
        moved = loaders_for(replace(config, num_workers=tuner.num_workers, prefetch_factor=tuner.prefetch_factor),
                            device)
        return moved.train, moved.val

    def save(epoch: int, history: dict[str, list], done: Partial | None = None) -> None:
        if config.checkpoint:
            save_checkpoint(config.checkpoint, epoch=epoch, model=model, optimizer=optimizer, history=history,
                            config=asdict(config), partial=done and done.state())

    def step(done: Partial) -> None:
        if config.checkpoint_every_steps and done.steps % config.checkpoint_every_steps == 0:
            save(done.epoch - 1, history, done)
            log(f"Checkpoint saved in epoch {done.epoch} after step {done.steps}.")

    hooks = EpochHooks(seed_of=lambda epoch: config.seed + epoch, end=save, step=step)
    if tuner is not None:
        log(tuner.start_line())
        hooks.swap = swap
        hooks.measured = lambda epoch, seconds, train, val: tuner.after_epoch(
            epoch, seconds, train.data_seconds + val.data_seconds)
        hooks.note = lambda seconds: tuner.note
    held, to_input = [(loaders.train, loaders.val)], loaders.pipeline.to_model_input
    del loaders  # with --num-workers auto the swap replaces them: no reference here keeps the old workers alive
    return run_epochs(model, held.pop(), nn.CrossEntropyLoss(), optimizer, device,
                      epochs=config.epochs, first_epoch=first_epoch, history=history,
                      to_input=to_input, max_batches=config.max_batches,
                      progress=config.progress, log=log, hooks=hooks, partial=partial)


def pretrained_against_random(config: TrainConfig, loaders: Loaders) -> list[dict] | None:
    """One epoch from the ImageNet weights and one from random ones (defect 2's harm), or None where torch's cache
    lacks the weights: the course never downloads them to make this comparison."""
    if not imagenet_weights_path().exists():
        return None
    rows = []
    for pretrained in (True, False):
        history = fit(replace(config, epochs=1, pretrained=pretrained, checkpoint=None, resume=False), loaders,
                      log=lambda line: None)
        rows.append(dict(pretrained=pretrained, val_loss=history["val_loss"][-1], val_acc=history["val_acc"][-1]))
    return rows

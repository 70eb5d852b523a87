"""Refused before any work: output paths that cannot be written, batches that cannot fit in the memory there is."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import OptionError
from ..machine import usable_cores

# What a command writes, and what it takes but does not do, declared once and checked before any work.
OUTPUTS = (("checkpoint", "--checkpoint", False), ("csv", "--csv", False), ("plot", "--plot", False),
           ("cache", "--cache", False), ("out", "--out", True),
           ("quarantine", "--quarantine", True))  # (attribute, option, is a folder)
TRAIN_ONLY = (  # (attribute, option, refused when, what the command does instead): only `train` and scripts/train.py
    ("num_workers", "--num-workers", lambda v: v == "auto", "does not tune the workers; give a number, or use `train` "
                                                            "or scripts/train.py"),
    ("stall_s", "--stall-s", lambda v: v is not None, "does not watch for stalls; give the option to `train` or "
                                                      "scripts/train.py, or leave it out"),
    ("checkpoint_every_steps", "--checkpoint-every-steps", bool, "checkpoints after each epoch only; give the option "
                                                                 "to `train` or scripts/train.py, or leave it out"),
)
REFUSED = {"cached": TRAIN_ONLY, "ddp": TRAIN_ONLY}  # command -> the training options it takes but refuses


def refuse_what_cannot_work(args: Any) -> None:
    """Before any work: no option the command refuses, every output path given can be written, and the batches the
    options ask for fit in memory."""
    from ..files import unwritable

    command = getattr(args, "command", None)
    for name, flag, refused, why in REFUSED.get(command, ()):
        value = getattr(args, name, None)
        if refused(value):
            raise OptionError(f"{flag} {f'{value:g}' if isinstance(value, float) else value}: {command} {why}")
    for name, flag, folder in OUTPUTS:
        given = getattr(args, name, None)
        why = unwritable(given, folder=folder) if given else None
        if why:
            raise OptionError(f"{flag} {given}: cannot be written, {why}; give a path in a folder you can write to")
    if getattr(args, "image_size", None) and getattr(args, "command", None) != "doctor":
        refuse_batches_that_cannot_fit(args)


def refuse_batches_that_cannot_fit(args: Any) -> None:
    """--image-size (with the batch size, workers, prefetch and pipelines given) whose batches exceed the memory
    available now, judged by the doctor's estimate of the batches in flight."""
    import psutil

    from .doctor import Plan, too_large
    from ..timing.measure import default_batch_size
    from ..loading.transforms import build_pipeline

    workers = getattr(args, "num_workers", None)
    if workers is None:
        workers = getattr(args, "workers", None)
    if isinstance(workers, (list, tuple)):
        workers = max(workers)
    elif workers is None or workers == "auto":  # auto starts at the usable cores
        workers = usable_cores()
    pipelines = getattr(args, "pipeline", None) or ["fast"]
    device = torch.device("cuda" if getattr(args, "device", "cpu") != "cpu" and torch.cuda.is_available() else "cpu")
    available, plans = psutil.virtual_memory().available, []
    for name in [pipelines] if isinstance(pipelines, str) else pipelines:
        uint8 = build_pipeline(name, args.image_size, train=True).normalize_on_device  # fast (and gpu's bytes)
        plans.append(Plan(num_workers=workers, image_size=args.image_size,
                          batch_size=getattr(args, "batch_size", None) or default_batch_size(name, device),
                          prefetch_factor=getattr(args, "prefetch_factor", None) or 2, bytes_per_value=1 if uint8 else 4))
    why = too_large(min(plans, key=lambda plan: plan.largest_image_size(available)), available)  # the first to fail
    if why:
        raise OptionError(f"--image-size {args.image_size}: {why}")

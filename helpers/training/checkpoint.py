"""Checkpoints that survive a crash mid-write and load with weights_only=True."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..files import atomic_write


def save_checkpoint(path: str | Path, *, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: dict[str, list], config: dict[str, Any], partial: dict[str, Any] | None = None) -> Path:
    """Write atomically, so an interruption never leaves a half-written checkpoint; PARTIAL: a mid-epoch position."""
    state = {
        "epoch": epoch,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "history": history,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in config.items()},
    }
    if partial is not None:
        state["partial"] = partial
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Load with weights_only=True (unpickling limited to tensors, containers and an allow-list of torch functions) and
    restore MODEL and OPTIMIZER when given."""
    path = Path(path)
    fix = f"delete {path} to start afresh, or point --checkpoint at another file"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise CheckpointError(f"Checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                              f"it may be truncated or not a checkpoint: {fix}.") from exc
    if not isinstance(state, dict) or "model_state_dict" not in state or "epoch" not in state:
        raise CheckpointError(f"{path} is not a checkpoint written by this course: {fix}.")
    try:
        if model is not None:
            model.load_state_dict(state["model_state_dict"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer_state_dict"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"Checkpoint {path} belongs to a different model or optimizer ({exc}): {fix}.") from exc
    return state

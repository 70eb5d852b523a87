"""Training the frozen ResNet18: one epoch, one evaluation, and fit() with checkpoints, resume and honest metrics."""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DEFAULT_SAMPLE_DIR, DataError, ensure_sample_data
from .loaders import Loaders, SkippedFiles, build_loaders, reseed, resolve_device
from .model import build_model
from .transforms import PIPELINES, to_model_input
from .workers import WorkerFailure, explained_worker_failures


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in each checkpoint."""

    data: str | None = None
    epochs: int = 3
    num_workers: int = 2
    batch_size: int = 16
    image_size: int = 224
    pipeline: str = "standard"
    device: str = "auto"
    start_method: str | None = None
    checkpoint: str | None = "runs/checkpoint.pt"
    resume: bool = False
    seed: int = 0
    lr: float = 3e-3
    val_fraction: float = 0.2
    pretrained: bool = True
    max_batches: int | None = None  # per epoch and split; None means the whole split
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    timeout: float = 0
    strict_data: bool = False  # check every image before training and stop if any is bad, instead of skipping it
    progress: bool = True


@dataclass
class EpochResult:
    loss: float          # mean per image over this split (the mean over its batches when they are equal-sized)
    accuracy: float      # percent
    images: int
    seconds: float
    step_losses: list[float] = field(default_factory=list)
    skipped: int = 0     # unreadable files left out of this pass


def _autocast(device: torch.device):
    """bf16 autocast on CUDA (no loss scaling needed); a no-op on the CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def _batches(loader, max_batches: int | None, desc: str, progress: bool, skipped: SkippedFiles):
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    # A bar that wraps the loader is no good: tqdm.auto calls iter() on what it wraps, which starts a second set of
    # workers that nobody reads, and whose shutdown later stalls for seconds. So the bar is only told the count.
    with tqdm(total=total, desc=desc, leave=False, disable=not progress, unit="batch") as bar, \
            explained_worker_failures():
        for i, batch in enumerate(loader):
            if i >= total:
                break
            bar.update()
            if skipped.note(batch):  # False: every image of the batch was unreadable
                yield bar, batch


def train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, criterion: nn.Module,
               optimizer: torch.optim.Optimizer, device: torch.device,
               normalize_on_device: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimizer step: non-blocking copy, device-side normalization, bf16 autocast and channels_last on CUDA."""
    images = to_model_input(images, device, normalize_on_device, channels_last=device.type == "cuda")
    labels = labels.to(device, non_blocking=True)
    with _autocast(device):
        logits = model(images)
        loss = criterion(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach(), labels


def train_one_epoch(model: nn.Module, loader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device, *, normalize_on_device: bool = False, max_batches: int | None = None,
                    progress: bool = True, desc: str = "train") -> EpochResult:
    """One pass over the training split; the loss reported is averaged over the training images, not any other count."""
    model.train()
    start, total_loss, correct, seen, steps, skipped = time.perf_counter(), 0.0, 0, 0, [], SkippedFiles()
    for bar, (images, labels) in _batches(loader, max_batches, desc, progress, skipped):
        loss, logits, labels = train_step(model, images, labels, criterion, optimizer, device, normalize_on_device)
        steps.append(loss.item())
        total_loss += steps[-1] * labels.numel()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += labels.numel()
        bar.set_postfix(loss=f"{total_loss / seen:.4f}")
    return EpochResult(total_loss / max(1, seen), 100.0 * correct / max(1, seen), seen,
                       time.perf_counter() - start, steps, len(skipped))


@torch.inference_mode()
def evaluate(model: nn.Module, loader, criterion: nn.Module, device: torch.device, *,
             normalize_on_device: bool = False, max_batches: int | None = None,
             progress: bool = True, desc: str = "val") -> EpochResult:
    """Validation in eval mode (dropout off) with no gradients; loss is averaged over the validation images."""
    model.eval()
    channels_last = device.type == "cuda"
    start, total_loss, correct, seen, skipped = time.perf_counter(), 0.0, 0, 0, SkippedFiles()
    for _, (images, labels) in _batches(loader, max_batches, desc, progress, skipped):
        images = to_model_input(images, device, normalize_on_device, channels_last)
        labels = labels.to(device, non_blocking=True)
        with _autocast(device):
            logits = model(images)
        total_loss += criterion(logits.float(), labels).item() * labels.numel()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += labels.numel()
    return EpochResult(total_loss / max(1, seen), 100.0 * correct / max(1, seen), seen,
                       time.perf_counter() - start, skipped=len(skipped))


def empty_history() -> dict[str, list]:
    keys = ("epoch", "seconds", "train_loss", "train_acc", "val_loss", "val_acc", "step_loss", "step_epoch")
    return {k: [] for k in keys}


def record_epoch(history: dict[str, list], epoch: int, seconds: float, train: EpochResult, val: EpochResult) -> None:
    """Append one epoch to HISTORY, the record every trainer keeps alike, so plot_history and resume read any of them."""
    for key, value in (("epoch", epoch), ("seconds", seconds), ("train_loss", train.loss),
                       ("train_acc", train.accuracy), ("val_loss", val.loss), ("val_acc", val.accuracy)):
        history[key].append(value)
    history.setdefault("skipped", []).append(train.skipped + val.skipped)
    history["step_loss"] += train.step_losses
    history["step_epoch"] += [epoch - 1 + (i + 1) / len(train.step_losses) for i in range(len(train.step_losses))]


def log_epoch(log, epoch: int, epochs: int, seconds: float, train: EpochResult, val: EpochResult,
              note: str = "") -> None:
    """Log the epoch's line, and stop a run whose loss is no longer a number rather than train on garbage."""
    log(format_epoch(epoch, epochs, seconds, train, val) + note)
    if not math.isfinite(train.loss):
        raise FloatingPointError(f"Training loss became {train.loss} in epoch {epoch}; lower --lr.")


def format_epoch(epoch: int, epochs: int, seconds: float, train: EpochResult, val: EpochResult) -> str:
    line = (f"Epoch {epoch}/{epochs}  time {seconds:.1f}s  train loss {train.loss:.4f} acc {train.accuracy:.1f}%  "
            f"val loss {val.loss:.4f} acc {val.accuracy:.1f}%")
    if train.skipped or val.skipped:
        line += f"  ({train.skipped + val.skipped} unreadable images skipped: {train.skipped} train, {val.skipped} val)"
    return line


def _refuse_bad_files(loaders: Loaders, workers: int) -> None:
    """The strict option: decode every image first and stop, naming the bad ones, before a minute is spent training."""
    from .verify import check_files

    samples = [*loaders.train.dataset.samples, *loaders.val.dataset.samples]
    bad = check_files([s.path for s in samples], workers=workers)
    if bad:
        listed = "; ".join(f"{b.path}: {b.reason}" for b in bad[:10]) + ("; ..." if len(bad) > 10 else "")
        root = Path(bad[0].path).parent.parent
        raise DataError(f"{len(bad)} unreadable images and strict data checking is on: {listed}. Move them out with "
                        f"`python -m helpers verify {root} --quarantine {root}-bad`, or drop --strict-data to skip "
                        f"them with a warning.")


def fit(config: TrainConfig, loaders: Loaders | None = None, log=print) -> dict[str, list]:
    """Train for config.epochs epochs in total, resuming after the last finished one when asked; returns the history."""
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    if loaders is None:
        data = config.data or ensure_sample_data(DEFAULT_SAMPLE_DIR)
        loaders = build_loaders(
            data, pipeline=config.pipeline, image_size=config.image_size, batch_size=config.batch_size,
            num_workers=config.num_workers, val_fraction=config.val_fraction, seed=config.seed, device=device,
            persistent_workers=config.persistent_workers, prefetch_factor=config.prefetch_factor,
            start_method=config.start_method, timeout=config.timeout)
    if config.strict_data:
        _refuse_bad_files(loaders, config.num_workers)
    model = build_model(len(loaders.classes), pretrained=config.pretrained).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=config.lr)
    criterion = nn.CrossEntropyLoss()

    history, first_epoch = empty_history(), 1
    ckpt = Path(config.checkpoint) if config.checkpoint else None
    if config.resume and ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, model, optimizer)
        history, first_epoch = state["history"], state["epoch"] + 1
        log(f"Resumed from {ckpt} after epoch {state['epoch']}.")
    elif config.resume:
        log(f"No checkpoint at {ckpt}; starting from epoch 1.")
    log(f"Training on {device} with {config.num_workers} workers, {len(loaders.train.dataset)} train / "
        f"{len(loaders.val.dataset)} val images, classes {', '.join(loaders.classes)}.")

    run = dict(normalize_on_device=loaders.normalize_on_device, max_batches=config.max_batches,
               progress=config.progress)
    for epoch in range(first_epoch, config.epochs + 1):
        torch.manual_seed(config.seed + epoch)  # dropout and main-process augmentation, as in an unbroken run
        reseed(loaders.train, config.seed + epoch)
        start = time.perf_counter()
        train = train_one_epoch(model, loaders.train, criterion, optimizer, device, desc=f"epoch {epoch} train", **run)
        val = evaluate(model, loaders.val, criterion, device, desc=f"epoch {epoch} val", **run)
        seconds = time.perf_counter() - start
        record_epoch(history, epoch, seconds, train, val)
        if ckpt is not None:
            save_checkpoint(ckpt, epoch=epoch, model=model, optimizer=optimizer, history=history,
                            config=asdict(config))
        log_epoch(log, epoch, config.epochs, seconds, train, val)
    if first_epoch > config.epochs:
        log(f"Nothing to do: the checkpoint already holds {first_epoch - 1} of {config.epochs} epochs.")
    return history


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The training options, shared by scripts/train.py and `python -m helpers train`."""
    d = TrainConfig()
    parser.add_argument("--data", default=None, help="ImageFolder root (class folders inside); default: the generated "
                        "sample set in data/sample, made on first use")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="total epochs, counting resumed ones")
    parser.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader worker processes")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--image-size", type=int, default=d.image_size, help="side of the square model input")
    parser.add_argument("--pipeline", choices=PIPELINES, default=d.pipeline,
                        help="blog: the post's Resize+ToTensor; standard: augmented PIL; fast: uint8 tensors")
    parser.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--start-method", choices=("fork", "spawn", "forkserver"), default=None,
                        help="how worker processes start (default: the platform's)")
    parser.add_argument("--checkpoint", default=d.checkpoint, help="written after every epoch; '' for none")
    parser.add_argument("--resume", action="store_true", help="continue after the checkpoint's last epoch")
    parser.add_argument("--seed", type=int, default=d.seed, help="seeds the split, the shuffling and the workers")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--val-fraction", type=float, default=d.val_fraction)
    parser.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                        help="skip the ImageNet weights (random backbone)")
    parser.add_argument("--max-batches", type=int, default=None, help="cap batches per split per epoch (quick runs)")
    parser.add_argument("--persistent-workers", action="store_true", help="keep workers alive between epochs")
    parser.add_argument("--prefetch-factor", type=int, default=None, help="batches each worker loads ahead")
    parser.add_argument("--timeout", type=float, default=0, help="seconds to wait for a batch before failing")
    parser.add_argument("--strict-data", action="store_true",
                        help="decode every image before training and stop if any is bad (default: skip and warn)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.add_argument("--plot", default=None, help="save the loss curves (per step and per epoch) to this PNG")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that add_arguments' options describe; --checkpoint '' means none."""
    names = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    config.checkpoint = config.checkpoint or None
    return config


def run(args: argparse.Namespace) -> int:
    """Train from parsed command-line options, then save the loss curves when --plot is given."""
    config = config_from_args(args)
    try:
        history = fit(config)
    except (DataError, CheckpointError, WorkerFailure) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.plot and history["epoch"]:
        from .plots import plot_history
        plot_history(history).savefig(args.plot, dpi=100, bbox_inches="tight")
        print(f"Loss curves saved to {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(description="Train the frozen ResNet18 on an ImageFolder."))
    return run(parser.parse_args(argv))

"""The one training loop: a step, an epoch, an evaluation, and run_epochs, which fit, ddp and features configure."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import load_checkpoint
from ..loading.data import Batch, SkippedFiles
from ..errors import DataError, LossNotFinite, explained_worker_failures
from .model import FrozenResNet18, build_model
from ..progress import progress_bar
from ..loading.resume import EpochOrder, Partial
from ..loading.transforms import to_model_input

ToInput = Callable[[Any, torch.device], torch.Tensor]  # a batch's images as the model takes them, on the device
Log = Callable[[str], None]


def model_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Images already scaled and normalized: copied to DEVICE, channels_last on CUDA."""
    return to_model_input(images, device, normalize=False, channels_last=device.type == "cuda")


@dataclass
class EpochResult:
    """One pass over one split, as the epoch line and the history report it."""

    loss: float          # mean per image over this split (the mean over its batches when they are equal-sized)
    accuracy: float      # percent
    images: int
    seconds: float
    step_losses: list[float] = field(default_factory=list)
    skipped: int = 0     # unreadable files left out of this pass
    data_seconds: float = 0.0  # of SECONDS, the time spent waiting for the loader's next batch
    skipped_example: str = ""  # one skipped file and its reason, for the message when nothing could be read
    marks: list[float] = field(default_factory=list)  # the pass's start, then when each batch arrived (auto reads them)


@dataclass
class Pass:
    """What one pass over a loader met: the unreadable files, and how long it waited for batches."""

    skipped: SkippedFiles = field(default_factory=SkippedFiles)
    data_seconds: float = 0.0
    drawn: int = 0  # batches taken from the loader, readable or not
    start: float = field(default_factory=lambda: time.perf_counter())
    marks: list[float] = field(default_factory=list)

    def result(self, loss_sum: float, correct: int, seen: int, steps: list[float] | None = None) -> EpochResult:
        """The pass's metrics, averaged over the SEEN images it could read."""
        example = next(iter(self.skipped.reasons.items()), None)
        return EpochResult(loss_sum / max(1, seen), 100.0 * correct / max(1, seen), seen,
                           time.perf_counter() - self.start, steps or [], len(self.skipped), self.data_seconds,
                           f"{example[0]}: {example[1]}" if example else "", [self.start, *self.marks])


def batches(loader: Iterable, seen: Pass, max_batches: int | None = None, desc: str = "",
            progress: bool = True) -> Iterator[tuple[Any, Batch]]:
    """The loader's batches that hold an image, with a progress bar; notes skipped files and the wait for each batch."""
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    # A bar that wraps the loader is no good: tqdm.auto calls iter() on what it wraps, which starts a second set of
    # workers that nobody reads, and whose shutdown later stalls for seconds. So the bar is only told the count.
    with progress_bar(total, desc, progress, unit="batch") as bar, explained_worker_failures():
        it = iter(loader)
        for _ in range(total):
            before = time.perf_counter()
            batch = next(it, None)
            seen.data_seconds += time.perf_counter() - before
            if batch is None:
                break
            seen.marks.append(time.perf_counter())
            seen.drawn += 1
            bar.update()
            if seen.skipped.note(batch):  # False: every image of the batch was unreadable
                yield bar, batch


def _autocast(device: torch.device) -> ContextManager:
    """bf16 autocast on CUDA (no loss scaling needed); a no-op on the CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def train_step(model: nn.Module, images: Any, labels: torch.Tensor, criterion: nn.Module,
               optimizer: torch.optim.Optimizer, device: torch.device,
               to_input: ToInput = model_input) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimizer step: the pipeline's device step (non-blocking copy, normalization), bf16 autocast on CUDA."""
    images = to_input(images, device)
    labels = labels.to(device, non_blocking=True)
    with _autocast(device):
        logits = model(images)
        loss = criterion(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach(), labels


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device, *, to_input: ToInput = model_input, max_batches: int | None = None,
                    progress: bool = True, desc: str = "train", done: Partial | None = None,
                    on_step: Callable[[Partial], None] = lambda done: None) -> EpochResult:
    """One pass over the training split (the rest of it after DONE); the loss is averaged over its training images."""
    model.train()
    done = done or Partial(epoch=0)
    seen, drawn, skipped = Pass(), done.drawn, done.skipped
    limit = None if max_batches is None else max(0, max_batches - drawn)
    for bar, (x, labels) in batches(loader, seen, limit, desc, progress):
        loss, logits, labels = train_step(model, x, labels, criterion, optimizer, device, to_input)
        done.step_losses.append(loss.item())
        done.loss_sum += done.step_losses[-1] * labels.numel()
        done.correct += (logits.argmax(1) == labels).sum().item()
        done.images += labels.numel()
        done.steps, done.drawn, done.skipped = done.steps + 1, drawn + seen.drawn, skipped + len(seen.skipped)
        bar.set_postfix(loss=f"{done.loss_sum / done.images:.4f}")
        on_step(done)
    result = seen.result(done.loss_sum, done.correct, done.images, done.step_losses)
    result.skipped += skipped
    return result


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Iterable, criterion: nn.Module, device: torch.device, *,
             to_input: ToInput = model_input, max_batches: int | None = None, progress: bool = True,
             desc: str = "val") -> EpochResult:
    """Validation in eval mode (dropout off) with no gradients; loss is averaged over the validation images."""
    model.eval()
    seen, total_loss, correct, images = Pass(), 0.0, 0, 0
    for _, (x, labels) in batches(loader, seen, max_batches, desc, progress):
        x, labels = to_input(x, device), labels.to(device, non_blocking=True)
        with _autocast(device):
            logits = model(x)
        total_loss += criterion(logits.float(), labels).item() * labels.numel()
        correct += (logits.argmax(1) == labels).sum().item()
        images += labels.numel()
    return seen.result(total_loss, correct, images)


def model_and_optimizer(classes: int, device: torch.device, lr: float,
                        pretrained: bool = True) -> tuple[FrozenResNet18, torch.optim.Optimizer]:
    """The course's model on DEVICE (channels_last on CUDA) and Adam over its head, the only part that trains."""
    model = build_model(classes, pretrained=pretrained).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.Adam(model.head.parameters(), lr=lr)


def empty_history() -> dict[str, list]:
    """The record every trainer keeps, before its first epoch."""
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


def format_epoch(epoch: int, epochs: int, seconds: float, train: EpochResult, val: EpochResult) -> str:
    """The epoch's line; `data wait` is the share of the epoch spent waiting for the loader (high: it did not keep up)."""
    wait = (train.data_seconds + val.data_seconds) / max(seconds, 1e-9)
    line = (f"Epoch {epoch}/{epochs}  time {seconds:.1f}s  data wait {wait:.0%}  train loss {train.loss:.4f} "
            f"acc {train.accuracy:.1f}%  val loss {val.loss:.4f} acc {val.accuracy:.1f}%")
    if train.skipped or val.skipped:
        line += f"  ({train.skipped + val.skipped} unreadable images skipped: {train.skipped} train, {val.skipped} val)"
    return line


def check_epoch(epoch: int, train: EpochResult, val: EpochResult) -> None:
    """Stop a run that learned from nothing or whose loss is no longer a number, rather than report it as a result."""
    for split, result in (("training", train), ("validation", val)):
        if result.images == 0:
            why = (f"all {result.skipped} files were unreadable (for example {result.skipped_example})"
                   if result.skipped else "the split holds no images")
            raise DataError(f"Epoch {epoch} read no image of the {split} split: {why}. Check the folder with "
                            f"`python -m helpers verify DIR`, and --image-size and --val-fraction.")
    if not math.isfinite(train.loss):
        raise LossNotFinite(f"Training loss became {train.loss} in epoch {epoch}; lower --lr.")


@dataclass
class EpochHooks:
    """What differs between trainers: how each epoch is seeded and started, run, combined, saved and noted."""

    seed_of: Callable[[int], int] = lambda epoch: epoch                 # the epoch's seed (DDP adds the rank)
    start: Callable[[int], None] = lambda epoch: None                   # DDP: set_epoch, the sample log
    train_context: Callable[[], ContextManager] = contextlib.nullcontext  # DDP: join, for uneven shards
    combine: Callable[[EpochResult], EpochResult] = lambda result: result  # DDP: summed over ranks
    end: Callable[[int, dict], None] = lambda epoch, history: None      # the checkpoint
    step: Callable[[Partial], None] = lambda done: None                 # a mid-epoch checkpoint
    note: Callable[[float], str] = lambda seconds: ""                   # added to the epoch's line
    measured: Callable[[int, float, EpochResult, EpochResult], None] = lambda *_: None  # --num-workers auto reads it
    swap: Callable[[int, tuple[Any, Any]], tuple[Any, Any]] = lambda epoch, loaders: loaders  # ... and rebuilds them
    watch: Callable[[Any], Any] = lambda loader: loader                 # --stall-s: the loader as a pass reads it


def reseed(loader: DataLoader, seed: int, start_batch: int = 0) -> None:
    """Fix the shuffle order and worker seeds of the next pass, so a resumed run sees what an unbroken one would.

    START_BATCH: where a resumable loader's pass begins (a mid-epoch resume); other loaders always start at 0.
    """
    if loader.generator is not None:
        loader.generator.manual_seed(seed)
    if isinstance(loader.sampler, EpochOrder):
        loader.sampler.start_epoch(seed, start_batch * loader.batch_size)


def run_epochs(model: nn.Module, loaders: tuple[Any, Any], criterion: nn.Module, optimizer: torch.optim.Optimizer,
               device: torch.device, *, epochs: int, first_epoch: int = 1, history: dict[str, list] | None = None,
               train_model: nn.Module | None = None, to_input: ToInput = model_input, max_batches: int | None = None,
               progress: bool = True, log: Log = print, hooks: EpochHooks = EpochHooks(),
               partial: dict[str, Any] | None = None) -> dict[str, list]:
    """Epochs FIRST_EPOCH to EPOCHS: seeded, trained (through TRAIN_MODEL, e.g. a DDP wrapper), evaluated, logged.

    PARTIAL: a mid-epoch checkpoint's position in FIRST_EPOCH, whose pass goes on from there.
    """
    history = empty_history() if history is None else history
    train_loader, val_loader = loaders
    run = dict(to_input=to_input, max_batches=max_batches, progress=progress)
    for epoch in range(first_epoch, epochs + 1):
        train_loader, val_loader = hooks.swap(epoch, (train_loader, val_loader))
        seed = hooks.seed_of(epoch)
        torch.manual_seed(seed)  # dropout and main-process augmentation, as in an unbroken run
        done = Partial.restore(partial) if partial and partial["epoch"] == epoch else Partial(epoch)
        reseed(train_loader, seed, start_batch=done.drawn)
        hooks.start(epoch)
        start = time.perf_counter()
        with hooks.train_context():
            train = train_one_epoch(train_model or model, hooks.watch(train_loader), criterion, optimizer, device,
                                    desc=f"epoch {epoch} train", done=done, on_step=hooks.step, **run)
        val = evaluate(model, hooks.watch(val_loader), criterion, device, desc=f"epoch {epoch} val", **run)
        train, val = hooks.combine(train), hooks.combine(val)
        seconds = time.perf_counter() - start
        check_epoch(epoch, train, val)
        record_epoch(history, epoch, seconds, train, val)
        hooks.measured(epoch, seconds, train, val)
        hooks.end(epoch, history)
        log(format_epoch(epoch, epochs, seconds, train, val) + hooks.note(seconds))
    if first_epoch > epochs:
        log(f"Nothing to do: the checkpoint already holds {first_epoch - 1} of {epochs} epochs.")
    return history


def resume_point(checkpoint: str | Path | None, resume: bool, model: nn.Module, optimizer: torch.optim.Optimizer,
                 log: Log = print, share: Callable[[Callable[[], Any]], Any] = lambda read: read()
                 ) -> tuple[int, dict[str, list], dict[str, Any] | None]:
    """The first epoch to run, the history so far and any mid-epoch position: after the checkpoint's last epoch
    (or inside the epoch it stopped in) when resuming, else epoch 1 from the start.

    SHARE runs the read (DDP: on rank 0 only, handing the result to every rank, so other machines need no copy).
    """
    path = Path(checkpoint) if checkpoint else None

    def read() -> dict | None:
        if not (resume and path is not None and path.exists()):
            return None
        state = load_checkpoint(path, model, optimizer)
        return {**{k: state[k] for k in ("epoch", "history", "optimizer_state_dict")}, "partial": state.get("partial")}

    state = share(read)
    if state is None:
        if resume:
            log(f"No checkpoint at {path}; starting from epoch 1.")
        return 1, empty_history(), None
    optimizer.load_state_dict(state["optimizer_state_dict"])
    partial = state["partial"]
    where = f"in epoch {partial['epoch']} after step {partial['steps']}" if partial else f"after epoch {state['epoch']}"
    log(f"Resumed from {path} {where}.")
    return state["epoch"] + 1, state["history"], partial

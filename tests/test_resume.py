"""Exact mid-epoch resume: a training run killed with SIGKILL mid-epoch, then resumed with the same command plus
--resume, ends with the model and optimizer of an unbroken run, bit for bit, with 0 or 2 workers, persistent or not."""
import os
import sys
from pathlib import Path

import pytest
from typing import Any

import torch

from helpers.loading.loaders import build_loaders
from helpers.training.loop import reseed
from helpers.processes import run_group
from power_cut import run_until
from helpers.loading.resume import EpochOrder

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def same_training_state(a: str | Path, b: str | Path) -> bool:
    """Whether two checkpoints hold the same model and optimizer, every tensor equal bit for bit."""
    first, second = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))

    def equal(x: Any, y: Any) -> bool:
        if isinstance(x, torch.Tensor):
            return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)):
            return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(equal, x, y))
        return x == y

    return all(equal(first[k], second[k]) for k in ("model_state_dict", "optimizer_state_dict"))


def command(data: Path, checkpoint: Path, workers: list[str]) -> list[str]:
    """Two epochs of five steps, a checkpoint every two; augmentation (the standard pipeline) and dropout both on."""
    return [sys.executable, "-u", "scripts/train.py", "--data", str(data), "--epochs", "2", "--batch-size", "4",
            "--image-size", "48", "--no-pretrained", "--checkpoint", str(checkpoint), "--checkpoint-every-steps", "2",
            "--seed", "3", *workers]


def tensors(checkpoint: Path) -> dict:
    """The final checkpoint: two whole epochs, no mid-epoch position left in it."""
    state = torch.load(checkpoint, weights_only=True)
    assert "partial" not in state and state["epoch"] == 2
    return state


def assert_bit_for_bit(a: Path, b: Path) -> None:
    assert same_training_state(a, b)
    first, second = tensors(a), tensors(b)
    assert first["history"]["step_loss"] == second["history"]["step_loss"]
    assert first["history"]["train_loss"] == second["history"]["train_loss"]


@pytest.fixture(scope="module")
def unbroken(sample_dir, tmp_path_factory) -> Path:
    """The reference: the same command, never interrupted, in the main process (0 workers)."""
    checkpoint = tmp_path_factory.mktemp("unbroken") / "ck.pt"
    done = run_group(command(sample_dir, checkpoint, ["--num-workers", "0"]), timeout=300, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr
    return checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("workers", [["--num-workers", "0"], ["--num-workers", "2", "--no-persistent-workers"],
                                     ["--num-workers", "2"]], ids=" ".join)
def test_a_run_killed_mid_epoch_resumes_to_the_unbroken_runs_tensors(workers, unbroken, sample_dir, tmp_path):
    checkpoint = tmp_path / "ck.pt"
    argv = command(sample_dir, checkpoint, workers)
    run_until(argv, "Checkpoint saved in epoch 2 after step 2", timeout=300, cwd=ROOT, env=ENV)
    assert torch.load(checkpoint, weights_only=True)["partial"]["steps"] >= 2  # the kill came mid-epoch

    resumed = run_group([*argv, "--resume"], timeout=300, cwd=ROOT, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed from {checkpoint} in epoch 2 after step" in resumed.stdout
    assert [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("Epoch")] == ["2/2"]
    assert_bit_for_bit(checkpoint, unbroken)


def test_a_pass_started_mid_epoch_holds_the_unbroken_passes_remaining_batches(sample_dir):
    """The loader alone: batches 3 onwards of a resumed pass equal those of a full pass, augmentation included."""
    def pass_from(start_batch: int, workers: int) -> list[torch.Tensor]:
        loader = build_loaders(sample_dir, image_size=32, batch_size=4, num_workers=workers, device="cpu",
                               resumable=True).train
        reseed(loader, seed=7, start_batch=start_batch)
        return [images for images, _ in loader]

    full, resumed = pass_from(0, 0), pass_from(3, 2)
    assert isinstance(build_loaders(sample_dir, resumable=True, num_workers=0).train.sampler, EpochOrder)
    assert len(resumed) == len(full) - 3 and all(torch.equal(a, b) for a, b in zip(full[3:], resumed))


def test_a_mid_epoch_checkpoint_resumed_without_the_option_is_refused(sample_dir, tmp_path, capsys):
    from helpers.app.cli import train_main

    checkpoint = tmp_path / "ck.pt"
    common = ["--data", str(sample_dir), "--epochs", "1", "--batch-size", "4", "--image-size", "32",
              "--no-pretrained", "--num-workers", "0", "--checkpoint", str(checkpoint), "--max-batches", "2"]
    assert train_main([*common, "--checkpoint-every-steps", "1"]) == 0
    state = torch.load(checkpoint, weights_only=True)
    state["partial"] = {"epoch": 1, "steps": 1}
    torch.save(state, checkpoint)
    capsys.readouterr()
    assert train_main([*common, "--resume"]) == 2
    assert "--checkpoint-every-steps" in capsys.readouterr().err


def test_same_training_state_sees_one_changed_bit(tmp_path):
    from helpers.training.checkpoint import save_checkpoint

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    a = save_checkpoint(tmp_path / "a.pt", epoch=1, model=model, optimizer=opt, history={}, config={})
    b = save_checkpoint(tmp_path / "b.pt", epoch=1, model=model, optimizer=opt, history={}, config={})
    assert same_training_state(a, b)
    with torch.no_grad():
        model.bias[0] = torch.nextafter(model.bias[0], torch.tensor(1.0))  # the next float up: one bit
    c = save_checkpoint(tmp_path / "c.pt", epoch=1, model=model, optimizer=opt, history={}, config={})
    assert not same_training_state(a, c)


def test_resuming_after_an_epoch_is_exact_with_persistent_workers_only_on_the_resumable_loaders(sample_dir):
    """Epoch 2 of an unbroken run against a run started at epoch 2, both with persistent workers.

    A plain shuffled DataLoader differs: its persistent workers keep their generators from epoch 1, and its sampler
    draws from the loader's generator without the base-seed draw a fresh iterator makes first.
    """
    def epoch_two(resumable: bool, unbroken: bool) -> list[torch.Tensor]:
        loader = build_loaders(sample_dir, image_size=32, batch_size=4, num_workers=2, persistent_workers=True,
                               device="cpu", resumable=resumable).train
        for epoch in (1, 2) if unbroken else (2,):
            reseed(loader, seed=epoch)
            batches = [images for images, _ in loader]
        return batches

    def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
        return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))

    assert same(epoch_two(True, True), epoch_two(True, False))
    assert not same(epoch_two(False, True), epoch_two(False, False))

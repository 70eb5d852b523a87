import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from helpers.loading.loaders import build_loaders
from helpers.training.model import build_model
from helpers.lessons.plots import plot_history
from helpers.training.loop import evaluate, train_one_epoch
from helpers.training.fit import TrainConfig, fit

CPU = torch.device("cpu")


@pytest.fixture()
def setup(sample_dir):
    torch.manual_seed(0)
    loaders = build_loaders(sample_dir, image_size=64, batch_size=5, num_workers=0, seed=0, device="cpu")
    model = build_model(pretrained=False)
    return loaders, model, torch.optim.Adam(model.head.parameters(), lr=1e-2), nn.CrossEntropyLoss()


def test_backbone_batchnorm_statistics_survive_a_training_epoch(setup):
    loaders, model, opt, loss = setup
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    train_one_epoch(model, loaders.train, loss, opt, CPU, progress=False)
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any("running_mean" in k for k in before)


def test_training_loss_is_averaged_over_training_images(setup):
    loaders, model, opt, loss = setup
    result = train_one_epoch(model, loaders.train, loss, opt, CPU, progress=False)
    sizes = [len(y) for _, y in loaders.train]
    assert len(result.step_losses) == len(loaders.train) == len(sizes)
    expected = sum(l * n for l, n in zip(result.step_losses, sizes)) / sum(sizes)
    assert result.loss == pytest.approx(expected)
    assert result.images == len(loaders.train.dataset)


def test_loss_sees_log_softmax_exactly_once(setup):
    """The model gives logits and CrossEntropyLoss adds the log-softmax. The blog's extra LogSoftmax turns out
    redundant rather than harmful: log-softmax is shift-invariant, so applying it twice equals applying it once."""
    loaders, model, _, criterion = setup
    model.eval()
    images, labels = next(iter(loaders.val))
    with torch.no_grad():
        logits = model(images)
    once = F.nll_loss(F.log_softmax(logits, 1), labels)
    twice = F.nll_loss(F.log_softmax(F.log_softmax(logits, 1), 1), labels)
    assert criterion(logits, labels) == pytest.approx(once.item())
    assert torch.isclose(once, twice, atol=1e-6)


def test_evaluation_runs_in_eval_mode_and_is_repeatable(setup):
    loaders, model, _, loss = setup
    model.train()
    a = evaluate(model, loaders.val, loss, CPU, progress=False)
    b = evaluate(model, loaders.val, loss, CPU, progress=False)
    assert a.loss == b.loss and a.images == len(loaders.val.dataset)
    assert not model.head.training


@pytest.mark.slow
def test_fit_learns_the_sample_classes(sample_dir, tmp_path):
    cfg = TrainConfig(data=str(sample_dir), epochs=3, num_workers=0, batch_size=4, image_size=64,
                      checkpoint=None, pretrained=False, progress=False, val_fraction=0.25)
    history = fit(cfg, log=lambda *_: None)
    assert history["epoch"] == [1, 2, 3]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert len(history["step_loss"]) == len(history["step_epoch"]) == 3 * 5
    assert history["step_epoch"][-1] == pytest.approx(3.0)


@pytest.mark.slow
def test_checkpoint_resume_runs_only_the_missing_epochs(sample_dir, tmp_path):
    ckpt = tmp_path / "ck.pt"
    cfg = TrainConfig(data=str(sample_dir), epochs=1, num_workers=0, batch_size=6, image_size=48,
                      checkpoint=str(ckpt), pretrained=False, progress=False)
    fit(cfg, log=lambda *_: None)
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and state["config"]["epochs"] == 1
    lines = []
    history = fit(TrainConfig(**{**cfg.__dict__, "epochs": 2, "resume": True}), log=lines.append)
    assert history["epoch"] == [1, 2]
    assert [l.split()[1] for l in lines if l.startswith("Epoch")] == ["2/2"]
    assert not (tmp_path / "ck.pt.tmp").exists()


@pytest.mark.slow
def test_resumed_run_matches_an_unbroken_one(sample_dir, tmp_path):
    base = dict(data=str(sample_dir), num_workers=0, batch_size=6, image_size=48, pretrained=False, progress=False)
    quiet = lambda *_: None  # noqa: E731
    torch.manual_seed(0)
    unbroken = fit(TrainConfig(**base, epochs=2, checkpoint=str(tmp_path / "a.pt")), log=quiet)
    fit(TrainConfig(**base, epochs=1, checkpoint=str(tmp_path / "b.pt")), log=quiet)
    resumed = fit(TrainConfig(**base, epochs=2, checkpoint=str(tmp_path / "b.pt"), resume=True), log=quiet)
    assert resumed["train_loss"] == pytest.approx(unbroken["train_loss"], rel=1e-4)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    model = build_model(pretrained=False)
    opt = torch.optim.Adam(model.head.parameters())
    path = save_checkpoint(tmp_path / "ok.pt", epoch=1, model=model, optimizer=opt, history={}, config={})
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cut.pt.*truncated"):
        load_checkpoint(truncated, model)
    other = nn.Linear(3, 3)
    with pytest.raises(CheckpointError, match="different model"):
        load_checkpoint(path, other)
    assert load_checkpoint(path, copy.deepcopy(model), opt)["epoch"] == 1


def test_loss_plot_has_honest_axes():
    history = {"epoch": [1, 2], "train_loss": [0.7, 0.5], "val_loss": [0.6, 0.4],
               "step_loss": [0.8, 0.6, 0.5, 0.4], "step_epoch": [0.5, 1.0, 1.5, 2.0]}
    steps, epochs = plot_history(history).axes
    assert "step" in steps.get_title().lower() and steps.get_xlabel().startswith("Epoch (fraction")
    assert epochs.get_xlabel() == "Epoch" and "loss" in epochs.get_ylabel().lower()
    assert all(ax.get_title() for ax in (steps, epochs))


class _CountingLoader:
    """Stands in for a DataLoader and counts how many passes were started over it."""

    def __init__(self, batches):
        self.batches, self.passes = batches, 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


def test_an_epoch_starts_exactly_one_pass_over_the_loader_even_with_a_progress_bar(monkeypatch):
    from helpers import progress

    monkeypatch.setattr(progress, "interactive", lambda: True)  # bars on, as in a terminal

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    loader = _CountingLoader([(torch.randn(2, 3, 2, 2), torch.tensor([0, 1]))] * 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), progress=True)
    evaluate(model, loader, nn.CrossEntropyLoss(), torch.device("cpu"), progress=True)
    assert loader.passes == 2  # tqdm.auto wrapping the loader would start a second, unread pass each time


def test_the_epoch_line_says_which_share_of_the_epoch_waited_for_data(monkeypatch):
    """Counted on a fake clock: the loader takes 10 ms a batch, the model 30 ms, so a quarter of the time is waiting."""
    from helpers.training import loop

    now = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])

    class Loader:
        def __len__(self):
            return 4

        def __iter__(self):
            for _ in range(4):
                now[0] += 0.01
                yield torch.zeros(2, 3), torch.tensor([0, 1])

    class Model(nn.Linear):
        def forward(self, x):
            now[0] += 0.03
            return super().forward(x)

    model = Model(3, 2)
    result = loop.train_one_epoch(model, Loader(), nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.1),
                                  CPU, progress=False)
    assert result.data_seconds == pytest.approx(0.04) and result.seconds == pytest.approx(0.16)
    empty = loop.EpochResult(0.5, 50.0, 2, 0.0)
    assert "data wait 25%" in loop.format_epoch(1, 1, result.seconds, result, empty)


def test_an_epoch_in_which_every_image_was_unreadable_is_an_error(tmp_path):
    from helpers.errors import DataError

    for kind in ("cat", "dog"):
        (tmp_path / kind).mkdir()
        for i in range(4):
            (tmp_path / kind / f"{i}.jpg").write_bytes(b"not a jpeg")
    config = TrainConfig(data=str(tmp_path), epochs=1, num_workers=0, batch_size=2, image_size=32,
                         checkpoint=None, pretrained=False, progress=False)
    lines = []
    unreadable = r"read no image of the training split: all \d+ files were unreadable"
    with pytest.warns(UserWarning), pytest.raises(DataError, match=unreadable):
        fit(config, log=lines.append)
    assert not any(line.startswith("Epoch") for line in lines)

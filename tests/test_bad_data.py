"""Hostile downloads in both public layouts: prepare, verify, training that skips bad files, worker failures, resume."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from front_door import run_command
from helpers.loading.data import load_rgb, load_uint8
from helpers.errors import DataError
from helpers.loading.prepare import prepare
from helpers.processes import kill_group, run_group
from helpers.training.fit import TrainConfig, fit
from helpers.loading.verify import verify_folder
from helpers.errors import WorkerFailure, explained_worker_failures
from hostile import BAD, make_download, unusual

ROOT = Path(__file__).resolve().parents[1]
GOOD_PER_CLASS = 8  # make_download's default


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(params=["kaggle", "petimages"])
def prepared(request, tmp_path):
    src = make_download(tmp_path / "download", request.param)
    before = _snapshot(src)
    report = prepare(src, tmp_path / "data", mode="symlink" if request.param == "kaggle" else "copy")
    assert _snapshot(src) == before, "prepare modified the download"
    return request.param, report


def test_prepare_recognises_both_layouts_and_reports_what_it_left_out(prepared):
    layout, report = prepared
    assert report.layout == layout
    n_unusual, n_bad = len(unusual(Image.new("RGB", (4, 4)))), len(BAD)
    assert dict(report.placed) == {"cat": GOOD_PER_CLASS + n_unusual, "dog": GOOD_PER_CLASS + n_bad}
    assert [(p.name, why.split(" (")[0]) for p, why in report.left_out] == [("Thumbs.db", "not an image name")]
    assert sorted(p.name for p in report.dest.iterdir()) == ["cat", "dog"]
    summary = report.summary()
    assert f"Found the {layout} layout" in summary and "Thumbs.db" in summary and "was not modified" in summary


def test_prepare_refuses_what_it_cannot_do_safely(tmp_path):
    with pytest.raises(DataError, match="No known layout"):
        (tmp_path / "empty").mkdir()
        prepare(tmp_path / "empty", tmp_path / "out")
    src = make_download(tmp_path / "download", "kaggle")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already holds files"):
        prepare(src, tmp_path / "full")
    with pytest.raises(DataError, match="overlap"):
        prepare(src, src / "inside")


def test_verify_lists_exactly_the_bad_files_and_moves_them_only_when_asked(prepared, tmp_path):
    _, report = prepared
    data = report.dest
    first = verify_folder(data, workers=2, progress=False)
    found = {p.path.name: p.reason for p in first.bad}
    assert {name.split(".")[-2] for name in found} == set(BAD), found  # the unusual images are not reported
    for name, reason in found.items():
        assert BAD[name.split(".")[-2]] in reason
    assert all(p.exists() or p.is_symlink() for p in (b.path for b in first.bad)), "verify moved files unasked"
    assert "3 bad" in first.summary() and "--quarantine" in first.summary()

    moved = verify_folder(data, quarantine=tmp_path / "bad", progress=False)
    assert sorted(dst.name for _, dst in moved.moved) == sorted(found)
    assert all(dst.parent == tmp_path / "bad" / "dog" for _, dst in moved.moved)
    assert not verify_folder(data, progress=False).bad


def test_verify_command_exit_status_follows_strict(prepared, tmp_path, capsys):
    layout, report = prepared
    if layout != "kaggle":
        pytest.skip("the command's exit status does not depend on the layout; verify_folder is tested on both")
    run = lambda *a: run_command(["verify", str(report.dest), "--no-progress", *a], capsys)  # noqa: E731
    (lenient, _, _), (strict, out, err) = run(), run("--strict")
    assert lenient == 0 and strict == 1, err
    assert "empty file (0 bytes)" in out and "truncated" in out
    assert run("--strict", "--quarantine", str(tmp_path / "bad"))[0] == 1
    assert run("--strict")[0] == 0


def test_quarantine_inside_the_folder_is_refused(prepared):
    _, report = prepared
    with pytest.raises(DataError, match="inside"):
        verify_folder(report.dest, quarantine=report.dest / "bad", progress=False)


@pytest.mark.parametrize("loader", [load_rgb, load_uint8], ids=["PIL", "torchvision"])
def test_unusual_images_load_upright_as_rgb(tmp_path, loader):
    base = Image.new("RGB", (96, 64), (200, 120, 40))
    for stem, (suffix, data) in unusual(base).items():
        path = tmp_path / f"{stem}{suffix}"
        path.write_bytes(data)
        image = loader(str(path))
        size = image.size if isinstance(image, Image.Image) else tuple(image.shape[:0:-1])
        channels = len(image.getbands()) if isinstance(image, Image.Image) else image.shape[0]
        assert channels == 3, stem
        expected = {"rotated": (64, 96), "large": (4000, 3000), "tiny": (2, 2)}.get(stem, (96, 64))
        assert size == expected, stem


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_training_skips_bad_files_warns_once_each_and_counts_them(prepared, workers):
    _, report = prepared
    lines: list[str] = []
    config = TrainConfig(data=str(report.dest), epochs=2, num_workers=workers, batch_size=8, image_size=32,
                         checkpoint=None, pretrained=False, val_fraction=0.25, progress=False)
    with pytest.warns(UserWarning) as caught:
        history = fit(config, log=lines.append)
    named = [str(w.message) for w in caught if str(w.message).startswith("Skipped ")]
    assert len(named) == len(BAD) and len(set(named)) == len(BAD), named  # once per file, not once per epoch
    assert history["epoch"] == [1, 2] and history["skipped"] == [len(BAD), len(BAD)]
    assert all(f"({len(BAD)} unreadable images skipped" in line for line in lines if line.startswith("Epoch"))


def test_strict_data_stops_before_training(prepared):
    _, report = prepared
    config = TrainConfig(data=str(report.dest), epochs=1, num_workers=0, image_size=32, checkpoint=None,
                         pretrained=False, strict_data=True, progress=False)
    lines: list[str] = []
    with pytest.raises(DataError, match="3 unreadable images and strict data checking is on") as exc:
        fit(config, log=lines.append)
    assert "empty file" in str(exc.value) and "--quarantine" in str(exc.value)
    assert not any(line.startswith("Epoch") for line in lines)


# --- worker processes that fail -------------------------------------------------------------------------------

class _Failing(Dataset):
    def __init__(self, how: str) -> None:
        self.how = how
        self.fn = (lambda x: x) if how == "unpicklable" else None

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        if self.how == "hang":
            time.sleep(30)
        elif self.how == "crash":
            os._exit(3)
        elif self.how == "shm":
            os.kill(os.getpid(), signal.SIGBUS)
        return torch.zeros(2)


@pytest.mark.parametrize("how, start_method, cause", [
    ("hang", None, "timeout"),
    ("crash", None, "worker process died"),
    ("shm", None, "--shm-size"),
    ("unpicklable", "spawn", "could not be sent to the worker processes"),
])
def test_worker_failures_name_the_cause_and_the_fix(how, start_method, cause):
    loader = DataLoader(_Failing(how), batch_size=2, num_workers=1, timeout=2 if how == "hang" else 0,
                        multiprocessing_context=start_method)
    with pytest.raises(WorkerFailure, match="Likely cause") as exc, explained_worker_failures():
        list(loader)
    assert cause in str(exc.value), str(exc.value)


@pytest.mark.slow
def test_training_loop_raises_worker_failures_with_the_fix(sample_dir):
    from helpers.loading.loaders import Loaders
    from helpers.loading.transforms import build_pipeline

    hang = DataLoader(_Failing("hang"), batch_size=2, num_workers=1, timeout=1)
    loaders = Loaders(hang, hang, ("a", "b"), build_pipeline("blog"))
    with pytest.raises(WorkerFailure, match="raise --timeout"):
        fit(TrainConfig(epochs=1, checkpoint=None, pretrained=False, progress=False), loaders=loaders,
            log=lambda _: None)


# --- a run killed mid-epoch and resumed -------------------------------------------------------------------------

@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_and_loses_no_finished_epoch(sample_dir, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    args = [sys.executable, "-u", "scripts/train.py", "--data", str(sample_dir), "--epochs", "3", "--num-workers", "1",
            "--image-size", "64", "--batch-size", "16", "--checkpoint", str(ckpt), "--no-pretrained", "--no-progress"]
    env = {**os.environ, "HELPERS_OFFLINE": "1"}
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.DEVNULL, text=True,
                                 start_new_session=True)
    epoch_one, deadline = "", time.monotonic() + 300
    try:
        while not epoch_one and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            epoch_one = next((l for l in log.read_text().splitlines() if l.startswith("Epoch 1/3")), "")
    finally:
        kill_group(first)  # in epoch 2: its workers have started, nothing of it is saved yet
        first.wait()
    assert epoch_one, "the first run never finished epoch 1"
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 1

    second = run_group([*args, "--resume"], cwd=ROOT, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "Resumed from" in second.stdout and "after epoch 1" in second.stdout
    final = torch.load(ckpt, weights_only=True)
    assert final["epoch"] == 3 and final["history"]["epoch"] == [1, 2, 3]
    assert final["history"]["train_loss"][0] == saved["history"]["train_loss"][0]
    assert f"train loss {final['history']['train_loss'][0]:.4f}" in epoch_one

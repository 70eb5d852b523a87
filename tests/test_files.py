"""Files never half-written and sources never touched: atomic writes, prepare's temporary folder, symlinks that
lead out of the download, OS refusals as one clear message, quarantine names numbered from the original stem."""
import errno
import os

import pytest
import torch
from PIL import Image

from helpers.__main__ import main
from helpers.training.checkpoint import load_checkpoint, save_checkpoint
from helpers.errors import DataError
from helpers.files import atomic_file, atomic_write
from helpers.loading.prepare import prepare
from helpers.loading.verify import verify_folder
from hostile import make_download


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "ck.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_two_writers_get_different_temporary_names_in_the_targets_folder(tmp_path):
    target = tmp_path / "sub" / "x.csv"
    with atomic_file(target) as first, atomic_file(target) as second:
        temps = sorted(p.name for p in target.parent.iterdir())
        first.write(b"1")
        second.write(b"2")
    # the inner writer renames first, the outer one last: the last complete file wins, never a mix
    assert len(temps) == 2 and all(t.startswith(".x.csv.") and t.endswith(".tmp") for t in temps), temps
    assert target.read_bytes() == b"1" and [p.name for p in target.parent.iterdir()] == ["x.csv"]


def test_a_checkpoint_written_atomically_loads_back(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    path = save_checkpoint(tmp_path / "ck.pt", epoch=3, model=model, optimizer=opt, history={}, config={})
    assert load_checkpoint(path)["epoch"] == 3 and [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    assert atomic_write(tmp_path / "b.bin", lambda f: f.write(b"abc")).read_bytes() == b"abc"


def test_prepare_leaves_out_a_symlink_pointing_outside_the_download(tmp_path):
    src = make_download(tmp_path / "download", "petimages") / "PetImages"
    secret = tmp_path / "elsewhere" / "private.jpg"
    secret.parent.mkdir()
    secret.write_bytes((src / "Cat" / "0.jpg").read_bytes())
    (src / "Cat" / "link.jpg").symlink_to(secret)
    report = prepare(src, tmp_path / "data")
    left = {p.name: why for p, why in report.left_out}
    assert "outside the download" in left["link.jpg"] and str(secret) in left["link.jpg"]
    assert not (tmp_path / "data" / "cat" / "link.jpg").exists()
    assert "link.jpg" in report.summary()


def test_prepare_builds_in_a_temporary_folder_and_removes_it_when_the_os_refuses(tmp_path, monkeypatch):
    src = make_download(tmp_path / "download", "kaggle")

    def cross_device(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    with pytest.raises(DataError, match="cannot cross file systems") as caught:
        prepare(src, tmp_path / "data", mode="hardlink")
    assert "--mode copy" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["download"]  # no DEST, no half-built folder


def test_a_refused_symlink_is_one_line_from_the_command(tmp_path, monkeypatch, capsys):
    src = make_download(tmp_path / "download", "kaggle")

    def refused(self, target, target_is_directory=False):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(type(tmp_path), "symlink_to", refused)
    assert main(["prepare", str(src), str(tmp_path / "data"), "--mode", "symlink"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "symbolic links" in err and "--mode copy" in err


def test_quarantine_numbers_a_clashing_name_from_the_original_stem(tmp_path):
    data, bad = tmp_path / "data", tmp_path / "bad"
    for image in ("cat/ok.jpg", "dog/ok.jpg"):
        (data / image).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(data / image)
    for _ in range(3):
        (data / "cat" / "x.jpg").write_bytes(b"")  # empty: bad, and the same name each time
        verify_folder(data, quarantine=bad, progress=False)
    assert sorted(p.name for p in (bad / "cat").iterdir()) == ["x.1.jpg", "x.2.jpg", "x.jpg"]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_an_atomic_file_gets_the_mode_the_umask_gives_not_mkstemps_0600(tmp_path, umask_022):
    with atomic_file(tmp_path / "rows.csv", "w") as f:
        f.write("a\n")
    assert (tmp_path / "rows.csv").stat().st_mode & 0o777 == 0o644


def test_a_checkpoint_from_train_is_readable_by_the_group_and_others_under_umask_022(sample_dir, tmp_path, capsys,
                                                                                     umask_022):
    from front_door import run_command

    checkpoint = tmp_path / "ck.pt"
    code, _, err = run_command(["train", "--data", str(sample_dir), "--epochs", "1", "--no-pretrained",
                                "--image-size", "32", "--num-workers", "0", "--max-batches", "1", "--no-progress",
                                "--checkpoint", str(checkpoint)], capsys)
    assert code == 0, err
    assert checkpoint.stat().st_mode & 0o777 == 0o644

"""Every command refuses a bad option value, a missing data folder or a corrupt checkpoint at the front door:
one line naming the problem and the fix, exit status 2, no traceback, and no work started."""
import sys

import pytest
import torch

from front_door import run_command
from helpers.app.cli import boundary
from helpers.training.config import TrainConfig
from helpers.errors import CheckpointError, DataError, LossNotFinite, OptionError, WorkerFailure
from helpers.app.notebooks import NotebookFailed
from helpers.options import max_workers

NO_GPU = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU: absent on every machine

BAD_VALUES = [
    # (the command, the option and value the message must name)
    (["train", "--num-workers", "-1"], "--num-workers", "-1"),
    (["train", "--num-workers", "10000"], "--num-workers", "10000"),
    (["train", "--batch-size", "0"], "--batch-size", "0"),
    (["train", "--batch-size", "x"], "--batch-size", "'x'"),
    (["train", "--val-fraction", "1.5"], "--val-fraction", "1.5"),
    (["train", "--val-fraction", "0"], "--val-fraction", "0"),
    (["train", "--lr", "-1"], "--lr", "-1"),
    (["train", "--lr", "nan"], "--lr", "nan"),
    (["train", "--prefetch-factor", "0"], "--prefetch-factor", "0"),
    (["train", "--timeout", "-5"], "--timeout", "-5"),
    (["train", "--device", NO_GPU], "--device", NO_GPU),
    (["train", "--device", "tpu"], "--device", "tpu"),
    (["train", "--image-size", "0"], "--image-size", "0"),
    (["train", "--max-batches", "-3"], "--max-batches", "-3"),
    (["train", "--epochs", "-1"], "--epochs", "-1"),
    (["train", "--seed", "-1"], "--seed", "-1"),
    (["train", "--pipeline", "foo"], "--pipeline", "foo"),
    (["train", "--start-method", "thread"], "--start-method", "thread"),
    (["train", "--num-workers", "0", "--prefetch-factor", "2"], "--prefetch-factor", "2"),
    (["train", "--resume", "--checkpoint", ""], "--resume", "--checkpoint"),
    (["cached", "--epochs", "0"], "--epochs", "0"),
    (["cached", "--image-size", "-1"], "--image-size", "-1"),
    (["ddp", "--batch-size", "0"], "--batch-size", "0"),
    (["ddp", "--val-fraction", "1"], "--val-fraction", "1"),
    (["bench", "--workers", "-1"], "--workers", "-1"),
    (["bench", "--workers", "0", "10000"], "--workers", "10000"),
    (["bench", "--image-size", "0"], "--image-size", "0"),
    (["bench", "--batch-size", "0"], "--batch-size", "0"),
    (["bench", "--batches", "0"], "--batches", "0"),
    (["ladder", "--workers", "-1"], "--workers", "-1"),
    (["ladder", "--batch-size", "0"], "--batch-size", "0"),
    (["bench", "--repeats", "0"], "--repeats", "0"),
    (["bench", "--device", "tpu"], "--device", "tpu"),
    (["bench", "--pipeline", "foo"], "--pipeline", "foo"),
    (["bench", "--model", "vgg"], "--model", "vgg"),
    (["bench", "--loader", "ffcv"], "--loader", "ffcv"),
    (["verify", "DIR", "--workers", "-2"], "--workers", "-2"),
    (["memory", "--entries", "0"], "--entries", "0"),
    (["memory", "--entries", "10000000000000"], "--entries", "10000000000000"),
    (["memory", "--workers", "-1"], "--workers", "-1"),
    (["memory", "--start-method", "thread"], "--start-method", "thread"),
    (["bench", "--worker-kind", "greenlet"], "--worker-kind", "greenlet"),
    (["timeline", "--workers", "-1"], "--workers", "-1"),
    (["timeline", "--batches", "0"], "--batches", "0"),
    (["timeline", "--epochs", "0"], "--epochs", "0"),
    (["timeline", "--consumer-ms", "-5"], "--consumer-ms", "-5"),
    (["timeline", "--prefetch-factor", "0"], "--prefetch-factor", "0"),
    (["timeline", "--pipeline", "foo"], "--pipeline", "foo"),
    (["timeline", "--workers", "0", "--persistent"], "--persistent", "True"),
    (["timeline", "--workers", "0", "--prefetch-factor", "4"], "--prefetch-factor", "4"),
    (["sample-data", "DIR", "--per-class", "0"], "--per-class", "0"),
    (["sample-data", "DIR", "--seed", "-1"], "--seed", "-1"),
    (["run-notebooks", "--profile", "huge"], "--profile", "huge"),
    (["run-notebooks", "--cell-timeout", "0"], "--cell-timeout", "0"),
    (["prepare", "SRC", "DEST", "--mode", "move"], "--mode", "move"),
    (["doctor", "--num-workers", "-1"], "--num-workers", "-1"),
    (["doctor", "--batch-size", "0"], "--batch-size", "0"),
    (["doctor", "--prefetch-factor", "0"], "--prefetch-factor", "0"),
    (["train", "--checkpoint-every-steps", "0"], "--checkpoint-every-steps", "0"),
    (["train", "--checkpoint-every-steps", "2", "--checkpoint", ""], "--checkpoint-every-steps", "--checkpoint"),
    (["cached", "--checkpoint-every-steps", "2"], "--checkpoint-every-steps", "give"),
    (["ddp", "--checkpoint-every-steps", "2"], "--checkpoint-every-steps", "give"),
    (["scripts/train.py", "--lr", "0"], "--lr", "0"),
    (["scripts/train_ddp.py", "--timeout", "-1"], "--timeout", "-1"),
]


def assert_one_clear_line(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.lstrip().startswith(("error:", "[rank")), err
    assert all(fragment in err for fragment in fragments), err
    assert out == "", "work started before the option was checked"


@pytest.mark.parametrize("argv, option, value", BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_bad_value_is_one_line_naming_option_value_and_what_is_accepted(argv, option, value, capsys, tmp_path):
    argv = [str(tmp_path / a) if a in ("DIR", "SRC", "DEST") else a for a in argv]
    code, out, err = run_command(argv, capsys)
    assert_one_clear_line(code, out, err, option, value)
    assert "accepted" in err or "give" in err or "choose from" in err


@pytest.mark.parametrize("argv", [["train"], ["cached"], ["bench"], ["run-notebooks"], ["scripts/train.py"]])
def test_a_missing_data_folder_is_one_line_with_the_fix(argv, capsys, tmp_path):
    missing = str(tmp_path / "nowhere")
    code, out, err = run_command([*argv, "--data", missing], capsys)
    assert_one_clear_line(code, out, err, missing, "does not exist", "sample-data")


def test_verify_and_prepare_name_a_missing_folder(capsys, tmp_path):
    for argv in (["verify", str(tmp_path / "nowhere")], ["prepare", str(tmp_path / "nowhere"), str(tmp_path / "d")]):
        code, out, err = run_command(argv, capsys)
        assert_one_clear_line(code, out, err, str(tmp_path / "nowhere"), "not a folder")


@pytest.mark.parametrize("argv", [["train"], ["scripts/train.py"], ["scripts/train_ddp.py"]])
def test_a_corrupt_checkpoint_is_one_line_with_the_fix(argv, capsys, sample_dir, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    code, out, err = run_command([*argv, "--data", str(sample_dir), "--resume", "--checkpoint", str(broken),
                                  "--no-pretrained", "--num-workers", "0", "--no-progress"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: Checkpoint") and "delete" in err and str(broken) in err
    assert "Epoch" not in out


@pytest.mark.parametrize("error", [OptionError, DataError, CheckpointError, WorkerFailure, LossNotFinite])
def test_the_boundary_turns_every_course_error_into_one_line_and_status_2(error, capsys):
    def failing() -> int:
        raise error("what went wrong,\n  over two lines. Fix: this.")

    assert boundary(failing) == 2
    assert capsys.readouterr().err == "error: what went wrong, over two lines. Fix: this.\n"


def test_a_failed_notebook_keeps_its_own_status(capsys):
    def failing() -> int:
        raise NotebookFailed("03 stopped in cell 4")

    assert boundary(failing) == 1 and "03 stopped" in capsys.readouterr().err


def test_the_config_checks_itself_when_made_in_python_too():
    with pytest.raises(OptionError, match="--batch-size: got 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(OptionError, match=f"--num-workers: got {max_workers() + 1}"):
        TrainConfig(num_workers=max_workers() + 1)
    assert TrainConfig(checkpoint="").checkpoint is None and TrainConfig(num_workers=str(max_workers())).num_workers


@pytest.mark.parametrize("argv", [["bench", "--image-size", "100000"], ["train", "--image-size", "100000"],
                                  ["timeline", "--image-size", "100000"], ["ladder", "--image-size", "100000"],
                                  ["scripts/train.py", "--image-size", "100000"],
                                  ["scripts/train_ddp.py", "--image-size", "100000"]])
def test_batches_that_cannot_fit_in_memory_are_refused_before_any_work_with_this_machines_limit(argv, capsys):
    code, out, err = run_command(argv, capsys)
    assert_one_clear_line(code, out, err, "--image-size 100000", "GiB available", "accepted here: up to")


def test_the_limit_a_refusal_names_is_accepted(capsys):
    """The largest image size the refusal offers fits the same check."""
    import psutil

    from helpers.app.doctor import Plan, too_large

    plan = Plan(num_workers=4, batch_size=32, image_size=100000, prefetch_factor=2)
    available = psutil.virtual_memory().available
    largest = plan.largest_image_size(available)
    assert too_large(plan, available) and f"up to {largest} px" in too_large(plan, available)
    assert too_large(Plan(4, 32, largest, 2), available) is None
    assert too_large(Plan(4, 32, largest + 1, 2), available) is not None


def unwritable_paths(tmp_path):
    """A path under a file (every system) and one in /proc (Linux: it accepts no new files, even from root)."""
    (tmp_path / "a_file").write_text("")
    return [str(tmp_path / "a_file" / "x.out")] + (["/proc/x.out"] if sys.platform == "linux" else [])


@pytest.mark.parametrize("argv", [["train", "--checkpoint"], ["scripts/train.py", "--checkpoint"],
                                  ["scripts/train_ddp.py", "--checkpoint"], ["bench", "--csv"],
                                  ["bench", "--plot"], ["cached", "--cache"], ["run-notebooks", "--out"],
                                  ["timeline", "--csv"], ["memory", "--plot"], ["epochs", "--csv"],
                                  ["verify", "data/sample", "--quarantine"]])
def test_an_output_that_cannot_be_written_is_refused_before_any_work_naming_the_path_given(argv, capsys, tmp_path):
    for path in unwritable_paths(tmp_path):
        code, out, err = run_command([*argv, path], capsys)
        assert_one_clear_line(code, out, err, f"{argv[-1]} {path}", "cannot be written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing made, nothing left behind


@pytest.mark.parametrize("command", ["cached", "scripts/train_ddp.py"])
@pytest.mark.parametrize("option, value, words", [("--num-workers", "auto", "does not tune the workers"),
                                                  ("--stall-s", "5", "does not watch for stalls"),
                                                  ("--checkpoint-every-steps", "2", "after each epoch only")])
def test_a_training_option_only_train_does_is_refused_before_any_work(command, option, value, words, capsys):
    code, out, err = run_command([command, option, value, "--epochs", "1"], capsys)
    assert_one_clear_line(code, out, err, f"{option} {value}: ", words)


def test_the_writable_check_makes_no_folder_and_leaves_no_file(tmp_path):
    from helpers.files import unwritable

    assert unwritable(tmp_path / "new" / "deeper" / "x.pt") is None
    assert unwritable(tmp_path / "out", folder=True) is None
    assert unwritable(tmp_path, folder=False) == "it is a folder"
    assert list(tmp_path.iterdir()) == []

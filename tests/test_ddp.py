"""scripts/train_ddp.py under torchrun with two CPU ranks (gloo), and alone as a world of one."""
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from helpers.training.checkpoint import load_checkpoint
from helpers.loading.data import index_image_folder
from helpers.loading.loaders import build_loaders, make_loader
from helpers.training.model import build_model
from helpers.processes import run_group
from helpers.loading.splits import stratified_split_indices
from helpers.training.loop import evaluate

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def run(*args, timeout=240):
    env = {**os.environ, "HELPERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return run_group([sys.executable, *args], cwd=ROOT, env=env, timeout=timeout)


def common(sample_dir, ckpt):
    return ["scripts/train_ddp.py", "--data", str(sample_dir), "--num-workers", "1", "--no-pretrained",
            "--image-size", "64", "--batch-size", "8", "--no-progress", "--checkpoint", str(ckpt)]


def epoch_lines(stdout):
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("Epoch")]


@pytest.fixture(scope="module")
def two_ranks(sample_dir, tmp_path_factory):
    """One two-epoch run on two ranks, shared by the tests that read its log, sample lists and checkpoint."""
    out = tmp_path_factory.mktemp("ddp")
    result = run(*TORCHRUN, *common(sample_dir, out / "ckpt.pt"), "--epochs", "2", "--record-samples",
                 str(out / "seen"))
    assert result.returncode == 0, result.stdout + result.stderr
    return result, out


@pytest.mark.slow
def test_rank_0_alone_logs_each_epoch_once(two_ranks):
    result, _ = two_ranks
    assert epoch_lines(result.stdout) == ["1/2", "2/2"]
    assert result.stdout.count("Training on 2 processes (gloo, cpu)") == 1


@pytest.mark.slow
def test_ranks_train_on_disjoint_shards_that_cover_the_split_and_reshuffle_each_epoch(two_ranks, sample_dir):
    _, out = two_ranks
    index = index_image_folder(sample_dir)
    train_idx, _ = stratified_split_indices(index.targets, 0.2, seed=0)
    expected = {index.samples[i].path for i in train_idx}
    per_rank = math.ceil(len(expected) / 2)
    padding = 2 * per_rank - len(expected)  # DistributedSampler repeats this many to even out the shards
    ranks = [json.loads((out / f"seen.rank{r}.json").read_text())["epochs"] for r in (0, 1)]
    for epoch in ("1", "2"):
        a, b = ranks[0][epoch], ranks[1][epoch]
        assert len(a) == len(b) == per_rank
        assert set(a) | set(b) == expected
        assert len(set(a) & set(b)) <= padding
    assert ranks[0]["1"] + ranks[1]["1"] != ranks[0]["2"] + ranks[1]["2"]  # set_epoch reshuffled


@pytest.mark.slow
def test_checkpoint_loads_in_the_single_process_model_and_matches_the_summed_val_metrics(two_ranks, sample_dir):
    _, out = two_ranks
    model = build_model(2, pretrained=False)
    state = load_checkpoint(out / "ckpt.pt", model)
    assert state["epoch"] == 2 and state["config"]["world_size"] == 2
    val = build_loaders(sample_dir, image_size=64, batch_size=8, num_workers=0, seed=0, device="cpu").val
    result = evaluate(model, val, nn.CrossEntropyLoss(), torch.device("cpu"), progress=False)
    assert result.loss == pytest.approx(state["history"]["val_loss"][-1], rel=1e-4)
    assert result.accuracy == pytest.approx(state["history"]["val_acc"][-1])


@pytest.mark.slow
def test_resume_runs_only_the_missing_epoch(two_ranks, sample_dir, tmp_path):
    _, out = two_ranks
    ckpt = shutil.copy(out / "ckpt.pt", tmp_path / "ckpt.pt")
    result = run(*TORCHRUN, *common(sample_dir, ckpt), "--epochs", "3", "--resume")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Resumed from" in result.stdout and epoch_lines(result.stdout) == ["3/3"]
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 3 and state["history"]["epoch"] == [1, 2, 3]


@pytest.mark.slow
def test_a_rank_with_one_step_fewer_does_not_hang_the_others(sample_dir, tmp_path):
    """Batches of one and an empty file: that file's rank skips a step, which without DDP's join() waits forever."""
    data = shutil.copytree(sample_dir, tmp_path / "data")
    index = index_image_folder(data)
    train_idx, _ = stratified_split_indices(index.targets, 0.2, seed=0)
    Path(index.samples[train_idx[0]].path).write_bytes(b"")
    result = run(*TORCHRUN, *common(data, ""), "--batch-size", "1", "--epochs", "1", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(1 unreadable images skipped: 1 train, 0 val)" in result.stdout


@pytest.mark.slow
def test_without_torchrun_it_trains_as_one_process_through_the_front_door_too(sample_dir, tmp_path):
    result = run("-m", "helpers", "ddp", *common(sample_dir, tmp_path / "ckpt.pt")[1:], "--epochs", "1",
                 "--max-batches", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Training on 1 process (gloo, cpu)" in result.stdout and epoch_lines(result.stdout) == ["1/1"]


def test_missing_data_exits_2_with_a_message_not_a_traceback(tmp_path):
    result = run("scripts/train_ddp.py", "--data", str(tmp_path / "none"), "--epochs", "1", "--checkpoint", "")
    assert result.returncode == 2
    assert "error: Data folder" in result.stderr and "Traceback" not in result.stderr


def test_make_loader_takes_a_sampler_in_place_of_shuffling():
    data = list(range(10))
    shard = DistributedSampler(data, num_replicas=2, rank=1, shuffle=True, seed=3)
    loader = make_loader(data, batch_size=4, num_workers=0, device="cpu", shuffle=True, sampler=shard)
    assert loader.sampler is shard and loader.generator is not None
    assert [int(i) for batch in loader for i in batch] == list(shard)


def test_shard_summary_reads_what_each_rank_recorded(tmp_path):
    from helpers.training.ddp import shard_summary

    for rank, files in enumerate((["a", "b"], ["c", "a"])):
        (tmp_path / f"seen.rank{rank}.json").write_text(json.dumps({"rank": rank, "world_size": 2,
                                                                     "epochs": {"1": files}}))
    assert shard_summary(tmp_path / "seen") == [{"epoch": 1, "rank 0": 2, "rank 1": 2, "shared": 1, "distinct": 3}]


def test_shard_summary_counts_a_sample_shared_by_any_two_of_three_ranks(tmp_path):
    from helpers.training.ddp import shard_summary

    for rank, files in enumerate((["a", "b"], ["b", "c"], ["c", "d"])):  # no sample in all three, two in two
        (tmp_path / f"seen.rank{rank}.json").write_text(json.dumps({"rank": rank, "world_size": 3,
                                                                     "epochs": {"1": files}}))
    assert shard_summary(tmp_path / "seen")[0]["shared"] == 2


def test_a_bug_on_rank_0_reaches_the_other_ranks_as_one_line_and_rank_0_keeps_its_traceback(monkeypatch):
    """Two ranks played in turn: rank 0's broadcast is recorded, then handed to rank 1 as the wire would."""
    from helpers.errors import CourseError
    from helpers.training import ddp

    sent = []
    monkeypatch.setattr(ddp.dist, "broadcast_object_list", lambda box, src: sent.append(list(box)))

    def broken():
        raise KeyError("no such field")

    with pytest.raises(KeyError):
        ddp.from_rank0(broken, ddp.Rank(0, 0, 2))
    monkeypatch.setattr(ddp.dist, "broadcast_object_list", lambda box, src: box.__setitem__(0, sent[0][0]))
    with pytest.raises(CourseError, match="rank 0 failed with KeyError: 'no such field'"):
        ddp.from_rank0(lambda: pytest.fail("only rank 0 makes it"), ddp.Rank(1, 1, 2))

"""The blog's table: one epoch per setting, every image seen once, the gpu setup skipped without CUDA."""
import pytest
import torch

from helpers.loading.data import index_image_folder
from helpers.timing.epoch_times import BLOG_WORKERS, Setup, blog_workers, epoch_table, one_epoch


def test_an_epoch_sees_every_image_once_with_and_without_workers(sample_dir):
    index = index_image_folder(sample_dir)
    for n in (0, 2):
        row = one_epoch(index, Setup("fast", 32, 8), n, torch.device("cpu"))
        assert row["images"] == len(index.samples) and row["num_workers"] == n
        assert 0 < row["data_wait_fraction"] < 1


def test_the_gpu_setup_runs_its_device_decode_on_the_cpu_when_asked_directly(sample_dir):
    index = index_image_folder(sample_dir)
    assert one_epoch(index, Setup("gpu", 32, 8), 2, torch.device("cpu"))["images"] == len(index.samples)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_table_skips_the_gpu_setup_without_cuda_and_says_so(sample_dir):
    said = []
    rows = epoch_table(sample_dir, [Setup("gpu", 32, 8), Setup("blog", 32, 4)], [0], device="cpu", log=said.append)
    assert [r["setup"] for r in rows] == ["blog 32px b4"]
    assert said[0] == "gpu 32px b8: skipped, the gpu pipeline needs CUDA"


def test_the_blogs_worker_settings_stop_at_the_machines_limit():
    assert blog_workers(4) == [0, 1, 2, 4] and blog_workers(11) == [0, 1, 2, 4, 8]
    assert blog_workers(16) == list(BLOG_WORKERS)


def test_the_epochs_command_runs_the_settings_this_machine_allows_and_names_the_rest(monkeypatch, capsys):
    import helpers.timing.epoch_times as epoch_times
    import helpers.options as options
    from front_door import run_command

    asked = []
    monkeypatch.setattr(options, "max_workers", lambda: 4)
    monkeypatch.setattr(epoch_times, "epoch_table", lambda data, setups, workers, **kw: asked.append(workers) or [])
    code, out, err = run_command(["epochs"], capsys)
    assert code == 0, err
    assert asked == [[0, 1, 2, 4]] and "num_workers 8, 12, 16 left out: this machine allows 0 to 4" in out

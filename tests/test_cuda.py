"""The course's CUDA paths on a real GPU: `pytest -m cuda tests/test_cuda.py`. Skipped on machines without CUDA."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from helpers.timing.bench import bench
from helpers.training.config import TrainConfig
from helpers.loading.data import index_image_folder, load_uint8
from helpers.timing.epoch_times import Setup, one_epoch
from helpers.errors import WorkerFailure, explained_worker_failures
from helpers.loading.gpu_decode import DeviceDecode, collate_encoded, read_encoded
from helpers.loading.loaders import build_loaders, make_loader
from helpers.training.loop import model_and_optimizer, train_step
from helpers.training.fit import fit
from helpers.loading.transforms import build_pipeline, to_model_input
from hostile import unusual_files

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with CUDA")]
ROOT = Path(__file__).resolve().parents[1]
SIZE = 64


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return unusual_files(tmp_path_factory.mktemp("cuda"))


def test_nvjpeg_batch_decode_matches_the_cpu_decode_within_two_grey_levels(files):
    fast = build_pipeline("fast", SIZE, train=True)
    stems = list(files)
    batch = collate_encoded([(read_encoded(str(files[s]), SIZE), k) for k, s in enumerate(stems)])
    images, labels = DeviceDecode("cuda", SIZE)(batch)
    assert images.device.type == "cuda" and images.shape == (len(stems), 3, SIZE, SIZE)
    differences = {}
    for k, stem in enumerate(stems):
        expected = fast.transform(load_uint8(str(files[stem])))  # decoded in full, as nvjpeg does
        differences[stem] = (images[k].cpu().int() - expected.int()).abs().max().item()
    print("largest difference per file, grey levels:", differences)
    # nvjpeg and libjpeg-turbo round differently: on an H200 (torch 2.11) plain JPEGs differed by 2 after the resize.
    assert max(differences.values()) <= 2, differences


def test_the_gpu_pipeline_runs_end_to_end_in_the_bench_and_in_training(sample_dir):
    result = bench(sample_dir, [0, 2], pipelines=("gpu",), models=("none", "resnet18"), image_size=SIZE,
                   batch_size=8, batches=2, repeats=1, device="cuda", progress=False)
    assert [(r["mode"], r["num_workers"]) for r in result.rows] == \
        [("loader", 0), ("loader", 2), ("end-to-end", 0), ("end-to-end", 2)]
    index = index_image_folder(sample_dir)
    row = one_epoch(index, Setup("gpu", SIZE, 8), 2, torch.device("cuda"))
    assert row["images"] == len(index.samples)


def test_a_training_epoch_on_cuda_uses_pinned_batches_channels_last_and_bf16(sample_dir, tmp_path):
    loaders = build_loaders(sample_dir, pipeline="fast", image_size=SIZE, batch_size=8, num_workers=2, device="cuda")
    assert loaders.train.pin_memory
    images, labels = next(iter(loaders.train))
    assert images.is_pinned() and images.dtype == torch.uint8
    device = torch.device("cuda")
    model, optimizer = model_and_optimizer(2, device, lr=1e-2, pretrained=False)
    assert model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    head_before = model.head[1].weight.detach().clone()
    loss, logits, _ = train_step(model, images, labels, torch.nn.CrossEntropyLoss(), optimizer, device,
                                 loaders.pipeline.to_model_input)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(loss)
    assert not torch.equal(head_before, model.head[1].weight)
    assert to_model_input(images, device, True, channels_last=True).is_contiguous(memory_format=torch.channels_last)
    history = fit(TrainConfig(data=str(sample_dir), epochs=1, image_size=SIZE, batch_size=8, pipeline="fast",
                              device="cuda", pretrained=False, checkpoint=str(tmp_path / "c.pt"), progress=False),
                  log=lambda line: None)
    assert history["epoch"] == [1] and torch.isfinite(torch.tensor(history["train_loss"])).all()


def test_the_copy_from_pinned_memory_is_asynchronous():
    """non_blocking from pinned memory shows up in the profiler as a pinned-to-device copy."""
    batch = torch.zeros(8, 3, SIZE, SIZE, dtype=torch.uint8).pin_memory()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        to_model_input(batch, torch.device("cuda"), True)
        torch.cuda.synchronize()
    names = [e.name for e in prof.events()]
    print("CUDA events:", sorted(set(names)))
    assert any("Pinned" in n and "Device" in n for n in names), names


def test_torchrun_trains_one_rank_over_nccl(sample_dir, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
               "scripts/train_ddp.py", "--data", str(sample_dir), "--epochs", "1", "--image-size", str(SIZE),
               "--batch-size", "8", "--num-workers", "2", "--no-pretrained", "--no-progress", "--device", "cuda",
               "--checkpoint", str(tmp_path / "ddp.pt")]
    env = {**os.environ, "HELPERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print(out)
    assert proc.returncode == 0, out
    assert "nccl, cuda" in out and "Epoch 1/1" in out


class TouchesCuda(Dataset):
    """A dataset that makes its items on the GPU: what a forked worker may not do once the parent has used CUDA."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.full((2,), index, device="cuda").cpu()


def test_cuda_before_fork_fails_with_the_course_message_and_spawn_fixes_it():
    torch.zeros(1, device="cuda")  # the main process has used CUDA
    loader = make_loader(TouchesCuda(), batch_size=2, num_workers=1, device="cpu", start_method="fork", timeout=60)
    with pytest.raises(WorkerFailure) as caught, explained_worker_failures():
        list(loader)
    print(caught.value)
    assert "Cannot re-initialize CUDA in forked subprocess" in str(caught.value)  # the worker's own error, quoted
    assert "--start-method spawn" in str(caught.value)  # and the fix
    loader = make_loader(TouchesCuda(), batch_size=2, num_workers=1, device="cpu", start_method="spawn", timeout=120)
    assert sum(len(b) for b in loader) == 4

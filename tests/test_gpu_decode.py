"""The gpu pipeline's code, run on the CPU: what it sends from the workers and what it decodes must match `fast`
(decoding in full: only the fast pipeline decodes large JPEGs at a reduced DCT scale)."""

import pytest
import torch

from helpers.loading.data import ImageDataset, Sample, Unreadable, index_image_folder, load_uint8
from helpers.loading.samples import sample_image_bytes
from helpers.loading.gpu_decode import (NO_CUDA_NOTE, DeviceDecode, bytes_to_move, collate_encoded, encoded_loader,
                                read_encoded)
from helpers.loading.loaders import make_loader
from helpers.timing.bench import bench, report
from helpers.loading.transforms import build_pipeline
from hostile import bad, unusual_files

SIZE = 48


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return unusual_files(tmp_path_factory.mktemp("gpu"))


def test_workers_send_plain_jpeg_bytes_and_decode_everything_else_themselves(files):
    sent = {stem: read_encoded(str(path), SIZE) for stem, path in files.items()}
    assert {stem for stem, t in sent.items() if t.ndim == 1} == {"plain", "gray", "large", "tiny", "café é"}
    for stem, t in sent.items():
        assert t.dtype == torch.uint8
        assert t.ndim == 1 or t.shape == (3, SIZE, SIZE), stem


def test_decoded_batch_equals_the_fast_pipeline_decoding_in_full_image_for_image(files):
    fast = build_pipeline("fast", SIZE, train=True)
    stems = list(files)
    batch = collate_encoded([(read_encoded(str(files[s]), SIZE), k) for k, s in enumerate(stems)])
    images, labels = DeviceDecode("cpu", SIZE)(batch)
    assert images.shape == (len(stems), 3, SIZE, SIZE) and labels.tolist() == list(range(len(stems)))
    for k, stem in enumerate(stems):
        expected = fast.transform(load_uint8(str(files[stem])))
        assert (images[k].int() - expected.int()).abs().max() <= 1, stem


def test_bad_files_come_back_unreadable_not_as_bytes(tmp_path):
    good = sample_image_bytes("dog", 0)
    samples = []
    for stem, data in bad(good).items():
        (tmp_path / f"{stem}.jpg").write_bytes(data)
        samples.append(Sample(str(tmp_path / f"{stem}.jpg"), 0))
    dataset = ImageDataset(samples, None, encoded_loader(SIZE))
    assert all(isinstance(dataset[i], Unreadable) for i in range(len(samples)))


def test_worker_batches_of_bytes_reach_the_main_process(sample_dir):
    """Regression: handing read_file's own tensor across processes hung the loader for good."""
    dataset = ImageDataset(index_image_folder(sample_dir).samples, None, encoded_loader(SIZE))
    loader = make_loader(dataset, batch_size=8, num_workers=2, device="cpu", collate_fn=collate_encoded, timeout=30)
    batches = [DeviceDecode("cpu", SIZE)(b) for b in loader]
    assert sum(len(labels) for _, labels in batches) == len(dataset)


def test_bench_skips_the_gpu_pipeline_without_cuda_and_says_why(sample_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = bench(sample_dir, [0], pipelines=("gpu",), image_size=SIZE, batches=1, repeats=1, progress=False)
    assert result.rows == [] and result.notes == [NO_CUDA_NOTE] and NO_CUDA_NOTE in report(result)


def test_bench_runs_the_gpu_path_end_to_end_when_told_to_decode_on_the_cpu(sample_dir):
    result = bench(sample_dir, [0, 1], pipelines=("gpu",), models=("none", "resnet18"), image_size=SIZE, batch_size=4,
                   batches=2, repeats=1, device="cpu", decode_on_cpu=True, progress=False)
    assert [(r["mode"], r["num_workers"]) for r in result.rows] == \
        [("loader", 0), ("loader", 1), ("end-to-end", 0), ("end-to-end", 1)]
    assert all(r["images_per_s"] > 0 and r["ceiling_fraction"] is None for r in result.rows)
    assert [r["data_wait_fraction"] is None for r in result.rows] == [True, True, False, False]


def test_bytes_to_move_compares_what_workers_send_with_decoded_pixels(files):
    plain = str(files["plain"])
    encoded_kb, decoded_kb = bytes_to_move([plain, plain], SIZE)
    assert encoded_kb == pytest.approx(files["plain"].stat().st_size / 1e3)
    assert decoded_kb == pytest.approx(3 * SIZE * SIZE / 1e3)


@pytest.mark.slow
def test_training_on_the_gpu_pipeline_runs_on_a_cpu_and_learns_what_fast_learns(sample_dir):
    """The registry's gpu pipeline trains like any other; on a CPU it decodes there, to the same pixels as `fast`."""
    from helpers.training.fit import TrainConfig, fit

    def history(pipeline: str) -> dict:
        # 128 px: no sample image is 4 x that, so `fast` decodes them in full, as the gpu pipeline does
        config = TrainConfig(data=str(sample_dir), epochs=1, num_workers=0, batch_size=8, image_size=128,
                             pipeline=pipeline, pretrained=False, checkpoint=None, progress=False)
        result = fit(config, log=lambda _: None)
        del result["seconds"]
        return result

    gpu, fast = history("gpu"), history("fast")
    assert gpu["epoch"] == [1] and gpu.keys() == fast.keys()
    for key in gpu:
        assert gpu[key] == pytest.approx(fast[key], rel=1e-5), key

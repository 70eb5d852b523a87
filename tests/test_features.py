import shutil

import pytest
import torch

from helpers.loading.data import ImageDataset, index_image_folder
from helpers.training.features import build_cache, compare, fit_cached, why_not_cache
from helpers.training.model import build_model
from helpers.loading.splits import split_datasets
from helpers.training.fit import TrainConfig, loaders_for
from helpers.loading.transforms import build_pipeline


def _config(data, **kw) -> TrainConfig:
    return TrainConfig(**{**dict(data=str(data), epochs=2, num_workers=0, batch_size=8, image_size=32,
                                 pretrained=False, progress=False, checkpoint=None), **kw})


def _cached(config: TrainConfig, cache, log):
    return fit_cached(config, loaders_for(config), cache, log)


@pytest.mark.slow
def test_cache_is_built_once_then_read_back_and_gives_the_same_training(sample_dir, tmp_path):
    logs = []
    first = _cached(_config(sample_dir), tmp_path / "f.pt", log=logs.append)
    assert not first.from_disk and first.build_seconds > 0 and (tmp_path / "f.pt").exists()
    second = _cached(_config(sample_dir), tmp_path / "f.pt", log=logs.append)
    assert second.from_disk and second.build_seconds == 0
    assert second.history == {**first.history, "seconds": second.history["seconds"]}
    assert any(line.startswith("Features read from") for line in logs)


@pytest.mark.slow
def test_a_cache_made_with_other_settings_is_not_reused(sample_dir, tmp_path):
    _cached(_config(sample_dir, epochs=1), tmp_path / "f.pt", log=lambda _: None)
    logs = []
    run = _cached(_config(sample_dir, epochs=1, image_size=48), tmp_path / "f.pt", log=logs.append)
    assert not run.from_disk and any("made from other files, settings or weights" in line for line in logs)


def test_cached_features_are_the_backbones_output_on_the_validation_transform(sample_dir, tmp_path):
    index = index_image_folder(sample_dir)
    torch.manual_seed(0)
    config = _config(sample_dir)
    build_cache(config, loaders_for(config), build_model(2, pretrained=False), tmp_path / "f.pt", log=lambda _: None)
    state = torch.load(tmp_path / "f.pt", weights_only=True)
    pipe = build_pipeline("standard", 32, train=False)
    train_set, _ = split_datasets(index, pipe, pipe, 0.2, 0)
    assert state["train"]["paths"] == [s.path for s in train_set.samples]
    torch.manual_seed(0)
    model = build_model(2, pretrained=False).eval()
    image, label = ImageDataset(train_set.samples[:1], pipe.transform, pipe.loader)[0]
    with torch.inference_mode():
        expected = model.backbone(image.unsqueeze(0))[0]
    assert state["train"]["labels"][0] == label
    torch.testing.assert_close(state["train"]["features"][0], expected, rtol=1e-4, atol=1e-4)


def test_an_unreadable_image_is_named_and_left_out_of_the_cache(sample_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    bad = data / "cat" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="broken.jpg"):
        _cached(_config(data, epochs=1), tmp_path / "f.pt", log=lambda _: None)
    state = torch.load(tmp_path / "f.pt", weights_only=True)
    paths = state["train"]["paths"] + state["val"]["paths"]
    assert str(bad) not in paths and len(paths) == len(index_image_folder(data).samples) - 1
    assert len(state["train"]["labels"]) + len(state["val"]["labels"]) == len(paths)


@pytest.mark.slow
def test_compare_trains_the_same_head_both_ways(sample_dir, tmp_path):
    config = _config(sample_dir)
    rows = compare(config, loaders_for(config), tmp_path / "f.pt", log=lambda _: None)
    loader_fed, cached, ratio = rows
    assert (loader_fed["method"], cached["method"]) == ("loader-fed", "cached features")
    assert loader_fed["epochs"] == cached["epochs"] == 2 and cached["build_s"] > 0
    assert ratio["epoch_s"] == pytest.approx(loader_fed["epoch_s"] / cached["epoch_s"])


def test_why_not_cache_finds_moving_features_only_where_a_cache_would_be_wrong(sample_dir):
    rows = why_not_cache(sample_dir, image_size=32, images=4, pretrained=False)
    assert [r["case"].split()[0] for r in rows] == ["validation", "random", "one"]
    assert rows[0]["change"] == 0.0 and rows[1]["change"] > 0.01 and rows[2]["change"] > 0.001


@pytest.mark.slow
def test_a_truncated_cache_file_is_rebuilt_with_a_message(sample_dir, tmp_path):
    cache = tmp_path / "f.pt"
    _cached(_config(sample_dir, epochs=1), cache, log=lambda _: None)
    cache.write_bytes(cache.read_bytes()[:100])
    logs = []
    run = _cached(_config(sample_dir, epochs=1), cache, log=logs.append)
    assert not run.from_disk and any("could not be read" in line for line in logs)
    assert _cached(_config(sample_dir, epochs=1), cache, log=lambda _: None).from_disk

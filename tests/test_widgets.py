"""The num_workers slider measures on every release and keeps every measurement."""
from helpers.loading.data import ImageDataset, index_image_folder
from helpers.loading.transforms import build_pipeline
from helpers.lessons.widgets import NumWorkersExplorer


def test_moving_the_slider_measures_that_many_workers(sample_dir):
    pipe = build_pipeline("fast", 64)
    dataset = ImageDataset(index_image_folder(sample_dir).samples, pipe.transform, pipe.loader)
    explorer = NumWorkersExplorer(dataset, batch_size=4, batches=2, max_workers=3)
    assert explorer.slider.continuous_update is False and explorer.slider.max == 3
    assert list(explorer.measurements) == [0] and explorer.measurements[0][0] > 0
    explorer.slider.value = 2
    explorer.slider.value = 0
    assert sorted(explorer.measurements) == [0, 2] and len(explorer.measurements[0]) == 2
    assert "num_workers=0:" in explorer.status.value and "images/s" in explorer.status.value
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()

"""The like-for-like ladder: each rung changes one thing, and every rung makes the same picture."""
import torch

from helpers.loading.data import index_image_folder
from helpers.timing.ladder import ladder, rungs


def test_each_rung_after_the_first_gives_uint8_images_of_one_shape_close_to_the_one_before(sample_dir):
    index = index_image_folder(sample_dir)
    outputs = [rung.dataset(index)[0][0] for rung in rungs(image_size=48)]
    assert outputs[0].dtype == torch.float32 and all(o.dtype == torch.uint8 for o in outputs[1:])
    assert {tuple(o.shape) for o in outputs} == {(3, 48, 48)}
    for before, after in zip(outputs[1:], outputs[2:]):
        # another resize or decoder changes pixels a little, not the picture
        assert (before.float() - after.float()).abs().mean() < 8


def test_consecutive_rungs_differ_in_exactly_one_of_steps_or_batch_size():
    ladder_rungs = rungs(image_size=48, small_batch=4, large_batch=32)
    for before, after in zip(ladder_rungs, ladder_rungs[1:]):
        changed = [before.steps != after.steps, before.batch_size != after.batch_size]
        assert changed.count(True) == 1, after.change


def test_a_ladder_on_tiny_data_times_every_rung_at_its_own_batch_size(sample_dir):
    rows = ladder(sample_dir, 0, image_size=32, small_batch=2, large_batch=4, batches=2, repeats=1, progress=False)
    assert [r["part"] for r in rows] == [r.part for r in rungs()]
    assert [r["batch_size"] for r in rows] == [2, 2, 2, 2, 2, 4]
    assert rows[0]["total_gain"] == 1.0 and all(r["images_per_s"] > 0 for r in rows)

import pytest
import torch

from helpers.loading.data import index_image_folder
from helpers.loading.transforms import build_pipeline, to_model_input


def _first(sample_dir):
    return index_image_folder(sample_dir).samples[0].path


def test_blog_pipeline_is_the_posts_square_resize(sample_dir):
    p = build_pipeline("blog", 512)
    x = p.transform(p.loader(_first(sample_dir)))
    assert x.shape == (3, 512, 512) and x.dtype == torch.float32


def test_validation_pipeline_has_no_augmentation(sample_dir):
    for name in ("standard", "fast"):
        p = build_pipeline(name, 96, train=False)
        image = p.loader(_first(sample_dir))
        torch.manual_seed(0)
        a = p.transform(image)
        torch.manual_seed(1)
        assert torch.equal(a, p.transform(image)), name


def test_training_pipeline_does_augment(sample_dir):
    p = build_pipeline("standard", 96, train=True)
    image = p.loader(_first(sample_dir))
    torch.manual_seed(0)
    a = p.transform(image)
    torch.manual_seed(1)
    assert not torch.equal(a, p.transform(image))


@pytest.mark.parametrize("size", [224, 512])
def test_fast_pipeline_feeds_the_model_what_the_blog_pipeline_does(sample_dir, size):
    """uint8 out of the worker, normalized on the device, and then equal to the blog's float pipeline."""
    fast, blog = build_pipeline("fast", size, train=True), build_pipeline("blog", size, train=True)
    for sample in index_image_folder(sample_dir).samples[::6]:
        raw = fast.transform(fast.loader(sample.path))
        assert raw.dtype == torch.uint8 and raw.shape == (3, size, size) and fast.normalize_on_device
        x = to_model_input(raw.unsqueeze(0), torch.device("cpu"), normalize=True)[0]
        y = blog.transform(blog.loader(sample.path))
        # One uint8 step is 1/255/0.225 = 0.017 after normalization: allow rare one- or two-step rounding differences.
        assert x.dtype == torch.float32 and x.shape == y.shape
        assert (x - y).abs().mean() < 5e-3 and (x - y).abs().max() < 0.04

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


def test_fast_decodes_a_jpeg_4x_the_target_at_the_smallest_dct_scale_still_covering_it(tmp_path):
    """1/4 or 1/8 of the size, every side still at least the target, EXIF rotation kept; under 4x, in full."""
    import io

    from PIL import Image

    from helpers.loading.data import load_uint8
    from helpers.loading.samples import sample_image_bytes

    picture = Image.open(io.BytesIO(sample_image_bytes("cat", 0))).convert("RGB")
    big, small, turned = tmp_path / "big.jpg", tmp_path / "small.jpg", tmp_path / "turned.jpg"
    picture.resize((1800, 1000)).save(big, quality=90)
    picture.resize((700, 500)).save(small, quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned by 90 degrees
    picture.resize((1800, 1000)).save(turned, quality=90, exif=exif)
    assert tuple(load_uint8(str(big), at_least=120).shape) == (3, 125, 225)   # 1000 // 120 = 8: 1/8
    assert tuple(load_uint8(str(big), at_least=224).shape) == (3, 250, 450)   # 1000 // 224 = 4: 1/4
    assert tuple(load_uint8(str(turned), at_least=224).shape) == (3, 450, 250)
    assert tuple(load_uint8(str(small), at_least=130).shape) == (3, 500, 700)  # 1/2 would do; 500 < 4 x 130
    fast = build_pipeline("fast", 224)
    drafted, full = fast.transform(fast.loader(str(big))), fast.transform(load_uint8(str(big)))
    assert drafted.shape == full.shape == (3, 224, 224)
    assert (drafted.float() - full.float()).abs().mean() < 2  # grey levels: the same picture

import io
import numpy as np
import pytest
from PIL import Image

from helpers.loading.data import DataError, ImageDataset, Sample, Unreadable, index_image_folder, load_rgb
from helpers.loading.samples import make_sample_data, sample_image_bytes


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = make_sample_data(tmp_path / "a", per_class=3, seed=7, progress=False)
    b = make_sample_data(tmp_path / "b", per_class=3, seed=7, progress=False)
    assert [open(s.path, "rb").read() for s in a.samples] == [open(s.path, "rb").read() for s in b.samples]
    assert sample_image_bytes("cat", 0, seed=7) != sample_image_bytes("cat", 0, seed=8)


def test_sample_images_look_like_cats_vs_dogs_photos(sample_dir):
    index = index_image_folder(sample_dir)
    assert index.classes == ("cat", "dog")
    assert index.targets.count(0) == index.targets.count(1) == 12
    sizes = [Image.open(s.path).size for s in index.samples]
    assert all(280 <= w <= 500 and 280 <= h <= 500 for w, h in sizes)
    kbytes = [len(open(s.path, "rb").read()) / 1024 for s in index.samples]
    assert 8 < np.median(kbytes) < 100


def test_classes_differ_visibly(sample_dir):
    """Cats are drawn warm and dogs cool: the mean red-minus-blue separates them."""
    index = index_image_folder(sample_dir)
    warmth = [np.asarray(load_rgb(s.path), dtype=float) for s in index.samples]
    warmth = [a[..., 0].mean() - a[..., 2].mean() for a in warmth]
    cats = [w for w, t in zip(warmth, index.targets) if t == 0]
    dogs = [w for w, t in zip(warmth, index.targets) if t == 1]
    assert min(cats) > max(dogs)


@pytest.mark.parametrize("make, expected", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no class folders"),
    (lambda p: (p / "cat.0.jpg").write_bytes(sample_image_bytes("cat", 0)) and p, "images directly inside"),
    (lambda p: ((p / "cat").mkdir(), (p / "cat" / "1.jpg").write_bytes(sample_image_bytes("cat", 1)), p)[-1],
     "at least two class folders"),
])
def test_unusable_folders_fail_early_with_the_layout_and_the_fix(tmp_path, make, expected):
    root = make(tmp_path)
    with pytest.raises(DataError) as info:
        index_image_folder(root)
    message = str(info.value)
    assert expected in message
    assert "<class name>/<image files>" in message and "sample-data" in message


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P"])
def test_unusual_modes_load_as_rgb(tmp_path, mode):
    path = tmp_path / f"x_{mode}.png" if mode in ("RGBA", "P") else tmp_path / f"x_{mode}.jpg"
    Image.new(mode, (40, 30)).save(path)
    img = load_rgb(str(path))
    assert img.mode == "RGB" and img.size == (40, 30)


def test_dataset_returns_the_unreadable_file_and_its_reason(tmp_path, sample_dir):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(sample_image_bytes("dog", 0)[:200])
    good = index_image_folder(sample_dir).samples[0]
    ds = ImageDataset([good, Sample(str(bad), 1)])
    assert ds[0][1] == good.label
    assert ds[1] == Unreadable(str(bad), "truncated (the file ends before the image does)")



def test_the_photo_shapes_are_seeded_sized_like_their_sources_and_pass_verify(tmp_path):
    from helpers.loading.samples import photo_size
    from helpers.loading.verify import verify_folder

    index = make_sample_data(tmp_path / "imagenet", per_class=3, seed=0, progress=False, shape="imagenet")
    assert verify_folder(tmp_path / "imagenet", progress=False).bad == []
    assert sample_image_bytes("dog", 1, 0, "imagenet") == open(index.samples[4].path, "rb").read()
    assert sample_image_bytes("dog", 1, 0, "imagenet") != sample_image_bytes("dog", 1, 0)
    sizes = np.array([photo_size(np.random.default_rng(i), "imagenet") for i in range(400)])
    assert 450 < sizes.max(axis=1).mean() < 560 and 350 < sizes.min(axis=1).mean() < 450  # about 500 x 400
    phone = Image.open(io.BytesIO(sample_image_bytes("cat", 0, 0, "phone")))
    assert sorted(phone.size) == [3000, 4000] and phone.format == "JPEG"

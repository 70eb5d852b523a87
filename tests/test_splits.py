import pytest

from helpers.loading.data import index_image_folder
from helpers.loading.splits import random_split_indices, split_datasets, stratified_split_indices
from helpers.loading.transforms import build_pipeline


@pytest.mark.parametrize("split", ["random", "stratified"])
def test_splits_are_disjoint_complete_and_seeded(split):
    targets = [0] * 30 + [1] * 20
    cut = (lambda s: random_split_indices(len(targets), 0.2, s)) if split == "random" else \
        (lambda s: stratified_split_indices(targets, 0.2, s))
    train, val = cut(3)
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(50))
    assert len(val) == 10
    assert cut(3) == (train, val)
    assert cut(4) != (train, val)


def test_stratified_split_keeps_class_balance():
    targets = [0] * 80 + [1] * 20
    _, val = stratified_split_indices(targets, 0.2, 0)
    assert sorted(targets[i] for i in val) == [0] * 16 + [1] * 4


def test_bad_fraction_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split_indices(10, 1.5)


def test_each_split_has_its_own_transform(sample_dir):
    index = index_image_folder(sample_dir)
    train_p, val_p = build_pipeline("standard", 64, train=True), build_pipeline("standard", 64, train=False)
    train, val = split_datasets(index, train_p, val_p, 0.25, seed=0)
    assert train.transform is train_p.transform and val.transform is val_p.transform
    assert not {s.path for s in train.samples} & {s.path for s in val.samples}
    assert len(train) + len(val) == len(index.samples)

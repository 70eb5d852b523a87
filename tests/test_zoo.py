"""The failure zoo with real processes: each failure reproduced, ending in the course's message, then fixed. Running
out of open files (and its two fixes) is compared by nbval in notebook 09, which runs the same child processes."""
import pytest

from collections import Counter

from torch.utils.data import DataLoader, IterableDataset

from helpers.lessons import zoo


def times_seen(dataset: IterableDataset, num_workers: int) -> Counter:
    """How many times the loader delivered each item in one pass."""
    loader = DataLoader(dataset, batch_size=4, num_workers=num_workers)
    return Counter(int(x) for batch in loader for x in batch)


def test_an_iterable_dataset_is_repeated_by_every_worker_unless_it_shards():
    assert set(times_seen(zoo.Numbers(12, sharded=False), num_workers=2).values()) == {2}
    fixed = times_seen(zoo.Numbers(12, sharded=True), num_workers=2)
    assert sorted(fixed) == list(range(12)) and set(fixed.values()) == {1}


def test_persistent_workers_never_see_an_epoch_the_main_process_sets_on_the_dataset():
    assert zoo.epochs_workers_saw(persistent=True, sampler_epoch=False) == [[1], [1], [1]]
    assert zoo.epochs_workers_saw(persistent=False, sampler_epoch=False) == [[1], [2], [3]]  # recreated each epoch
    assert zoo.epochs_workers_saw(persistent=True, sampler_epoch=True) == [[1], [2], [3]]


def test_batches_larger_than_a_small_tmpfs_over_dev_shm_fail_with_the_shm_fix():
    failed = zoo.shm_too_small("1m", image_size=256, batch_size=4)  # 3 MiB batches, 1 MiB of /dev/shm
    if failed is None:
        pytest.skip("this system allows no user and mount namespace (unshare -rm), so no small /dev/shm here")
    assert "No space left on device" in failed and "--shm-size" in failed
    assert zoo.shm_too_small("64m", image_size=256, batch_size=4) == "ok: 4 batches"


def test_a_file_size_limit_stands_in_for_a_full_dev_shm_without_root():
    failed = zoo.shm_file_size_limited(2**20, image_size=256, batch_size=4)
    assert "unable to resize file </torch_...>" in failed and "--shm-size" in failed
    assert zoo.shm_file_size_limited(2**26, image_size=256, batch_size=4) == "ok: 4 batches"

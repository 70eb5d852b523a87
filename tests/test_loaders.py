import random

import numpy as np
import torch
from torch.utils.data import RandomSampler, SequentialSampler

import pytest
from helpers.loading.data import SkippedFiles, Unreadable, collate_skipping_bad
from helpers.loading.loaders import build_loaders, make_loader
from helpers.training.loop import reseed
from helpers.loading.resume import EpochOrder


def test_validation_is_not_shuffled_and_cpu_runs_do_not_pin(sample_dir):
    loaders = build_loaders(sample_dir, image_size=64, batch_size=4, num_workers=0, device="cpu")
    assert isinstance(loaders.val.sampler, SequentialSampler)
    assert isinstance(loaders.train.sampler, EpochOrder)
    plain = build_loaders(sample_dir, image_size=64, batch_size=4, num_workers=0, device="cpu", resumable=False)
    assert isinstance(plain.train.sampler, RandomSampler)
    assert not loaders.train.pin_memory and not loaders.val.pin_memory
    assert build_loaders(sample_dir, num_workers=0, device="cuda").train.pin_memory


def test_worker_options_are_passed_through(sample_dir):
    loaders = build_loaders(sample_dir, num_workers=2, persistent_workers=True, prefetch_factor=3,
                            start_method="spawn", timeout=30)
    train = loaders.train
    assert train.num_workers == 2 and train.persistent_workers and train.prefetch_factor == 3
    assert train.multiprocessing_context.get_start_method() == "spawn" and train.timeout == 30


def _labels_in_order(loader):
    return torch.cat([y for _, y in loader]).tolist()


def test_shuffling_is_seeded_and_reseedable(sample_dir):
    a = build_loaders(sample_dir, image_size=32, batch_size=4, num_workers=0, seed=5).train
    b = build_loaders(sample_dir, image_size=32, batch_size=4, num_workers=0, seed=5).train
    reseed(a, 11)
    reseed(b, 11)
    first = _labels_in_order(a)
    assert first == _labels_in_order(b)
    reseed(a, 11)
    assert _labels_in_order(a) == first


class _GlobalDraws(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return (torch.tensor([np.random.randint(0, 2**31), random.randrange(2**31), int(torch.randint(2**31, ()))]),
                torch.utils.data.get_worker_info().id)


def test_a_seeded_generator_alone_gives_each_worker_its_own_repeatable_draws():
    """No worker_init_fn: PyTorch seeds torch, random and NumPy in each worker (torch/utils/data/_utils/worker.py)."""
    def draws(seed):
        loader = make_loader(_GlobalDraws(), batch_size=1, num_workers=2, device="cpu", seed=seed, start_method="fork",
                             collate_fn=torch.utils.data.default_collate)
        assert loader.worker_init_fn is None
        return [(tuple(x[0].tolist()), int(w)) for x, w in loader]

    first = draws(0)
    by_worker = {w: x for x, w in first}
    assert len(by_worker) == 2 and all(a != b for a, b in zip(*by_worker.values()))  # torch, random, NumPy all differ
    assert draws(0) == first
    assert draws(1) != first


def test_collate_drops_unreadable_samples_and_names_them_once():
    bad = Unreadable("x/broken.jpg", "empty file (0 bytes)")
    batch = collate_skipping_bad([(torch.zeros(3), 0), bad, (torch.ones(3), 1)])
    images, labels = batch
    assert images.shape == (2, 3) and labels.tolist() == [0, 1] and batch.skipped == (bad,)
    empty = collate_skipping_bad([bad, bad])
    assert len(empty) == 0 and empty.skipped == (bad, bad)
    skipped = SkippedFiles()
    with pytest.warns(UserWarning, match="x/broken.jpg: empty file"):
        assert skipped.note(batch) is True
    assert skipped.note(empty) is False and len(skipped) == 1


def test_a_batch_keeps_its_skipped_files_through_the_worker_queue_and_pin_memory_copy():
    import copy
    import pickle

    batch = collate_skipping_bad([(torch.zeros(3), 0), Unreadable("x/bad.jpg", "empty file (0 bytes)")])
    for moved in (pickle.loads(pickle.dumps(batch)), copy.copy(batch)):  # what the queue and pin_memory do to it
        assert type(moved).__name__ == "Batch" and moved.skipped == batch.skipped and len(moved) == 2


def test_persistent_workers_has_one_default_for_the_config_and_both_factories():
    import inspect

    from helpers.training.config import TrainConfig
    from helpers.loading.loaders import PERSISTENT_WORKERS

    defaults = {f.__name__: inspect.signature(f).parameters["persistent_workers"].default
                for f in (build_loaders, make_loader)}
    assert defaults == {"build_loaders": PERSISTENT_WORKERS, "make_loader": PERSISTENT_WORKERS}
    assert TrainConfig.__dataclass_fields__["persistent_workers"].default is PERSISTENT_WORKERS

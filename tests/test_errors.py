"""A worker's failure reaches the user as the worker's own error plus the course's cause and fix."""
import pytest
from torch.utils.data import Dataset

from helpers.errors import WorkerFailure, explained_worker_failures
from helpers.loading.loaders import make_loader

CUDA_IN_FORK = ("Cannot re-initialize CUDA in forked subprocess. To use CUDA with multiprocessing, you must use the "
                "'spawn' start method")


class RaisesInWorker(Dataset):
    """Fails as a dataset that touches CUDA in a forked worker fails (torch/cuda/__init__.py's message), on any machine."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        raise RuntimeError(CUDA_IN_FORK)


def test_the_message_quotes_the_workers_own_error_and_names_the_fix():
    loader = make_loader(RaisesInWorker(), batch_size=2, num_workers=1, device="cpu", start_method="fork", timeout=60)
    with pytest.raises(WorkerFailure) as caught, explained_worker_failures():
        list(loader)
    message = str(caught.value)
    assert f"RuntimeError: {CUDA_IN_FORK}" in message
    assert "Caught RuntimeError" not in message and "--start-method spawn" in message

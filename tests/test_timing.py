import time

import pytest
import torch

from helpers.timing import LoaderTiming, format_table, time_loader


class _Slow:
    """A fake loader whose speed is known: 4 images every 20 ms, and a slow first batch."""

    def __iter__(self):
        time.sleep(0.1)
        while True:
            yield torch.zeros(4, 1), torch.zeros(4)
            time.sleep(0.02)


def test_time_loader_separates_startup_from_steady_throughput():
    t = time_loader(_Slow(), batches=5, warmup=1)
    assert isinstance(t, LoaderTiming)
    assert t.images == 20 and t.batches == 5
    assert t.startup_s >= 0.1
    assert 100 < t.images_per_s <= 200  # 4 images per >= 20 ms


def test_time_loader_refuses_a_loader_too_short_to_time():
    with pytest.raises(ValueError, match="ran out"):
        time_loader([(torch.zeros(1), torch.zeros(1))], batches=3, warmup=1)


def test_format_table_aligns_columns():
    table = format_table([{"n": 1, "v": 2.5}, {"n": 10, "v": 100.25}], [("n", "workers", "d"), ("v", "img/s", ".1f")])
    lines = table.splitlines()
    assert lines[0].split() == ["workers", "img/s"] and set(lines[1]) <= {"-", " "}
    assert lines[3].split() == ["10", "100.2"] and len({len(l) for l in lines}) == 1

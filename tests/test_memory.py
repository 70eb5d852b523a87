"""What workers cost in memory: the psutil probe, the course's index, the bench's budget. The copy-on-read lab's
claims (the list copied into each worker, the course's index not) are compared by nbval in notebook 08, and its
command's table, CSV and plot are tested in test_cli.py."""
import os
import pickle
import sys

import psutil
import pytest
from torch.utils.data import DataLoader

from helpers.timing.bench import BenchResult, report
from helpers.loading.data import ImageDataset, ImageFolderIndex, Sample, index_image_folder
from helpers.timing.memory import snapshot, worker_pids
from helpers.loading.sample_table import SampleTable

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="USS and PSS as Linux reports them")


def test_a_sample_table_reads_back_every_path_and_label_as_given():
    paths = ["data/cat/1.jpg", "data/dög/ü.png", os.fsdecode(b"data/dog/\xff.jpg"), ""]
    table = SampleTable(paths, [0, 1, 1, 0])
    assert list(table) == [Sample(p, label) for p, label in zip(paths, [0, 1, 1, 0])]
    assert table[-1] == Sample("", 0) and table.paths == paths
    assert list(table[1:3]) == list(table.take([1, 2])) and table.take([3, 0]).paths == [paths[3], paths[0]]
    assert pickle.loads(pickle.dumps(table)) == table != table.take([0, 1, 2, 3][::-1])
    with pytest.raises(IndexError):
        table[4]
    with pytest.raises(ValueError, match="4 paths but 3 labels"):
        SampleTable(paths, [0, 1, 1])


def test_the_course_index_and_dataset_hold_a_table_whatever_they_are_given(sample_dir):
    index = index_image_folder(sample_dir)
    assert isinstance(index.samples, SampleTable) and index.targets == [s.label for s in index.samples]
    from_objects = ImageFolderIndex(index.root, index.classes, tuple(index.samples))
    assert from_objects == index and isinstance(from_objects.samples, SampleTable)
    dataset = ImageDataset(list(index.samples)[:3], loader=len)
    assert isinstance(dataset.samples, SampleTable) and dataset[2] == (len(index.samples[2].path), 0)


@linux_only
def test_worker_pids_come_from_the_loader_and_match_the_process_tree_with_persistent_workers():
    loader = DataLoader(range(64), batch_size=8, num_workers=2, persistent_workers=True,
                        multiprocessing_context="fork")
    try:
        assert len(list(loader)) == 8  # a whole pass: non-persistent workers would be gone now
        pids = worker_pids(loader)
        assert len(pids) == 2 and set(pids) <= {c.pid for c in psutil.Process().children()}
        now = snapshot(pids)
        assert [p.role for p in now.processes] == ["main", "worker 0", "worker 1"]
        assert all(0 < p.uss_mb <= p.rss_mb for p in now.processes)
        assert now.total_pss_mb == pytest.approx(sum(p.pss_mb for p in now.processes))
    finally:
        loader._iterator._shutdown_workers()  # noqa: SLF001 - the persistent workers end here, not at exit
    assert worker_pids(range(3)) == [c.pid for c in psutil.Process().children()]


def _rows(*settings):
    return [dict(pipeline="fast", mode="loader", num_workers=n, batch_size=32, device="cpu", images_per_s=speed,
                 images_per_s_min=speed, images_per_s_max=speed, startup_s=0.1, data_wait_fraction=None,
                 ceiling_fraction=None, pss_mb=pss, pss_growth_mb=growth) for n, speed, pss, growth in settings]


def test_the_recommendation_never_exceeds_the_memory_budget_and_says_when_memory_limits_it():
    rows = _rows((0, 100.0, 500.0, 0.0), (2, 150.0, 900.0, 50.0), (4, 200.0, 1300.0, 10.0))
    free = BenchResult(rows, {}, 4, memory_budget_mb=2000.0).recommendation("fast", "loader")
    assert free["num_workers"] == 4 and not free["limited_by_memory"]
    tight = BenchResult(rows, {}, 4, memory_budget_mb=1000.0)
    rec = tight.recommendation("fast", "loader")
    assert rec["num_workers"] == 2 and rec["limited_by_memory"] and rec["memory_would_need_mb"] == 1300.0
    assert "memory limits it" in report(tight) and "1300 MB of the 1000 MB budget" in report(tight)
    growing = BenchResult(rows, {}, 4, memory_budget_mb=920.0).recommendation("fast", "loader")
    assert growing["num_workers"] == 0  # 900 MB now, 950 after one more window's growth: over 920
    none_fits = BenchResult(rows, {}, 4, memory_budget_mb=100.0).recommendation("fast", "loader")
    assert none_fits["num_workers"] == 0 and none_fits["limited_by_memory"]

"""The timeline (who made each batch, when), thread workers against processes, and the loader's other knobs."""
import os
import warnings

import pytest
import torch

from helpers.timing import threads, timeline
from helpers.__main__ import main
from helpers.timing.bench import bench
from helpers.loading.data import Unreadable, index_image_folder
from helpers.errors import OptionError
from helpers.loading.loaders import make_loader
from helpers.timing.tables import read_csv
from helpers.lessons.timeline_plot import bar_id, plot_timeline
from helpers.loading.transforms import build_pipeline
from hostile import BAD, make_download
import measure_knobs as knobs  # scripts/: the knobs' sweep and datasets are that script's own

TINY = dict(image_size=32, batch_size=2, batches=6, start_method="fork")


@pytest.mark.parametrize("workers, options", [
    (0, {}), (1, dict(epochs=2)), (2, dict(persistent=True, epochs=2)), (2, dict(in_order=False)), (4, {})])
def test_each_batch_is_made_by_one_worker_after_it_is_sent_and_received_after_it_is_made(sample_dir, workers, options):
    rows = timeline.record(sample_dir, workers, **TINY, **options)
    epochs = options.get("epochs", 1)
    assert timeline.problems(rows) == []
    assert sorted((r["epoch"], r["batch"]) for r in rows) == [(e, b) for e in range(epochs) for b in range(6)]
    if workers == 0:
        assert {(r["worker"], r["pid"]) for r in rows} == {(timeline.MAIN, os.getpid())}
        return
    pids = {}
    for r in rows:
        pids.setdefault(r["epoch"], {}).setdefault(r["worker"], set()).add(r["pid"])
    for epoch in pids.values():
        assert set(epoch) <= set(range(workers)) and all(len(p) == 1 for p in epoch.values())
        assert os.getpid() not in set().union(*epoch.values()) and len(set().union(*epoch.values())) == len(epoch)
    if options.get("in_order", True):  # DataLoader sends batch k to worker k mod n and hands them over in order
        assert all(r["worker"] == r["batch"] % workers for r in rows)
        for e in range(epochs):
            arrived = sorted((r for r in rows if r["epoch"] == e), key=lambda r: r["received_s"])
            assert [r["batch"] for r in arrived] == list(range(6))
    if epochs == 2:  # persistent workers are the same processes in both epochs; others are started afresh
        same = pids[0] == pids[1]
        assert same == bool(options.get("persistent"))


def test_problems_finds_overlapping_bars_and_batches_received_before_they_were_made():
    row = dict(epoch=0, worker=0, pid=7, dispatched_s=0.0, start_s=1.0, end_s=2.0, received_s=2.5)
    rows = [dict(row, batch=0), dict(row, batch=1, start_s=1.5, end_s=3.0, received_s=2.9)]
    found = timeline.problems(rows)
    assert any("overlap" in p for p in found) and any("batch 1" in p and "out of order" in p for p in found)


def test_the_timeline_command_writes_a_csv_and_a_plot_that_agree(sample_dir, tmp_path, capsys):
    csv, png = tmp_path / "t.csv", tmp_path / "t.png"
    code = main(["timeline", "--data", str(sample_dir), "--workers", "2", "--batches", "4", "--batch-size", "2",
                 "--image-size", "32", "--start-method", "fork", "--csv", str(csv), "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0 and "worker 0 made 0, 2; worker 1 made 1, 3" in out and "inconsistent" not in out
    rows = read_csv(csv)
    assert list(rows[0]) == list(timeline.COLUMNS) and len(rows) == 4 and timeline.problems(rows) == []
    assert png.stat().st_size > 5000
    figure = plot_timeline(rows)
    drawn = {p.get_gid() for p in figure.axes[0].patches if p.get_gid()}
    assert drawn == {bar_id(r) for r in rows}


def test_in_order_false_is_refused_with_the_fix_on_a_torch_without_it(monkeypatch):
    class OldDataLoader:  # torch before 2.6: no in_order
        def __init__(self, dataset, batch_size=1, shuffle=False):
            pass

    monkeypatch.setattr("helpers.loading.loaders.DataLoader", OldDataLoader)
    with pytest.raises(OptionError, match="torch 2.6"):
        make_loader([1, 2], in_order=False, num_workers=0)


def test_thread_workers_make_the_same_batches_as_processes_and_give_back_torch_threads(sample_dir):
    index = index_image_folder(sample_dir)
    dataset = build_pipeline("fast", 32).dataset(index.samples)
    common = dict(batch_size=4, device="cpu", seed=3, num_samples=16)
    by_processes = list(make_loader(dataset, num_workers=2, start_method="fork", **common))
    threads_before = torch.get_num_threads()
    by_threads = list(threads.with_threads(make_loader(dataset, num_workers=0, **common), 2))
    assert torch.get_num_threads() == threads_before
    assert len(by_threads) == len(by_processes) == 4
    for (a, la), (b, lb) in zip(by_processes, by_threads):
        assert torch.equal(a, b) and torch.equal(la, lb)


def test_bench_runs_both_worker_kinds_and_each_names_the_bad_files(tmp_path):
    data = make_download(tmp_path, "petimages", good_per_class=3) / "PetImages"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = bench(data, [1], pipelines=("fast",), image_size=32, batch_size=4, batches=2, repeats=1,
                       progress=False, worker_kinds=("process", "thread"))
    assert [r["worker_kind"] for r in result.rows] == ["process", "thread"]
    assert all(r["images_per_s"] > 0 for r in result.rows)
    named = [str(w.message) for w in caught if str(w.message).startswith("Skipped")]
    for stem in BAD:
        assert sum(f"{stem}.jpg" in m for m in named) == 2, named  # once by processes, once by threads


def test_the_bench_command_takes_worker_kinds_and_writes_the_column(sample_dir, tmp_path, capsys):
    csv = tmp_path / "b.csv"
    code = main(["bench", "--data", str(sample_dir), "--workers", "0", "1", "--pipeline", "fast", "--image-size", "32",
                 "--batch-size", "4", "--batches", "2", "--repeats", "1", "--no-progress", "--start-method", "fork",
                 "--worker-kind", "process", "thread", "--csv", str(csv)])
    out = capsys.readouterr().out
    assert code == 0 and "Best for fast, loader on thread workers: 1 thread (" in out
    assert [(r["worker_kind"], r["num_workers"]) for r in read_csv(csv)] == [("process", 0), ("process", 1),
                                                                           ("thread", 1)]


def test_fetching_a_batch_together_gives_the_same_items_and_skips_only_the_bad_file(tmp_path):
    data = make_download(tmp_path, "petimages", good_per_class=2) / "PetImages"
    index = index_image_folder(data)
    one, together = knobs.fast_dataset(index, 32), knobs.fast_dataset(index, 32, together=True)
    good = [k for k, s in enumerate(index.samples) if s.path.endswith(tuple(f"/{i}.jpg" for i in range(2)))]
    for (a, la), (b, lb) in zip([one[k] for k in good], together.__getitems__(good)):
        assert torch.equal(a, b) and la == lb
    everything = together.__getitems__(list(range(len(index.samples))))
    bad = {os.path.basename(x.path) for x in everything if isinstance(x, Unreadable)}
    assert bad == {f"{stem}.jpg" for stem in BAD}


def test_slow_files_are_placed_where_they_say_and_in_order_false_keeps_every_batch(sample_dir, tmp_path):
    slow = knobs.with_slow_files(index_image_folder(sample_dir), tmp_path / "slow", large=1, large_px=600, every=4)
    assert len(slow.samples) == 25 and knobs.slow_positions(slow, min_pixels=250_000) == [4]
    rows = timeline.record(slow, 2, image_size=32, batch_size=2, batches=6, in_order=False, start_method="fork")
    assert timeline.problems(rows) == [] and sorted(r["batch"] for r in rows) == list(range(6))


def test_without_torchdata_thread_workers_are_refused_with_the_install_command(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torchdata", None)  # what an absent package looks like to import
    with pytest.raises(OptionError, match=r"pip install torchdata==\d"):
        threads.nodes_module()


def test_a_thread_timeline_is_made_in_this_process_by_numbered_threads(sample_dir):
    rows = timeline.record(sample_dir, 2, **{**TINY, "start_method": None}, worker_kind="thread")
    assert timeline.problems(rows) == [] and sorted(r["batch"] for r in rows) == list(range(6))
    assert {r["pid"] for r in rows} == {os.getpid()} and {r["worker"] for r in rows} == {"thread 0", "thread 1"}
    assert set(timeline.who_made_what(rows)["epoch 0"]) == {"thread 0", "thread 1"}


def test_a_loader_built_in_view_is_timed_as_record_times_its_own(sample_dir):
    pipe = build_pipeline("fast", 32, train=False)
    images = pipe.dataset(index_image_folder(sample_dir).samples)
    sampler = timeline.TaggedBatches(len(images), 2, 4)
    loader = torch.utils.data.DataLoader(timeline.TimedFetch(images, pipe.collate), sampler=sampler, batch_size=None,
                                         num_workers=2, collate_fn=timeline.as_made, multiprocessing_context="fork")
    rows = timeline.run(loader, sampler)
    assert timeline.problems(rows) == []
    assert timeline.who_made_what(rows) == {"epoch 0": {"worker 0": [0, 2], "worker 1": [1, 3]}}

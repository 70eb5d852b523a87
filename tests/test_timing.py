import csv
import math
import time

import pytest
import torch

from helpers.data import index_image_folder
from helpers.plots import plot_bench
from helpers.timing import CSV_COLUMNS, BenchResult, bench, format_table, report, time_stream, write_csv


class _Slow:
    """A fake loader whose speed is known: 4 images every 20 ms, after a slow first batch."""

    def __iter__(self):
        time.sleep(0.1)
        while True:
            yield torch.zeros(4, 1), torch.zeros(4)
            time.sleep(0.02)


def test_time_stream_separates_startup_from_steady_throughput():
    t = time_stream(_Slow(), batches=5, warmup=1)
    assert t.images == 20 and t.batches == 5 and t.data_wait_fraction is None
    assert t.startup_s >= 0.1
    assert 100 < t.images_per_s <= 200  # 4 images per >= 20 ms


def test_time_stream_measures_the_share_of_time_spent_waiting_for_data():
    t = time_stream(_Slow(), batches=5, warmup=1, step=lambda batch: time.sleep(0.02))
    assert 0.3 < t.data_wait_fraction < 0.7  # 20 ms waiting, 20 ms computing per step
    assert t.images_per_s < 110


def test_time_stream_refuses_a_loader_too_short_to_time():
    with pytest.raises(ValueError, match="ran out"):
        time_stream([(torch.zeros(1), torch.zeros(1))], batches=3, warmup=1)


def test_format_table_aligns_columns():
    table = format_table([{"n": 1, "v": 2.5}, {"n": 10, "v": None}], [("n", "workers", "d"), ("v", "img/s", ".1f")])
    lines = table.splitlines()
    assert lines[0].split() == ["workers", "img/s"] and set(lines[1]) <= {"-", " "}
    assert lines[3].split() == ["10", "-"] and len({len(l) for l in lines}) == 1


def _check_rows(rows, workers, pipelines, modes):
    assert [(r["pipeline"], r["mode"], r["num_workers"]) for r in rows] == \
        [(p, m, n) for p in pipelines for m in modes for n in workers]
    for r in rows:
        assert 0 < r["images_per_s_min"] <= r["images_per_s"] <= r["images_per_s_max"] < 1e5
        assert r["startup_s"] > 0 and 0 < r["ceiling_fraction"] < 10
        assert (r["data_wait_fraction"] is None) == (r["mode"] == "loader")


def test_bench_measures_both_pipelines_in_both_modes(sample_dir):
    index = index_image_folder(sample_dir)
    result = bench(index, [0, 1], pipelines=["blog", "fast"], models=["none", "resnet18"], image_size=64,
                   batch_size=4, batches=3, repeats=2, device="cpu", progress=False)
    _check_rows(result.rows, [0, 1], ["blog", "fast"], ["loader", "end-to-end"])
    assert {r["data_wait_fraction"] is not None and 0 <= r["data_wait_fraction"] <= 1
            for r in result.rows if r["mode"] == "end-to-end"} == {True}
    assert set(result.model_images_per_s) == {"blog", "fast"}
    # two repeats of real timing never agree to the last digit
    assert any(r["images_per_s_min"] != r["images_per_s_max"] for r in result.rows)
    text = report(result)
    assert "CPU ceiling, blog" in text and text.count("Recommended for") == 4


def test_recommendation_is_the_smallest_worker_count_within_five_percent():
    rows = [dict(pipeline="fast", mode="loader", num_workers=n, images_per_s=v, device="cuda:0")
            for n, v in [(0, 100.0), (2, 196.0), (4, 200.0), (8, 150.0)]]
    rec = BenchResult(rows, {}, 4).recommendation("fast", "loader")
    assert rec["num_workers"] == 2 and rec["persistent_workers"] and rec["pin_memory"]
    assert BenchResult(rows, {}, 4).recommendation("blog", "loader") is None


def test_csv_and_plot_are_well_formed(sample_dir, tmp_path):
    result = bench(sample_dir, [0, 2], pipelines=["fast"], image_size=48, batch_size=4, batches=2, repeats=2,
                   device="cpu", progress=False)
    write_csv(result.rows, tmp_path / "b.csv")
    with open(tmp_path / "b.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and [r["num_workers"] for r in rows] == ["0", "2"]
    assert all(math.isfinite(float(r["images_per_s"])) and r["data_wait_fraction"] == "" for r in rows)
    fig = plot_bench(result.rows, result.one_core_images_per_s, result.cores, result.machine)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "num_workers" and "Images per second" in ax.get_ylabel() and ax.get_title()

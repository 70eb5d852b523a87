import csv
import math

import pytest
import torch

from helpers.loading.data import index_image_folder
from helpers.lessons.plots import plot_bench, plot_time_breakdown, plot_transfer_costs
from helpers.timing.bench import BenchResult, bench, report
from helpers.timing.breakdown import explain, transfer_costs, where_time_goes
from helpers.timing.measure import time_stream
from helpers.timing.bench import CSV_COLUMNS, write_csv
from helpers.timing.tables import format_table
from helpers.loading.transforms import pipeline_steps

NUM_THREADS = torch.get_num_threads()


class FakeClock:
    """A clock that moves only when told to, so a timing test counts events instead of racing a busy machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Slow:
    """A fake loader whose speed is known: 4 images every 20 ms of the fake clock, after a first batch of 100 ms."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __iter__(self):
        self.clock.now += 0.1
        while True:
            yield torch.zeros(4, 1), torch.zeros(4)
            self.clock.now += 0.02


def test_time_stream_separates_startup_from_steady_throughput():
    clock = FakeClock()
    t = time_stream(_Slow(clock), batches=5, warmup=1, clock=clock)
    assert t.images == 20 and t.batches == 5 and t.data_wait_fraction is None
    assert t.startup_s == pytest.approx(0.1)
    assert t.images_per_s == pytest.approx(200)  # 4 images per 20 ms


def test_time_stream_measures_the_share_of_time_spent_waiting_for_data():
    clock = FakeClock()

    def step(batch):
        clock.now += 0.06  # the model takes three times as long as the loader

    t = time_stream(_Slow(clock), batches=5, warmup=1, step=step, clock=clock)
    assert t.data_wait_fraction == pytest.approx(0.25)  # 20 ms waiting out of 80 ms per step
    assert t.images_per_s == pytest.approx(50)


def test_time_stream_steps_each_warm_up_batch_as_it_comes_so_no_queue_is_left_full_for_the_window():
    events = []

    def batches():
        while True:
            events.append("draw")
            yield torch.zeros(4, 1), torch.zeros(4)

    time_stream(batches(), batches=2, warmup=3, step=lambda batch: events.append("step"))
    assert events == ["draw", "step"] * 6  # the first batch, 3 warm-up and 2 timed, each stepped before the next


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
    assert set(result.model_images_per_s) == {"blog", "fast"}
    # two repeats of real timing never agree to the last digit
    assert any(r["images_per_s_min"] != r["images_per_s_max"] for r in result.rows)
    text = report(result)
    assert "CPU ceiling, blog" in text and text.count("Recommended for") == 4


def test_recommendation_is_the_fewest_workers_the_verdict_ties_with_the_best():
    rows = [dict(pipeline="fast", mode="loader", num_workers=n, images_per_s=v, device="cuda:0")
            for n, v in [(0, 100.0), (2, 196.0), (4, 200.0), (8, 150.0)]]
    result = BenchResult(rows, {}, 4)
    rec = result.recommendation("fast", "loader")
    assert rec["num_workers"] == 4 and "too few repeats" in rec["why"]  # no repeats: the best median
    result.repeats = {("dataloader", "fast", "loader", "process", n): v for n, v in
                      [(0, [90, 100, 104, 98, 101]), (2, [150, 196, 206, 190, 201]), (4, [160, 200, 198, 205, 199]),
                       (8, [120, 150, 149, 152, 150])]}
    rec = result.recommendation("fast", "loader")
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
    assert all(float(r["pss_mb"]) > 0 for r in rows)
    assert all(math.isfinite(float(r["pss_growth_mb"])) for r in rows)
    fig = plot_bench(result.rows, result.one_core_images_per_s, result.cores, result.machine)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "num_workers" and "Images per second" in ax.get_ylabel() and ax.get_title()
    memory = plot_bench(result.rows, result.one_core_images_per_s, result.cores, result.machine, memory=True).axes
    assert len(memory) == 2 and memory[1].get_ylabel() == "PSS (MB)" and memory[1].get_title()



def test_the_fed_step_figure_shades_from_the_pick_and_draws_the_ceiling_and_the_wait():
    from helpers.lessons.plots import plot_fed_step
    from helpers.timing.measure import StreamTiming
    from helpers.timing.sweep import Swept

    waits = {0: 0.4, 1: 0.05, 2: 0.06}
    rates = {0: [100.0, 110.0, 105.0], 1: [190.0, 200.0, 195.0], 2: [195.0, 200.0, 190.0]}
    rows = [Swept(n, [StreamTiming(0.1, r, waits[n], 4, 1) for r in rates[n]], rates[n]) for n in rates]
    speed, wait = plot_fed_step(rows, [210.0, 200.0, 220.0], 1, "a title").axes
    shaded = [p for p in speed.patches if p.get_label().startswith("from num_workers=1")]
    assert len(shaded) == 1 and shaded[0].get_bbox().x0 == pytest.approx(0.6), "shaded from the pick on"
    assert any(list(line.get_ydata()) == [210.0, 210.0] for line in speed.lines), "the ceiling at its median"
    assert [y for line in wait.lines for y in line.get_ydata()] == pytest.approx([40.0, 5.0, 6.0]), "the wait in %"
    assert all(ax.get_title() and ax.get_xlabel() == "num_workers" and ax.get_ylabel() for ax in (speed, wait))

def test_transfer_costs_time_each_dtype_and_worker_count_with_the_batch_size_in_megabytes():
    rows = transfer_costs(image_size=32, batch_size=4, workers=(0, 1), batches=2, repeats=2)
    assert [(r["dtype"], r["num_workers"]) for r in rows] == [("float32", 0), ("float32", 1), ("uint8", 0), ("uint8", 1)]
    assert rows[0]["mb_per_batch"] == pytest.approx(4 * 3 * 32 * 32 * 4 / 1e6)
    assert rows[2]["mb_per_batch"] == pytest.approx(rows[0]["mb_per_batch"] / 4)
    for r in rows:
        assert 0 < r["ms_min"] <= r["ms_per_batch"] <= r["ms_max"]
        assert r["mb_per_s"] == pytest.approx(r["mb_per_batch"] / r["ms_per_batch"] * 1000)


@pytest.mark.parametrize("pipeline", ["blog", "fast"])
def test_where_time_goes_names_every_step_then_collate_and_the_trip(sample_dir, pipeline):
    paths = [s.path for s in index_image_folder(sample_dir).samples]
    rows = where_time_goes(paths, pipeline, image_size=32, batch_size=4, repeats=1)
    steps = [name for name, _ in pipeline_steps(pipeline, 32, train=True)]
    assert [r["part"] for r in rows] == steps + ["collate (stack the batch)", "the trip to the main process"]
    assert all(r["ms_per_image"] > 0 for r in rows[:-1])
    assert torch.get_num_threads() == NUM_THREADS  # one_thread() gave the threads back


def test_explain_reports_each_pipeline_and_the_transfer_table(sample_dir):
    result = explain(sample_dir, ("blog", "fast"), image_size=32, batch_size=4, device="cpu", repeats=1,
                     transfer_workers=(0, 1))
    assert list(result.costs) == ["blog (batch 4)", "fast (batch 4)"]
    text = result.report()
    assert text.count("images/s per core") == 2 and "MB/batch" in text and "uint8" in text
    fig = plot_time_breakdown(result.costs, "t")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:2] == ["read + decode", "Resize"]
    assert plot_transfer_costs(result.transfer, "t").axes[0].get_xlabel().startswith("num_workers")


def test_a_sweep_past_the_cores_keeps_pytorchs_warning_out_for_those_settings_and_says_so_once(sample_dir):
    import warnings

    from helpers.loading.loaders import make_loader
    from helpers.machine import usable_cores
    from helpers.timing.measure import measure_loader

    over = usable_cores() + 1
    dataset = [(torch.zeros(1), 0)] * 64
    with warnings.catch_warnings(record=True) as plain:
        warnings.simplefilter("always")
        iter(make_loader(dataset, batch_size=4, num_workers=over, device="cpu"))
    assert any("This DataLoader will create" in str(w.message) for w in plain)  # PyTorch warns without the sweep
    with warnings.catch_warnings(record=True) as swept:
        warnings.simplefilter("always")
        measure_loader(dataset, over, batch_size=4, batches=1, device="cpu")
    assert not any("This DataLoader will create" in str(w.message) for w in swept)
    result = bench(sample_dir, [0, over], pipelines=("fast",), image_size=32, batch_size=4, batches=1, repeats=1,
                   progress=False)
    assert [n for n in result.notes if "on purpose" in n] == [
        f"num_workers {over}: more workers than the {usable_cores()} usable cores, on purpose, to show what happens "
        "past the core count; PyTorch's warning about that is left out for these settings only."]


def test_every_reading_above_the_models_prediction_is_named_in_the_report():
    rows = [dict(pipeline="fast", mode="loader", num_workers=4, batch_size=32, images_per_s=1240.0,
                 images_per_s_min=1200.0, images_per_s_max=1300.0, startup_s=0.2, data_wait_fraction=None,
                 ceiling_fraction=1.24, device="cpu", pss_mb=None, pss_growth_mb=None,
                 predicted_images_per_s=1000.0, predicted_limit="the cores"),
            dict(pipeline="fast", mode="end-to-end", num_workers=2, batch_size=32, images_per_s=135.0,
                 images_per_s_min=130.0, images_per_s_max=140.0, startup_s=0.2, data_wait_fraction=0.1,
                 ceiling_fraction=0.5, device="cpu", pss_mb=None, pss_growth_mb=None,
                 predicted_images_per_s=116.0, predicted_limit="the step")]
    result = BenchResult(rows, {"fast": 500.0}, 2, model_images_per_s={"fast": 116.0})
    text = report(result)
    assert "fast loader at 4 workers reads 1240 images/s, above the model's 1000" in text
    assert "fast end-to-end at 2 workers reads 135 images/s, above the model's 116" in text
    rows[0]["images_per_s"], rows[1]["images_per_s"] = 900.0, 100.0
    assert "above the model's" not in report(result)

"""Far-away files: the storage model's waits (counted with a fake sleep, never timed), the page cache evicted for real,
Little's law, tar shards split over ranks x workers (the repeated samples of fewer shards than workers, and the fix),
and the bench's recommendation past the cores when the loader waits on storage."""
import pickle
import statistics
from pathlib import Path

import pytest
from torch.utils.data import DataLoader, Dataset

from front_door import run_command
from helpers.loading.sample_table import Sample
from helpers.loading.shards import TarShards, assigned, write_shards
from helpers.loading.storage import FarAway, Latency, evict, read_all, resident_fraction
from helpers.machine import past_the_cores
from helpers.options import max_workers
from helpers.timing.bench import BenchResult, report
from measure_storage import TOLERANCE, memory_per_worker, pass_rate, rule_lines, rule_rows
from helpers.which_workers import Costs


class Numbers(Dataset):
    def __init__(self, n: int) -> None:
        self.n, self.reads = n, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        self.reads.append(i)
        return i


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_every_read_waits_the_fixed_latency_once_before_the_item():
    sleep, data = FakeSleep(), Numbers(5)
    far = FarAway(data, Latency(20), sleep=sleep)
    assert [far[i] for i in range(5)] == [0, 1, 2, 3, 4] and len(far) == 5
    assert sleep.waits == [0.02] * 5 and data.reads == [0, 1, 2, 3, 4]


def test_jitter_is_seeded_per_item_and_stays_within_its_range():
    model = Latency(10, jitter_ms=8, seed=3)
    waits = [model.seconds(i) for i in range(200)]
    assert waits == [Latency(10, jitter_ms=8, seed=3).seconds(i) for i in range(200)]  # every worker and run alike
    assert all(0.010 <= w <= 0.018 for w in waits) and len(set(waits)) > 100
    assert waits != [Latency(10, jitter_ms=8, seed=4).seconds(i) for i in range(200)]
    assert Latency(10, jitter_ms=8).mean_seconds() == pytest.approx(0.014)


def test_bandwidth_adds_the_file_size_over_it(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(bytes(2_000_000))
    sleep = FakeSleep()

    class Files(Numbers):
        samples = [Sample(str(path), 0)]

    FarAway(Files(1), Latency(5, mb_per_s=100), sleep=sleep)[0]
    assert sleep.waits == [pytest.approx(0.005 + 0.02)]


def test_the_wrapper_pickles_for_spawned_workers_and_passes_attributes_through():
    data = Numbers(3)
    data.samples = ["x"]
    far = pickle.loads(pickle.dumps(FarAway(data, Latency(1))))
    assert far.samples == ["x"] and len(far) == 3 and far.latency == Latency(1)


@pytest.mark.parametrize("bad", [dict(ms=-1), dict(jitter_ms=-1), dict(mb_per_s=0)])
def test_a_latency_that_cannot_be_is_refused(bad):
    with pytest.raises(ValueError):
        Latency(**bad)


def on_tmpfs(path: Path) -> bool:
    """Whether PATH lies on a tmpfs, where the page cache is the storage and cannot be evicted."""
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    best = max((m for m in mounts if str(path).startswith(m[1])), key=lambda m: len(m[1]))
    return best[2] == "tmpfs"


def test_evict_empties_the_page_cache_of_those_files_for_real(tmp_path):
    paths = [tmp_path / f"{i}.bin" for i in range(3)]
    for p in paths:
        p.write_bytes(bytes(range(256)) * 64)
    assert read_all(paths) == 3 * 256 * 64
    if resident_fraction(paths) is None or on_tmpfs(tmp_path):
        pytest.skip("no mincore here, or a tmpfs, whose pages are its storage")
    assert resident_fraction(paths) == 1.0
    assert evict(paths) == 3
    assert resident_fraction(paths) == 0.0  # written back first, so nothing dirty stays cached
    read_all(paths[:1])
    assert resident_fraction(paths[:1]) == 1.0 and resident_fraction(paths[1:]) == 0.0


def test_evict_names_a_missing_file():
    with pytest.raises(FileNotFoundError):
        evict(["/nonexistent/file.jpg"])


@pytest.mark.parametrize("shards, consumers", [(8, 2), (8, 3), (2, 4), (3, 8), (1, 5), (4, 4), (5, 7)])
def test_every_sample_goes_to_exactly_one_consumer(shards, consumers):
    per_shard = 6
    seen = [(s, k) for c in range(consumers) for s, first, step in assigned(shards, c, consumers)
            for k in range(first, per_shard, step)]
    assert sorted(seen) == [(s, k) for s in range(shards) for k in range(per_shard)]


def test_the_wrapping_mistake_repeats_shards_when_there_are_fewer_shards_than_consumers():
    seen = [s for c in range(4) for s, _, _ in assigned(2, c, 4, wrap=True)]
    assert sorted(seen) == [0, 0, 1, 1]
    assert [s for c in range(2) for s, _, _ in assigned(4, c, 2, wrap=True)] == [0, 2, 1, 3]  # enough shards: no harm


@pytest.fixture
def shards(tmp_path) -> list[Path]:
    samples = []
    for i in range(12):
        path = tmp_path / "files" / f"{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"image {i}".encode())
        samples.append(Sample(str(path), i % 2))
    return write_shards(samples, tmp_path / "shards", 2)


def read(dataset, num_workers: int) -> list[str]:
    with past_the_cores(num_workers):
        loader = DataLoader(dataset, batch_size=None, num_workers=num_workers, multiprocessing_context="fork"
                            if num_workers else None, timeout=60 if num_workers else 0)
        return [image for image, _ in loader]


def test_write_shards_packs_every_sample_once_in_order(shards):
    assert [p.name for p in shards] == ["shard-00000.tar", "shard-00001.tar"]
    assert read(TarShards(shards, bytes.decode), 0) == [f"image {i}" for i in range(12)]


def test_two_shards_four_workers_repeat_samples_with_the_mistake_and_not_with_the_fix(shards):
    wrapped = read(TarShards(shards, bytes.decode, wrap=True), 4)
    assert len(wrapped) == 24 and all(wrapped.count(f"image {i}") == 2 for i in range(12))  # the failure
    fixed = read(TarShards(shards, bytes.decode), 4)
    assert sorted(fixed) == sorted(f"image {i}" for i in range(12))  # each sample once


def test_ranks_times_workers_split_the_shards_under_torchrun(shards, monkeypatch):
    seen = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        seen += read(TarShards(shards, bytes.decode), 2)  # 4 consumers, 2 shards
    assert sorted(seen) == sorted(f"image {i}" for i in range(12))


def test_shards_wait_once_per_shard_not_once_per_file(shards):
    sleep = FakeSleep()
    assert len(read(TarShards(shards, bytes.decode, latency=Latency(20), sleep=sleep), 0)) == 12
    assert sleep.waits == [0.02, 0.02]


def bench_result(storage, best: int = 6, cores: int = 2, one: float = 77.0,
                 workers=(0, 1, 2, 4, 6, 8, 12, 16)) -> BenchResult:
    """A fake measurement: images/s rising to a plateau at BEST workers, with the loader model's inputs."""
    rows = [dict(loader="dataloader", pipeline="blog", mode="loader", worker_kind="process", num_workers=n,
                 batch_size=4, image_size=512, device="cpu", images_per_s=min(n, best) * 25.0 + 5,
                 images_per_s_min=0, images_per_s_max=0, startup_s=0.1, data_wait_fraction=None,
                 ceiling_fraction=None, pss_mb=400 + 30 * n, pss_growth_mb=0.0)
            for n in workers]
    costs = {"blog": Costs(1 / one, storage.mean_seconds() if storage else 0.0, 0.0, 0.0, cores)}
    return BenchResult(rows, {"blog": one}, cores, machine="fake", storage=storage, costs=costs)


def why_line(result: BenchResult) -> str:
    return next(line for line in report(result).splitlines() if line.startswith("  model:"))


def test_the_bench_recommends_past_the_cores_when_files_wait_and_says_why():
    text = report(bench_result(Latency(20)))
    assert "num_workers=6" in text
    line = why_line(bench_result(Latency(20)))
    assert "past the 2 cores: each file waits on storage" in line
    assert "Little's law asks for 5.1 workers" in line  # 2 x (20 + 13.0) / 13.0
    assert "limited by the cores" in line  # 6 workers hold enough items to keep 2 cores busy


def test_the_bench_says_which_limit_the_model_finds_at_the_pick():
    line = why_line(bench_result(Latency(20), best=2))
    assert "num_workers=2" in report(bench_result(Latency(20), best=2))
    assert "limited by the waiting" in line and "past the" not in line


def test_a_pick_past_the_cores_without_a_wait_is_not_put_down_to_storage():
    line = why_line(bench_result(Latency(0), best=4))
    assert "read the verdicts" in line and "waits on storage" not in line and "asks for 2.0 workers" in line


def test_the_bench_says_nothing_of_storage_for_local_files():
    assert "storage" not in why_line(bench_result(None))


def test_the_bench_asks_for_more_workers_when_its_pick_is_the_most_it_timed():
    assert "the most workers timed" in report(bench_result(Latency(50), best=16))


def test_the_rule_compares_the_pick_with_the_prediction():
    rows = rule_rows([bench_result(Latency(0), best=2), bench_result(Latency(20), best=6)])
    assert [r["picked_workers"] for r in rows] == [2, 6]
    assert rows[0]["predicted_workers"] == pytest.approx(2) and rows[1]["predicted_workers"] == pytest.approx(2 * (0.020 + 1 / 77) * 77)
    assert all(r["within_tolerance"] == (abs(r["picked_over_predicted"] - 1) <= TOLERANCE) for r in rows)
    assert rows[1]["within_tolerance"]


def with_repeats(storage, repeats: dict[int, list[float]]) -> BenchResult:
    """A fake bench that timed only the worker counts in REPEATS (images/s, one per round in turns)."""
    result = bench_result(storage, workers=tuple(repeats))
    for row in result.rows:
        row["images_per_s"] = statistics.median(repeats[row["num_workers"]])
        result.repeats[("dataloader", "blog", "loader", "process", row["num_workers"])] = \
            [float(v) for v in repeats[row["num_workers"]]]
    return result


BEST = [100, 140, 110, 130, 120]  # 8 workers, round by round


def test_the_pick_is_the_fewest_workers_the_verdict_cannot_tell_from_the_best():
    result = with_repeats(Latency(20), {2: [50, 55, 52, 58, 60], 4: [90, 120, 118, 112, 121],
                                        6: [110, 130, 115, 125, 120], 8: BEST})
    assert result.recommendation("blog", "loader")["num_workers"] == 4  # 4's ratios to 8 scatter around 1
    tight = with_repeats(Latency(20), {2: [50, 55, 52, 58, 60], 4: [95, 96, 97, 98, 99],
                                       6: [110, 130, 115, 125, 120], 8: BEST})
    assert tight.recommendation("blog", "loader")["num_workers"] == 6  # 4 below 8 in every round
    row, = rule_rows([result])
    assert row["picked_workers"] == 4 and row["picked_over_predicted"] == pytest.approx(4 / row["predicted_workers"])
    assert row["within_tolerance"]  # 4 against 5.1
    wide, = rule_rows([with_repeats(Latency(20), {2: [50, 130, 60, 140, 80], 8: BEST})])
    assert wide["picked_workers"] == 2 and wide["within_tolerance"] is False  # 2 against 5.1
    assert "tied with the best by the verdict" in rule_lines([row])[0]


def test_with_too_few_repeats_the_pick_is_the_best_median_and_says_so():
    result = with_repeats(Latency(20), {2: [50.0, 60.0], 4: [100.0, 101.0], 8: [99.0, 100.0]})
    rec = result.recommendation("blog", "loader")
    assert rec["num_workers"] == 4 and "too few repeats" in rec["why"]


def test_memory_per_worker_is_the_slope_over_the_worker_settings():
    assert memory_per_worker(bench_result(Latency(20))) == pytest.approx(30)


def test_pass_rate_counts_images_over_a_fake_clock():
    ticks = iter([10.0, 12.0])
    assert pass_rate([[None, [0, 1, 2]], [None, [3]]], clock=lambda: next(ticks)) == (2.0, 4)


def test_more_workers_than_four_per_core_only_with_a_storage_wait(capsys):
    too_many = str(max_workers() + 1)
    code, out, err = run_command(["bench", "--workers", too_many], capsys)
    assert code == 2 and "--read-latency-ms" in err and len(err.strip().splitlines()) == 1 and out == ""
    code, out, err = run_command(["bench", "--workers", "100000", "--read-latency-ms", "20"], capsys)
    assert code == 2 and "100000" in err and out == ""


def fake_run(path: Path, tied_at_20: int) -> Path:
    """A storage run's text as measure_storage writes it: 0 ms flat from 2 workers, 20 ms rising to TIED_AT_20."""
    lines = ["cat /proc/loadavg before: 0.50 0.40 0.30 1/90 1"]
    for ms, best in ((0, 2), (20, tied_at_20)):
        for n in (0, 1, 2, 4, 6, 8):
            base = min(n, best) * 25.0 + 5
            lines.append(f"Repeats, blog loader {ms} ms per file {n} workers: "
                         + " ".join(f"{base + k:.1f}" for k in range(5)) + " images/s")
        lines.append("CPU ceiling, blog: 2 cores x 100.0 images/s on one core, one thread = 200.0 images/s")
    path.write_text("\n".join(lines + ["cat /proc/loadavg after: 1.50 0.60 0.40 1/90 1"]) + "\n")
    return path


def test_storage_rule_says_whether_the_issues_test_held(tmp_path):
    import subprocess
    import sys

    def run(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "storage_rule.py"),
                               name], capture_output=True, text=True, timeout=60, cwd=tmp_path)

    fake_run(tmp_path / "near.txt", 6)  # tied at 6 workers against 2 x (20 + 10) / 10 = 6.0: within 25 %
    fake_run(tmp_path / "far.txt", 8)   # tied at 8 against 6.0: outside
    for name, said in (("near.txt", "held"), ("far.txt", "did not hold")):
        out = run(name).stdout
        assert "Little's law 6.0 workers with one thread's 10.0 ms" in out
        assert out.strip().endswith(f": {said}")
    missing = run("nope.txt")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope.txt" in missing.stderr


def test_the_storage_figure_draws_one_line_per_wait_with_the_runs_pooled():
    from helpers.lessons.storage_plot import plot_far_away

    runs = {"a": {0: [20, 100, 100], 20: [30, 60, 120]}, "b": {0: [22, 110, 90], 20: [34, 64, 140]}}
    rows = [dict(latency_ms=ms, num_workers=n, images_per_s=rate, images_per_s_min=rate - 5, images_per_s_max=rate + 5)
            for run in runs.values() for ms, rates in run.items() for n, rate in zip((0, 2, 8), rates)]
    rules = [dict(latency_ms=ms, predicted_workers=w, cores=2) for ms, w in ((0, 2.0), (20, 7.0), (20, 9.0))]
    ax = plot_far_away(rows, rules, "lesson").axes[0]
    lines = [c.lines[0] for c in ax.containers]
    assert [list(line.get_ydata()) for line in lines] == [[21, 105, 95], [32, 62, 130]], "median of the runs' medians"
    marks = [line for line in ax.lines if line.get_marker() == "D"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [8.0], "Little's law marked once, at 20 ms, as a count"
    assert ax.get_ylim()[0] == 0 and ax.get_title() == "lesson" and ax.get_xlabel() and ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "0 ms per file (2 runs)" in labels and "2 cores" in labels

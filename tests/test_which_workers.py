"""The loader model and the one pick (helpers/which_workers.py) on fixed numbers, and every caller agreeing on it."""
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.loading.storage import Latency
from helpers.timing.bench import BenchResult
from measure_storage import rule_rows  # scripts/: the storage rule is that script's own
from helpers.training.autotune import Limits, Tried, decide
from helpers.which_workers import CORES, MAIN, STEP, WAITING, Costs, pick, predict, workers_for

ROOT = Path(__file__).resolve().parents[1]


def test_each_limit_binds_where_its_costs_say():
    cpu_bound = Costs(cpu_s=0.010, cores=2)
    assert (predict(cpu_bound, 0).limit, predict(cpu_bound, 0).images_per_s) == (MAIN, pytest.approx(100))
    assert (predict(cpu_bound, 1).limit, predict(cpu_bound, 1).images_per_s) == (WAITING, pytest.approx(100))
    assert (predict(cpu_bound, 4).limit, predict(cpu_bound, 4).images_per_s) == (CORES, pytest.approx(200))
    far = Costs(cpu_s=0.010, wait_s=0.030, cores=2)
    assert predict(far, 4).limit == WAITING and predict(far, 4).images_per_s == pytest.approx(100)
    assert predict(far, 8).limit == CORES
    slow_step = Costs(cpu_s=0.002, trip_s=0.001, step_s=0.020, cores=2, step_on_cores=False)
    assert predict(slow_step, 2).limit == STEP and predict(slow_step, 2).images_per_s == pytest.approx(1 / 0.021)


def test_the_main_process_share_lowers_the_cores_limit():
    alone, shared = Costs(cpu_s=0.010, cores=2), Costs(cpu_s=0.010, trip_s=0.002, step_s=0.008, cores=2)
    assert predict(shared, 8).images_per_s < predict(alone, 8).images_per_s


def test_workers_for_is_littles_law():
    assert workers_for(Costs(cpu_s=0.013, cores=2)) == pytest.approx(2)
    assert workers_for(Costs(cpu_s=0.013, wait_s=0.020, cores=2)) == pytest.approx(2 * 33 / 13)
    assert workers_for(Costs(cpu_s=0.010, wait_s=0.050, cores=4)) == pytest.approx(24)
    with pytest.raises(ValueError):
        Costs(cpu_s=0.0)


def test_the_pick_is_the_fewest_workers_tied_with_the_best():
    timed = {1: [50, 52, 49, 51, 50], 2: [95, 99, 101, 98, 100], 4: [100, 97, 103, 99, 102], 8: [90, 92, 91, 93, 92]}
    assert pick(timed)[0] == 2
    assert pick({1: [50, 52], 4: [100, 101]}) == (4, "the best median (too few repeats for a verdict)")


TIMED = {1: [40.0, 52.0, 49.0, 51.0, 50.0], 2: [70.0, 99.0, 101.0, 98.0, 100.0], 4: [80.0, 117.0, 121.0, 118.0, 120.0],
         8: [60.0, 120.0, 118.0, 121.0, 119.0]}  # 4 workers tied with 8's best median, 2 measurably slower


def test_bench_profile_storage_and_auto_pick_alike_from_the_same_repeats(tmp_path):
    expected = pick(TIMED)[0]
    assert expected == 4
    rows = [dict(loader="dataloader", pipeline="blog", mode="loader", worker_kind="process", num_workers=n,
                 images_per_s=sorted(v)[2], device="cpu", pss_mb=None) for n, v in TIMED.items()]
    bench = BenchResult(rows, {"blog": 77.0}, 2, storage=Latency(20),
                        repeats={("dataloader", "blog", "loader", "process", n): v for n, v in TIMED.items()})
    assert bench.recommendation("blog", "loader")["num_workers"] == expected  # bench and profile: the same method
    assert rule_rows([bench])[0]["picked_workers"] == expected  # storage
    tried = [Tried(n, 2, 0.0, 1.0, 100.0, tuple(v)) for n, v in TIMED.items()]
    settled = decide(tried, Limits(cores=2, memory_mb=1000, cap=8))
    assert settled.settled and settled.num_workers == expected  # auto, every neighbour tried
    text = [f"Repeats, blog loader {ms} ms per file {n} workers: {' '.join(map(str, v))} images/s"
            for ms in (0, 20) for n, v in TIMED.items()]
    (tmp_path / "run.txt").write_text("\n".join(text + ["CPU ceiling, blog: 2 cores x 77.0 images/s on one core"]))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "storage_rule.py"), "run.txt"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60).stdout
    assert out.count(f"the pick: {expected} workers") == 2  # the storage runs read back

"""The specialised loaders beside the DataLoader: the same files and batches from every installed peer, one table,
and a peer that is not installed skipped with one line (simulated by hiding its module)."""
import sys
import types

import pytest
import torch

from helpers.timing import bench as bench_module
from helpers.timing.bench import against_peers, bench, report
from helpers.loading.data import index_image_folder
from helpers.timing.peers import LOADERS, missing, peer_stream, seeded_order, versions
from helpers.loading.transforms import build_pipeline

PEERS = [name for name in LOADERS if name != "dataloader"]
SIZE = 32


@pytest.fixture
def quick_ceiling(monkeypatch):
    """The CPU ceiling's two seconds of timing are not what these tests check."""
    monkeypatch.setattr(bench_module, "one_core_throughput", lambda dataset, size: 100.0)


@pytest.mark.parametrize("name", PEERS)
def test_an_installed_peer_gives_the_fast_pipelines_batches_for_the_same_files(name, sample_dir):
    if missing(name):
        pytest.skip(missing(name))
    samples = index_image_folder(sample_dir).samples
    order = seeded_order(len(samples), 8, seed=0)
    batches = list(peer_stream(name, samples, order, batch_size=4, threads=2, size=SIZE))
    assert [tuple(images.shape) for images, _ in batches] == [(4, 3, SIZE, SIZE)] * 2
    assert all(images.dtype == torch.uint8 and images.is_contiguous() for images, _ in batches)
    assert torch.cat([labels for _, labels in batches]).tolist() == [samples[i].label for i in order]
    ours = build_pipeline("fast", SIZE).dataset(samples)
    expected = torch.stack([ours[i][0] for i in order]).float()
    got = torch.cat([images for images, _ in batches]).float()
    # Same files in the same order: the resize filters differ, so pixels differ a little, never by a whole image.
    assert (got - expected).abs().mean() < 12
    assert (got - expected.roll(1, 0)).abs().mean() > (got - expected).abs().mean()


def hide(monkeypatch, name):
    """Make peer NAME's module fail to import, as on a machine without it."""
    module = {"nodes": "torchdata.nodes", "spdl": "spdl.io", "dali": "nvidia.dali"}[name]
    monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("name", PEERS)
def test_a_missing_peer_is_one_line_saying_how_to_install_it(name, monkeypatch):
    hide(monkeypatch, name)
    line = missing(name)
    assert line.startswith(f"{name}: skipped") and "install_peers.sh" in line and "\n" not in line
    assert versions([name]) == ""


def test_spdl_without_ffmpegs_libraries_says_so(monkeypatch):
    class NoFFmpeg(types.ModuleType):
        def __getattr__(self, attr):
            raise RuntimeError("Failed to import libspdl. Tried ffmpeg 4 to 8")

    monkeypatch.setitem(sys.modules, "spdl.io", types.ModuleType("spdl.io"))
    monkeypatch.setitem(sys.modules, "spdl.io.lib", NoFFmpeg("spdl.io.lib"))
    assert "FFmpeg" in missing("spdl") and "install_peers.sh" in missing("spdl")


def test_bench_times_the_installed_peers_beside_the_dataloader_and_skips_the_rest(sample_dir, monkeypatch,
                                                                                  quick_ceiling):
    hide(monkeypatch, "dali")  # at least one peer is missing, wherever this runs
    installed = [name for name in PEERS if not missing(name)]
    result = bench(sample_dir, [0, 1], pipelines=["fast"], image_size=SIZE, batch_size=4, batches=2, repeats=1,
                   progress=False, loaders=["dataloader", *PEERS])
    assert [(r["loader"], r["num_workers"]) for r in result.rows] == [("dataloader", 0), ("dataloader", 1)] + [
        (name, 1) for name in installed]  # a peer needs a thread: num_workers 0 is the DataLoader's alone
    assert all(r["images_per_s_min"] <= r["images_per_s"] <= r["images_per_s_max"] for r in result.rows)
    assert [n for n in result.notes if "skipped" in n] == [missing(name) for name in PEERS if missing(name)]
    text = report(result)
    assert text.splitlines()[1].split()[0] == ("loader" if installed else "pipeline")
    assert sum(line.startswith("Best of ") for line in text.splitlines()) == len(installed)
    assert "Recommended for fast, loader: num_workers=" in text


def test_against_peers_compares_each_loaders_best_setting():
    rows = [dict(loader=loader, pipeline="fast", mode="loader", num_workers=n, images_per_s=speed)
            for loader, n, speed in [("dataloader", 1, 300.0), ("dataloader", 2, 450.0), ("spdl", 1, 200.0),
                                     ("spdl", 2, 500.0)]]
    [line] = against_peers(rows)
    assert "spdl" in line and "500.0 images/s with 2 threads" in line and "num_workers=2" in line
    assert line.endswith("0.90 times that")
    assert against_peers([r for r in rows if r["loader"] == "spdl"]) == []  # nothing to compare with


def test_the_plot_draws_a_line_per_loader():
    from helpers.lessons.plots import plot_bench

    rows = [dict(loader=loader, pipeline="fast", mode="loader", num_workers=n, images_per_s=100.0 * n,
                 images_per_s_min=90.0 * n, images_per_s_max=110.0 * n, pss_mb=500.0)
            for loader in ("dataloader", "nodes") for n in (1, 2)]
    fig = plot_bench(rows, {"fast": 80.0}, 2, "test machine", memory=True)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"fast, loader", "fast, loader, nodes"} <= set(labels)
    assert labels.count("fast CPU ceiling (2 cores)") == 1  # one ceiling: every loader makes the same batches
    assert "specialised" in fig.axes[0].get_title()


def test_decode_costs_time_the_courses_steps_and_each_installed_peers(sample_dir, monkeypatch):
    from helpers.timing.peers import decode_costs

    samples = index_image_folder(sample_dir).samples
    rows = decode_costs(samples, SIZE, repeats=1)
    assert [r["loader"] for r in rows][:2] == ["dataloader", "dataloader"]
    assert {r["loader"] for r in rows} == {"dataloader"} | {n for n in ("spdl", "dali") if not missing(n)}
    assert all(0 < r["ms_min"] <= r["ms_per_image"] <= r["ms_max"] for r in rows)
    hide(monkeypatch, "spdl")
    hide(monkeypatch, "dali")
    assert {r["loader"] for r in decode_costs(samples, SIZE, repeats=1)} == {"dataloader"}


def test_spdl_installed_but_unable_to_load_ffmpeg_is_one_line_naming_the_library(monkeypatch):
    """As spdl 0.8 behaves: spdl.io.lib hands out _libspdl as a lazy module, which fails only when first used."""
    class Lazy(types.ModuleType):
        def __getattr__(self, attr):
            raise RuntimeError('Failed to import libspdl. "spdl.io.lib._spdl_ffmpeg7: libavutil.so.59: cannot open '
                               'shared object file: No such file or directory"')

        def __dir__(self):
            return self.__getattr__("__dir__")

    lib = types.ModuleType("spdl.io.lib")
    lib._libspdl = Lazy("_libspdl")
    monkeypatch.setitem(sys.modules, "spdl.io", types.ModuleType("spdl.io"))
    monkeypatch.setitem(sys.modules, "spdl.io.lib", lib)
    line = missing("spdl")
    assert line.startswith("spdl: skipped") and "libavutil" in line and "install_peers.sh" in line
    assert "\n" not in line


def test_a_peer_that_imports_but_fails_on_every_item_is_skipped_in_one_line(sample_dir, monkeypatch, capfd,
                                                                              quick_ceiling):
    """A fake SPDL that imports, then logs one error per image and makes no batch (what SPDL without FFmpeg's
    libraries did): the DataLoader is measured, the peer skipped in one line, no line per image, no traceback."""
    import logging

    from helpers.timing import peers

    def fails_per_item(samples, order, batch_size, threads, size):
        for i in order:
            logging.getLogger("spdl.io._composite").error(f"Failed to decode an image from '{samples[i].path}': "
                                                          "Failed to import libspdl.")
        return
        yield

    monkeypatch.setitem(peers.ADAPTERS, "spdl", fails_per_item)
    monkeypatch.setattr(bench_module, "missing", lambda name: None)
    result = bench(sample_dir, [1], pipelines=["fast"], image_size=SIZE, batch_size=4, batches=2, repeats=1,
                   progress=False, loaders=["dataloader", "spdl"])
    assert [(r["loader"], r["num_workers"]) for r in result.rows] == [("dataloader", 1)]
    [note] = [n for n in result.notes if n.startswith("spdl")]
    assert note.startswith("spdl: skipped, it imports but could not make one batch") and "install_peers.sh" in note
    out, err = capfd.readouterr()
    assert "Failed to decode" not in out + err and "Traceback" not in out + err


def test_what_a_peer_logs_per_item_is_one_line_and_a_count():
    import logging

    from helpers.timing.peers import count_lines, counted_log_records

    with counted_log_records("spdl") as counts:
        for i in range(5):
            logging.getLogger("spdl.io").error(f"Failed to decode an image from '/data/{i}.jpg': broken.")
    assert count_lines("spdl", counts) == ["spdl logged 5 times: Failed to decode an image from FILE: broken."]

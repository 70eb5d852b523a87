"""The specialised loaders beside the DataLoader (torchdata's nodes, SPDL, DALI), each giving the course's batches.

Every adapter reads the same files in the same seeded order and yields (uint8 NCHW images, int64 labels) at the fast
pipeline's size, with N threads where the DataLoader has N worker processes. A peer that is not installed is
skipped with one line saying how to install it, so the course never needs them.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch.utils.data import RandomSampler

from ..loading.data import Sample, collate_skipping_bad
from ..machine import one_thread
from .measure import StreamTiming, stream_window, time_stream
from ..loading.transforms import build_pipeline

LOADERS = {
    "dataloader": "torch.utils.data.DataLoader, N worker processes running the course's fast pipeline",
    "nodes": "torchdata.nodes: the course's fast pipeline per image in N threads (ParallelMapper), then batched",
    "spdl": "SPDL: FFmpeg decodes and resizes a batch per task, N tasks at once in a thread pool, outside the GIL",
    "dali": "NVIDIA DALI on the CPU: a graph of C++ operators built before the first batch, run by N threads",
}
DISTRIBUTIONS = {"nodes": "torchdata", "spdl": "spdl", "dali": "nvidia-dali-cuda120"}  # PyPI names, for versions
INSTALL = "bash scripts/install_peers.sh (pip install -r requirements-peers.txt, and FFmpeg's libraries for SPDL)"
Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


def missing(name: str) -> str | None:
    """None when peer NAME can run here; otherwise the one line that says what is missing and how to install it."""
    module = {"nodes": "torchdata.nodes", "spdl": "spdl.io", "dali": "nvidia.dali"}[name]
    try:
        importlib.import_module(module)
    except ImportError:
        return f"{name}: skipped, {module} is not installed; to add it: {INSTALL}"
    if name == "spdl":
        try:
            # spdl.io.lib hands out _libspdl as a lazy module: dir() is what makes it load FFmpeg's shared libraries.
            dir(getattr(importlib.import_module("spdl.io.lib"), "_libspdl"))
        except Exception as exc:  # spdl raises RuntimeError naming each FFmpeg it tried; anything else means the same
            libraries = sorted(set(re.findall(r"(lib\w+)\.so", str(exc))))  # each version tried, named once
            found = f" ({', '.join(libraries)} not found)" if libraries else ""
            return (f"spdl: skipped, FFmpeg's shared libraries cannot be loaded{found}; to add them: {INSTALL}")
    return None


def cannot_work(name: str, samples: Sequence[Sample], size: int) -> str | None:
    """None when peer NAME makes one batch of one image here; otherwise the one line it is skipped with (it imports
    but fails: a library missing at run time, a broken install)."""
    with counted_log_records(LOGGERS.get(name, name)):
        try:
            next(iter(peer_stream(name, samples[:1], [0], 1, 1, size)))
            return None
        except Exception as exc:  # StopIteration included: a peer that made no batch cannot be timed
            what = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}" if str(exc).strip() else \
                f"{type(exc).__name__}, no batch"
            return f"{name}: skipped, it imports but could not make one batch here ({what}); to reinstall: {INSTALL}"


LOGGERS = {"nodes": "torchdata", "spdl": "spdl", "dali": "nvidia.dali"}  # where each peer logs per-item errors


@contextlib.contextmanager
def counted_log_records(logger: str) -> Iterator[Counter]:
    """Hold back what LOGGER logs (a peer logs each image it cannot decode) and count it by message, paths masked,
    so a caller prints one line and a count instead of one line per image."""
    counts: Counter = Counter()

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            counts[re.sub(r"'[^']*'|\"[^\"]*\"", "FILE", record.getMessage().splitlines()[0])[:200]] += 1

    target, handler = logging.getLogger(logger), Count(logging.WARNING)
    saved = target.propagate
    target.addHandler(handler)
    target.propagate = False
    try:
        yield counts
    finally:
        target.removeHandler(handler)
        target.propagate = saved


def count_lines(name: str, counts: Counter) -> list[str]:
    """One line per distinct message peer NAME logged, with how many times."""
    return [f"{name} logged {n} time{'s' * (n > 1)}: {message}" for message, n in counts.most_common()]


def versions(names: Sequence[str]) -> str:
    """The installed version of each peer in NAMES, for the machine line a result is quoted with."""
    found = []
    for name in names:
        if name in DISTRIBUTIONS and missing(name) is None:
            found.append(f"{DISTRIBUTIONS[name]} {importlib.metadata.version(DISTRIBUTIONS[name])}")
    return ", ".join(found)


@dataclass(frozen=True)
class Stream:
    """A re-iterable loader: every iter() starts a fresh pass (threads, pipeline), as a DataLoader without
    persistent workers does, so the time to the first batch is the start-up."""
    start: Callable[[], Batches]

    def __iter__(self) -> Batches:
        return self.start()


def seeded_order(dataset_size: int, count: int, seed: int) -> list[int]:
    """COUNT indices drawn with replacement by a seeded RandomSampler, as the bench's DataLoader draws them."""
    generator = torch.Generator().manual_seed(seed)
    return [int(i) for i in RandomSampler(range(dataset_size), replacement=True, num_samples=count,
                                          generator=generator)]


def nodes_batches(samples: Sequence[Sample], order: list[int], batch_size: int, threads: int, size: int) -> Batches:
    """torchdata.nodes: the course's own fast dataset, one image per task in THREADS threads, in order, then collated."""
    from torchdata import nodes

    dataset = build_pipeline("fast", size, train=True).dataset(samples)
    node = nodes.ParallelMapper(nodes.IterableWrapper(order), dataset.__getitem__, num_workers=threads,
                                method="thread", in_order=True)
    node = nodes.Prefetcher(nodes.Mapper(nodes.Batcher(node, batch_size, drop_last=False), collate_skipping_bad), 2)
    for images, labels in nodes.Loader(node):
        yield images, labels


def spdl_filter(size: int | None) -> str:
    """FFmpeg's filter for the fast pipeline's geometry: stretched to SIZE x SIZE (SPDL pads to keep the aspect ratio
    unless told otherwise), bilinear as the course's resize, RGB; SIZE None decodes without scaling."""
    import spdl.io

    return spdl.io.get_video_filter_desc(scale_width=size, scale_height=size, scale_algo="bilinear",
                                         scale_mode=None, pix_fmt="rgb24")


def spdl_batches(samples: Sequence[Sample], order: list[int], batch_size: int, threads: int, size: int) -> Batches:
    """SPDL: each task decodes and resizes one batch with FFmpeg (spdl.io.load_image_batch), THREADS tasks at once."""
    import spdl.io
    from spdl.pipeline import PipelineBuilder

    scale = spdl_filter(size)

    def load(batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        buffer = spdl.io.load_image_batch([samples[i].path for i in batch], width=size, height=size,
                                          filter_desc=scale)
        images = spdl.io.to_torch(buffer).permute(0, 3, 1, 2).contiguous()  # NHWC as decoded, NCHW as the course's
        return images, torch.tensor([samples[i].label for i in batch])

    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    pipeline = (PipelineBuilder().add_source(chunks).pipe(load, concurrency=threads, output_order="input")
                .add_sink(2).build(num_threads=threads))
    with pipeline.auto_stop():
        yield from pipeline


def dali_batches(samples: Sequence[Sample], order: list[int], batch_size: int, threads: int, size: int) -> Batches:
    """DALI without a GPU (device_id=None): file reader, CPU decoder, resize and transpose, run by THREADS threads."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=batch_size, num_threads=threads, device_id=None, prefetch_queue_depth=2, seed=0)
    def graph():
        jpegs, labels = fn.readers.file(files=[samples[i].path for i in order],
                                        labels=[samples[i].label for i in order], random_shuffle=False)
        images = fn.resize(fn.decoders.image(jpegs, device="cpu", output_type=types.RGB), resize_x=size, resize_y=size)
        return fn.transpose(images, perm=[2, 0, 1]), labels

    pipe = graph()
    pipe.build()
    for _ in range(len(order) // batch_size):
        images, labels = pipe.run()
        yield torch.from_numpy(images.as_array()), torch.from_numpy(labels.as_array()).view(-1).long()


ADAPTERS = {"nodes": nodes_batches, "spdl": spdl_batches, "dali": dali_batches}


def peer_stream(name: str, samples: Sequence[Sample], order: list[int], batch_size: int, threads: int,
                size: int) -> Stream:
    """Peer NAME as a re-iterable loader over SAMPLES in ORDER."""
    return Stream(lambda: ADAPTERS[name](samples, order, batch_size, threads, size))


def measure_peer(name: str, samples: Sequence[Sample], threads: int, *, batch_size: int, batches: int,
                 image_size: int, repeats: int = 1, seed: int = 0,
                 step: Callable[[object], None] | None = None) -> list[StreamTiming]:
    """Time peer NAME with THREADS threads REPEATS times, with the warm-up and window of the DataLoader's runs.

    Torch ops run on one thread each, as in a DataLoader worker, so N threads compete for the cores as N workers do.
    """
    warmup, timed = stream_window(threads, batches, step)
    order = seeded_order(len(samples), (warmup + timed + 1) * batch_size, seed)
    stream = peer_stream(name, samples, order, batch_size, threads, image_size)
    runs = []
    with one_thread(), counted_log_records(LOGGERS.get(name, name)) as counts:
        for _ in range(repeats):
            runs.append(time_stream(stream, timed, warmup, step, memory=True))
    for line in count_lines(name, counts):
        print(line)
    return runs


COST_COLUMNS = (("loader", "loader", "s"), ("step", "step", "s"), ("ms_per_image", "ms/image", ".2f"),
                ("ms_min", "min", ".2f"), ("ms_max", "max", ".2f"))


def decode_costs(samples: Sequence[Sample], size: int, repeats: int = 3) -> list[dict]:
    """Milliseconds per image on one thread: the course's decode and resize, and SPDL's FFmpeg decode without and
    with its scale to SIZE, on the same files, so a difference in a loader's speed can be traced to its decoder."""
    from torchvision.transforms import v2

    from ..loading.data import load_uint8
    from .measure import step_costs

    paths = [s.path for s in samples]
    with one_thread():
        rows = [dict(loader="dataloader", **row) for row in step_costs(paths, [
            ("decode (libjpeg-turbo via torchvision)", load_uint8),
            (f"resize to {size} px (torch, uint8)", v2.Resize((size, size), antialias=True))], repeats)]
        if missing("spdl") is None:
            import spdl.io

            plain, scaled = spdl_filter(None), spdl_filter(size)
            for step in [("decode (FFmpeg via SPDL, rgb24)", lambda p: spdl.io.load_image(p, filter_desc=plain)),
                         (f"decode and scale to {size} px (FFmpeg via SPDL)",
                          lambda p: spdl.io.load_image(p, filter_desc=scaled))]:
                rows += [dict(loader="spdl", **row) for row in step_costs(paths, [step], repeats)]
        if missing("dali") is None:
            decode, resized = (dali_cost(paths, size if scale else None, repeats) for scale in (False, True))
            rows += [dict(loader="dali", step="decode (libjpeg-turbo via nvImageCodec)", **decode),
                     dict(loader="dali", step=f"decode and resize to {size} px (DALI on the CPU)", **resized)]
    return rows


def dali_cost(paths: Sequence[str], size: int | None, repeats: int) -> dict:
    """Milliseconds per image for a one-thread DALI graph that decodes PATHS, and resizes them when SIZE is given."""
    import statistics
    import time

    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=len(paths), num_threads=1, device_id=None, exec_pipelined=False, exec_async=False)
    def graph():
        images = fn.decoders.image(fn.readers.file(files=list(paths))[0], device="cpu", output_type=types.RGB)
        return images if size is None else fn.resize(images, resize_x=size, resize_y=size)

    pipe = graph()
    pipe.build()
    pipe.run()  # warm-up, not timed
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        pipe.run()
        seconds.append((time.perf_counter() - start) / len(paths))
    return dict(ms_per_image=1000 * statistics.median(seconds), ms_min=1000 * min(seconds), ms_max=1000 * max(seconds))

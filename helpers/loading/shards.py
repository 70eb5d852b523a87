"""Many small files packed into a few large ones: tar shards read in order by an IterableDataset, one request per shard.

Written with the standard library's tarfile rather than WebDataset: the project's environment does not hold
webdataset, and a reader of a plain tar is a dozen lines a learner can read whole. The layout follows WebDataset's
convention (each sample a KEY.jpg and a KEY.cls member, next to each other), not tried with WebDataset here.

Splitting the work: each DataLoader worker of each rank (torchrun) is one consumer, consumer = rank x workers + worker
(torch.utils.data.get_worker_info() gives the worker; RANK and WORLD_SIZE the rank). Shards go round-robin over the
consumers. With fewer shards than consumers the consumers that share a shard each take every k-th sample of it. The
mistake `wrap=True` keeps: a consumer past the last shard starts it again at shard consumer % shards, and the shards it
wraps to come out twice.
"""
from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info
from torchvision.io import ImageReadMode, decode_image

from .sample_table import Sample
from .storage import Latency


def write_shards(samples: Sequence[Sample], folder: str | Path, count: int) -> list[Path]:
    """Pack SAMPLES, in order, into COUNT tar files of nearly equal length (KEY.jpg and KEY.cls per sample)."""
    if count < 1 or count > len(samples):
        raise ValueError(f"need between 1 and {len(samples)} shards for {len(samples)} samples; got {count}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for s in range(count):
        end = start + len(samples) // count + (s < len(samples) % count)
        path = folder / f"shard-{s:05d}.tar"
        with tarfile.open(path, "w") as tar:
            for k in range(start, end):
                key = f"{k:07d}"
                tar.add(samples[k].path, arcname=f"{key}{Path(samples[k].path).suffix.lower()}")
                label = str(samples[k].label).encode()
                info = tarfile.TarInfo(f"{key}.cls")
                info.size = len(label)
                tar.addfile(info, io.BytesIO(label))
        paths.append(path)
        start = end
    return paths


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of ranks: torch.distributed's when initialised, else torchrun's environment."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def assigned(shards: int, consumer: int, consumers: int, wrap: bool = False) -> list[tuple[int, int, int]]:
    """What CONSUMER of CONSUMERS reads, as (shard, first sample, step) parts: every sample exactly once over all.

    WRAP: the mistake, a consumer past the last shard reading all of shard consumer % shards again.
    """
    if shards >= consumers:
        return [(s, 0, 1) for s in range(consumer, shards, consumers)]
    shard = consumer % shards
    if wrap:
        return [(shard, 0, 1)]
    sharers = len(range(shard, consumers, shards))
    return [(shard, consumer // shards, sharers)]


def pairs(tar: tarfile.TarFile) -> Iterator[tuple[bytes, int]]:
    """(image bytes, label) of each sample of a shard, in order."""
    image = None
    for member in tar:
        data = tar.extractfile(member)
        if data is None:
            continue
        if member.name.endswith(".cls"):
            yield image, int(data.read())
        else:
            image = data.read()


def decode_uint8(data: bytes) -> torch.Tensor:
    """JPEG bytes to an upright uint8 CHW tensor (libjpeg-turbo), as the fast pipeline's load_uint8 does from a file."""
    return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB,
                        apply_exif_orientation=True)


def decode_rgb(data: bytes) -> Image.Image:
    """JPEG bytes to an RGB PIL image, as the blog's pipeline decodes a file."""
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


class TarShards(IterableDataset):
    """The samples of SHARDS, each decoded by DECODE and transformed, split over ranks x workers (see the module).

    LATENCY: the storage model, one wait per shard opened (one request, then the shard streams); SLEEP is time.sleep.
    """

    def __init__(self, shards: Sequence[str | Path], decode: Callable[[bytes], Any] = decode_uint8,
                 transform: Callable[[Any], Any] | None = None, *, wrap: bool = False,
                 latency: Latency | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.shards, self.decode, self.transform = [str(s) for s in shards], decode, transform
        self.wrap, self.latency, self.sleep = wrap, latency, sleep

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = rank_and_world()
        for shard, first, step in assigned(len(self.shards), rank * workers + worker, world * workers, self.wrap):
            if self.latency is not None:
                self.sleep(self.latency.seconds(shard, os.path.getsize(self.shards[shard])))
            with tarfile.open(self.shards[shard]) as tar:
                for k, (data, label) in enumerate(pairs(tar)):
                    if k >= first and (k - first) % step == 0:
                        image = self.decode(data)
                        yield (self.transform(image) if self.transform else image), label

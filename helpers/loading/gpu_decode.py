"""Decoding on the GPU: workers only read JPEG bytes, nvjpeg decodes the whole batch on the device, v2 resizes there.

What this moves off the CPU is the decode and the resize, the two biggest parts of a fast worker's time
(helpers.timing.breakdown.explain). The workers' job shrinks to reading files, and what crosses to the main process is the
compressed JPEG bytes, not decoded pixels (notebook 07 measures how much smaller that is).
"""
from __future__ import annotations

from functools import partial

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import v2

from .data import collate_skipping_bad, load_uint8
from ..errors import DataError

NO_CUDA_NOTE = ("The gpu pipeline decodes JPEGs with nvjpeg on a CUDA device, and this machine has none, so it was "
                "skipped. On a machine with an NVIDIA GPU, `python -m helpers bench --pipeline fast gpu` measures it "
                "against the fast CPU pipeline.")
EXIF_ORIENTATION = 0x0112


def read_encoded(path: str, image_size: int) -> torch.Tensor:
    """A plain JPEG's bytes, for the device to decode; anything nvjpeg would get wrong is decoded and resized here."""
    with Image.open(path) as image:  # reads the header only
        plain = (image.format == "JPEG" and image.mode in ("RGB", "L")
                 and image.getexif().get(EXIF_ORIENTATION, 1) == 1)  # nvjpeg ignores EXIF rotation
    if plain:
        # clone(): a worker hung for good handing read_file's own tensor to the main process (torchvision 0.29,
        # fork); a copy of a few kilobytes in ordinary memory crosses like any other tensor.
        data = read_file(path).clone()
        if data[-2:].tolist() == [0xFF, 0xD9]:  # the end marker: a JPEG cut short goes the CPU way
            return data
    # PNG behind a .jpg name, CMYK, rotated, or a JPEG without its end marker (truncated): the CPU path, which
    # decodes what it can and raises for what it cannot, so the dataset reports the file as unreadable.
    return v2.functional.resize(load_uint8(path), [image_size, image_size], antialias=True)


def bytes_to_move(paths: list[str], image_size: int) -> tuple[float, float]:
    """Mean kilobytes per image a worker hands over: as the gpu pipeline sends it, and decoded at IMAGE_SIZE."""
    sent = [read_encoded(p, image_size) for p in paths]
    return sum(t.numel() for t in sent) / len(sent) / 1e3, 3 * image_size * image_size / 1e3


def encoded_loader(image_size: int):
    """The file loader for ImageDataset; a partial of a module function, so spawn can pickle it."""
    return partial(read_encoded, image_size=image_size)


def _keep_as_list(items: list) -> list:
    """JPEGs differ in length, so they cannot be stacked: the images stay a list, the labels become a tensor."""
    return [[image for image, _ in items], torch.tensor([label for _, label in items])]


collate_encoded = partial(collate_skipping_bad, collate=_keep_as_list)


class DeviceDecode:
    """Finish a batch of bytes on DEVICE: one batched decode, a resize per image, one uint8 NCHW tensor."""

    def __init__(self, device: torch.device, image_size: int) -> None:
        self.device, self.size = torch.device(device), [image_size, image_size]

    def __call__(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        return self.images(images), labels.to(self.device, non_blocking=True)

    def images(self, images: list[torch.Tensor]) -> torch.Tensor:
        """The batch's images decoded (bytes) or moved (already decoded by a worker), as one uint8 NCHW tensor."""
        out = [None] * len(images)
        encoded = [i for i, x in enumerate(images) if x.ndim == 1]
        if encoded:
            try:
                decoded = decode_jpeg([images[i] for i in encoded], mode=ImageReadMode.RGB, device=self.device)
            except RuntimeError as exc:
                raise DataError(f"A JPEG in this batch could not be decoded on {self.device} ({exc}). Run "
                                f"`python -m helpers verify DIR --quarantine DIR-bad` to find and move it.") from exc
            for i, image in zip(encoded, decoded):
                out[i] = v2.functional.resize(image, self.size, antialias=True)
        for i, image in enumerate(images):
            if image.ndim == 3:
                out[i] = image.to(self.device, non_blocking=True)
        return torch.stack(out)

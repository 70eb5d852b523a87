"""Image pipelines by name: the blog post's, the corrected train/validation pair, and a fast uint8 tensor pipeline."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from typing import Any, Callable, Sequence

import torch
from torchvision import transforms as T
from torchvision.transforms import v2

from .data import Batch, ImageDataset, Sample, collate_skipping_bad, load_rgb, load_uint8
from .gpu_decode import DeviceDecode, collate_encoded, encoded_loader

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The registry: each pipeline's name and what it is, for the command line's help and the notebooks.
PIPELINES = {
    "blog": "the post's Resize((s, s)) + ToTensor + Normalize, decoded with PIL",
    "standard": "augmented PIL for training (RandomResizedCrop, flip), Resize + CenterCrop for validation",
    "fast": "the blog's geometry on uint8 tensors: libjpeg-turbo decode (at 1/4 or 1/8 scale for JPEGs 4x the size), "
            "uint8 batches, normalized on the device",
    "gpu": "workers only read JPEG bytes; nvjpeg decodes the batch on the device (on a CPU: decoded there)",
}
# torchvision 0.29 marks its decoders deprecated in favour of TorchCodec; they still work and still win on speed here.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities", category=DeprecationWarning)


Step = tuple[str, Callable[[Any], Any]]  # (what it does, the callable), the unit the course times and shows


@dataclass(frozen=True)
class Pipeline:
    """One split's path from file to model input: how a file is read, the per-item steps, the collate, the device step."""

    name: str
    steps: tuple[Step, ...]    # the first step reads the file; the rest make up the per-item transform
    normalize_on_device: bool  # True when batches arrive as uint8 and are normalized where the model runs
    collate: Callable[[list], Batch] = collate_skipping_bad
    decode_size: int | None = None  # set when the device decodes JPEG bytes (gpu) and resizes them to this size

    @property
    def loader(self) -> Callable[[str], Any]:
        return self.steps[0][1]

    @cached_property
    def transform(self) -> Callable[[Any], torch.Tensor]:
        return T.Compose([fn for _, fn in self.steps[1:]])

    def dataset(self, samples: Sequence[Sample]) -> ImageDataset:
        """The files as this pipeline reads and transforms them; unreadable ones come back as Unreadable."""
        return ImageDataset(samples, self.transform if len(self.steps) > 1 else None, self.loader)

    def to_model_input(self, images: Any, device: torch.device) -> torch.Tensor:
        """What is done on the device: decode (gpu), scale and normalize uint8, channels_last on CUDA."""
        if self.decode_size is not None:
            images = DeviceDecode(device, self.decode_size).images(images)
        return to_model_input(images, device, self.normalize_on_device, channels_last=device.type == "cuda")


def pipeline_steps(name: str, image_size: int = 224, train: bool = False) -> list[Step]:
    """The named pipeline as labelled steps, so a notebook can show and time each one; only `standard` augments."""
    s = image_size
    to_tensor = ("ToTensor: float32 CHW, 0-1", T.ToTensor())
    normalize = ("Normalize (ImageNet mean, std)", T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    if name == "blog":
        # The post resizes to a 512x512 square (its comment claims 224); kept as written, apart from the size knob.
        return [("read + decode (PIL)", load_rgb), (f"Resize(({s}, {s}))", T.Resize((s, s))), to_tensor, normalize]
    if name == "standard":
        if train:
            geometry = [(f"RandomResizedCrop({s}, scale=(0.6, 1))", T.RandomResizedCrop(s, scale=(0.6, 1.0))),
                        ("RandomHorizontalFlip", T.RandomHorizontalFlip())]
        else:
            geometry = [(f"Resize({s}): short side", T.Resize(s)), (f"CenterCrop({s})", T.CenterCrop(s))]
        return [("read + decode (PIL)", load_rgb), *geometry, to_tensor, normalize]
    if name == "fast":
        # The blog's geometry and output, computed the cheap way: libjpeg-turbo decode, uint8 resize, uint8 batches,
        # and scaling/normalization on the device. No augmentation, as in the post, so the two compare like for like.
        # A large JPEG is decoded at the smallest DCT scale that still covers s px (see load_uint8).
        return [("read + decode (libjpeg-turbo, uint8)", partial(load_uint8, at_least=s)),
                (f"Resize(({s}, {s})) on uint8", v2.Resize((s, s), antialias=True))]
    if name == "gpu":
        return [("read JPEG bytes (decoded later, on the device)", encoded_loader(s))]
    raise ValueError(f"Unknown pipeline {name!r}; choose one of {', '.join(PIPELINES)}.")


def run_steps(steps: list[Step], item: Any) -> list[Any]:
    """Every intermediate result of a chain of steps, so each one can be looked at."""
    outputs = []
    for _, fn in steps:
        item = fn(item)
        outputs.append(item)
    return outputs


def describe(item: Any) -> str:
    """Type, size, dtype, value range and memory of an image or tensor, in one line."""
    if isinstance(item, torch.Tensor):
        spec = ".2f" if item.is_floating_point() else "d"
        return (f"tensor {item.dtype} {list(item.shape)}, values {item.min().item():{spec}} to "
                f"{item.max().item():{spec}}, {item.numel() * item.element_size() / 1e6:.2f} MB")
    return f"PIL {item.mode} image {item.width} x {item.height}"


def build_pipeline(name: str, image_size: int = 224, train: bool = False) -> Pipeline:
    """One named pipeline of the registry, for one split."""
    steps = tuple(pipeline_steps(name, image_size, train))
    if name == "gpu":
        return Pipeline(name, steps, normalize_on_device=True, collate=collate_encoded, decode_size=image_size)
    return Pipeline(name, steps, normalize_on_device=name == "fast")


@lru_cache(maxsize=None)
def _normalization_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std on the 0-255 scale, made once per device rather than once per batch."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
    return mean, std


def to_model_input(images: torch.Tensor, device: torch.device, normalize: bool,
                   channels_last: bool = False) -> torch.Tensor:
    """Copy a batch to DEVICE (asynchronously from pinned memory) and finish uint8 batches there: scale and normalize."""
    images = images.to(device, non_blocking=True)
    if normalize:
        mean, std = _normalization_constants(device)
        images = (images.float() - mean) / std
    if channels_last and images.ndim == 4:  # images, not the cached feature vectors of helpers.training.features
        images = images.contiguous(memory_format=torch.channels_last)
    return images
